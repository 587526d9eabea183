"""promptopt: plugin-based prompt optimization for small, open, local language models.

Plugins import :data:`hookimpl` from here and implement hooks from :mod:`promptopt.hookspecs`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations in plugins: ``@promptopt.hookimpl``.
hookimpl = pluggy.HookimplMarker("promptopt")

__all__ = ["__version__", "hookimpl"]
