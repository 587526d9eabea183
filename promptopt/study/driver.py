"""The whole study, start to finish: check the settings, claim the study directory, finish
every run, evaluate on the test split, write ``report.md``, ``report.json`` and the plots."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.study.plan import StudySettings, open_study_dir, plan_runs
from promptopt.study.runner import StudyLog, run_grid

INVOCATION = "last_invocation.json"


@dataclass(frozen=True)
class Invocation:
    """What one ``promptopt study`` call did (``DIR/last_invocation.json``): a rerun of a
    finished study has zeros everywhere but ``evaluations_from_store``."""

    runs: int
    runs_executed: int
    evaluations_computed: int
    evaluations_from_store: int
    models_loaded: int
    generated_tokens: int
    outputs: list[str]


def run_backend(method: str, settings: StudySettings) -> str:
    """The backend a method's runs use: ``--backend`` or the method's own default."""
    from promptopt.registry import get_registry

    if settings.backend:
        return settings.backend
    return str(getattr(get_registry().get("method", method), "backend", "hf"))


def lookup(kind: str, name: str, flag: str) -> type[Any]:
    """The registered ``kind`` called ``name``; unknown names name the study's flag."""
    from promptopt.errors import UnknownComponentError
    from promptopt.registry import get_registry

    try:
        return get_registry().get(kind, name)
    except UnknownComponentError as exc:
        what = kind.replace("_", " ")
        raise PromptoptError(f"unknown {what} {name!r} in {flag}", hint=exc.hint) from None


def check_settings(settings: StudySettings) -> None:
    """Fail in one line, before any model work, on unknown methods, tasks or backends, on
    options no component of some method declares, on a gradient method without a white-box
    backend, on methods evaluated on different backends, and on a bad ``--transfer``."""
    from promptopt.assembly import check_unknown_options
    from promptopt.components import Backend
    from promptopt.registry import get_registry
    from promptopt.study.transfer import check_transfer

    registry = get_registry()
    tasks = [lookup("task", task, "--tasks") for task in settings.tasks]
    backends: dict[str, str] = {}
    for method in settings.methods:
        method_cls = lookup("method", method, "--methods")
        backend = run_backend(method, settings)
        backend_cls = lookup("backend", backend, "--backend")
        parts = [
            registry.get(kind, str(getattr(method_cls, kind)))
            for kind in ("proposer", "reasoner", "loss_extractor", "selector")
        ]
        try:
            check_unknown_options(settings.options, [method_cls, *tasks, backend_cls, *parts])
        except PromptoptError as exc:
            raise PromptoptError(f"method {method!r}: {exc.message}", hint=exc.hint) from None
        white = issubclass(backend_cls, Backend) and backend_cls.white_box
        if getattr(method_cls, "needs_white_box", False) and not white:
            raise PromptoptError(
                f"method {method!r} needs gradients, which backend {backend!r} does not give",
                hint="drop --backend to use the method's own backend",
            )
        backends[method] = backend
    if settings.eval_backend:
        lookup("backend", settings.eval_backend, "--eval-backend")
    elif len(set(backends.values())) > 1:
        shown = ", ".join(f"{m}: {b}" for m, b in backends.items())
        raise PromptoptError(
            f"the methods run on different backends ({shown}), so their test evaluations "
            "would not be comparable",
            hint="pass --eval-backend (and --eval-model) to evaluate every run on one model",
        )
    check_transfer(settings.transfer)


def run_study(
    settings: StudySettings, root: Path, *, progress: bool = True, echo: bool = True
) -> dict[str, Any]:
    """Run, resume or just report the study in ``root``; returns the report data."""
    from promptopt.rundir import atomic_write_json
    from promptopt.study.evaluate import StudyEvaluator, main_target
    from promptopt.study.plots import write_plots
    from promptopt.study.report import write_reports
    from promptopt.study.summary import build_report
    from promptopt.study.transfer import transfer_targets

    check_settings(settings)
    open_study_dir(root, settings)
    log = StudyLog(root, echo=echo)
    specs = plan_runs(settings, root)
    log(
        f"{len(specs)} runs: {', '.join(settings.methods)} x {', '.join(settings.tasks)} x seeds "
        f"{', '.join(map(str, settings.seeds))}"
    )
    executed = run_grid(specs, settings, log, progress=progress)

    targets = [main_target(settings, run_backend(settings.methods[0], settings))]
    targets += transfer_targets(settings)
    evaluator = StudyEvaluator(root, settings, log, progress=progress)
    evaluation = evaluator.evaluate(specs, targets)
    report = build_report(evaluation, settings)
    paths = list(write_reports(report, root).values()) + write_plots(report, root)
    invocation = Invocation(
        runs=len(specs),
        runs_executed=executed,
        evaluations_computed=evaluator.computed,
        evaluations_from_store=evaluator.from_store,
        models_loaded=evaluator.models_loaded,
        generated_tokens=evaluator.generated_tokens,
        outputs=[str(p.relative_to(root)) for p in paths],
    )
    atomic_write_json(root / INVOCATION, asdict(invocation))
    log(
        f"done: {executed} of {len(specs)} runs executed; {evaluator.computed} evaluations "
        f"computed, {evaluator.from_store} from the study store; {evaluator.models_loaded} "
        f"evaluation models loaded, {evaluator.generated_tokens} tokens generated; wrote "
        f"{', '.join(invocation.outputs)}"
    )
    return report
