"""promptopt: plugin-based prompt optimization for small, open, local language models.

Five lines from a table to an optimized, evaluated prompt::

    import promptopt
    run = promptopt.optimize("gpo", "reviews.csv", options={"task.answer": "label"})
    print(run.best_prompt, promptopt.evaluate(run).score)

:func:`optimize`, :func:`evaluate`, :func:`study` and :func:`load_run` are
:mod:`promptopt.api` (imported on first use, so ``import promptopt`` stays fast). Plugins import
:data:`hookimpl` from here and implement hooks from :mod:`promptopt.hookspecs`.
"""

from __future__ import annotations

from typing import Any

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations in plugins: ``@promptopt.hookimpl``.
hookimpl = pluggy.HookimplMarker("promptopt")

_API = ("optimize", "evaluate", "study", "load_run")

__all__ = ["PromptoptError", "__version__", "hookimpl", *_API]


def __getattr__(name: str) -> Any:
    """The API functions and the error class, imported when first used."""
    if name in _API:
        from promptopt import api

        return getattr(api, name)
    if name == "PromptoptError":
        from promptopt.errors import PromptoptError

        return PromptoptError
    raise AttributeError(f"module 'promptopt' has no attribute {name!r}")
