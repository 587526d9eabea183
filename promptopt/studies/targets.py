"""What a study evaluates on: its evaluation targets (the main evaluation model and each
``--transfer`` variant), the evaluation backend's choice and options, and what of them a
result store keys on. Everything here is checked before the study's first run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from promptopt.components import Backend
from promptopt.errors import PromptoptError
from promptopt.studies.plan import StudySettings


@dataclass(frozen=True)
class Target:
    """A model to evaluate on: ``label`` (``main`` or a transfer variant), the backend name,
    its identity for store keys, the backend options, and ``locate`` giving the model argument
    (called only when a model must load; e.g. quantizes on first use)."""

    label: str
    backend: str
    identity: dict[str, Any]
    options: dict[str, Any]
    locate: Callable[[], str | None]


def backend_options(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """The study options that ``backend`` declares, bare (``n_ctx=...``) or scoped to the
    backend (``backend.n_ctx=...``), validated."""
    from promptopt.assembly import build_options
    from promptopt.options import option_fields
    from promptopt.registry import get_registry

    cls = get_registry().get("backend", backend)
    fields = option_fields(cls)
    mine = {k: v for k, v in options.items() if ":" not in k and "." not in k and k in fields}
    for key, value in options.items():
        scope, dot, name = key.rpartition(".")
        if dot and scope == "backend" and name in fields and ":" not in key:
            mine[name] = value
    return dict(build_options(cls, mine).model_dump(mode="json"))


#: The backend a study evaluates GGUF models on by default, when it is installed: llama.cpp
#: runs the same weights several times faster than transformers on a CPU.
GGUF_BACKEND = "llamacpp"


def is_gguf_reference(model: str | None) -> bool:
    """Whether ``model`` names a GGUF file: the default model, a short name from the model
    table whose file is a GGUF, or a path ending in ``.gguf``."""
    from promptopt.models import lookup, resolve_name

    entry = resolve_name(model) if model is None else lookup(model)
    if entry is not None:
        return entry.file.lower().endswith(".gguf")
    return model is not None and model.lower().endswith(".gguf")


def eval_backend_choice(settings: StudySettings) -> tuple[str, str]:
    """The evaluation backend and why: ``--eval-backend``; else llama.cpp where the runs load
    model files, the evaluation model is a GGUF file and the llamacpp plugin is installed
    (llama.cpp runs it several times faster than transformers on a CPU); else the runs' own
    backend (an
    error when the methods run on different ones: their evaluations would not compare)."""
    from promptopt.registry import get_registry
    from promptopt.studies.driver import run_backend

    if settings.eval_backend:
        return settings.eval_backend, "--eval-backend"
    registry = get_registry()
    model = settings.eval_model if settings.eval_model is not None else settings.model
    backends = {method: run_backend(method, settings) for method in settings.methods}
    local = all(getattr(registry.get("backend", b), "loads_gguf", False) for b in backends.values())
    if local and GGUF_BACKEND in registry.names("backend") and is_gguf_reference(model):
        return GGUF_BACKEND, "the default for a GGUF model"
    if len(set(backends.values())) > 1:
        shown = ", ".join(f"{m}: {b}" for m, b in backends.items())
        raise PromptoptError(
            f"the methods run on different backends ({shown}), so their test evaluations "
            "would not be comparable",
            hint="pass --eval-backend (and --eval-model) to evaluate every run on one model",
        )
    return next(iter(backends.values())), "the runs' backend"


def check_eval_options(backend: str, eval_options: dict[str, Any]) -> None:
    """Every ``--eval-option`` key is an option of the evaluation backend (bare or
    ``backend.``-scoped); anything else is a one-line error, never silently ignored."""
    from promptopt.options import option_fields
    from promptopt.registry import get_registry

    fields = option_fields(get_registry().get("backend", backend))
    for key in eval_options:
        name = key.removeprefix("backend.")
        if name not in fields:
            raise PromptoptError(
                f"--eval-option {key!r} is not an option of the {backend!r} backend",
                hint=f"its options: {', '.join(sorted(fields)) or 'none'}",
            )


def result_options(backend: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` of ``backend`` minus its operational ones (timeouts, retries, concurrency):
    what an evaluation's results depend on, and so what store keys hold."""
    from promptopt.registry import get_registry

    operational = get_registry().get("backend", backend).Options.operational_fields()
    return {key: value for key, value in options.items() if key not in operational}


def main_target(settings: StudySettings) -> Target:
    """The evaluation model (see :func:`eval_backend_choice`), ``--eval-model`` defaulting to
    the run's, with the study's backend options and ``--eval-option`` ones (which win). The
    model is identified now (a server is asked what it serves), so a missing or unreachable
    evaluation model fails before any run starts."""
    from promptopt.assembly import build_options
    from promptopt.registry import get_registry

    backend, _ = eval_backend_choice(settings)
    check_eval_options(backend, settings.eval_options)
    model = settings.eval_model if settings.eval_model is not None else settings.model
    options = backend_options(backend, {**settings.options, **settings.eval_options})
    cls = get_registry().get("backend", backend)
    assert issubclass(cls, Backend)
    identity = cls.identify(model, build_options(cls, options))
    return Target("main", backend, {"backend": backend, "model": identity}, options, lambda: model)
