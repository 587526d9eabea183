"""The whole study, start to finish: check the settings and the shared test sets, claim the
study directory (or grow it with ``--extend``), finish every run, evaluate on the test sets,
write ``report.md``, ``report.json`` and the plots; also re-render an export."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.runs import RunWork
from promptopt.studies.executors import RayExecutor, RayOptions, run_grid_with
from promptopt.studies.plan import (
    STUDY_WRITE_HINT,
    RunSpec,
    StudySettings,
    check_task_folders,
    open_study_dir,
    plan_runs,
)
from promptopt.studies.runner import StudyLog, check_existing_runs
from promptopt.studies.targets import Target

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
    #: what the runs executed in this call loaded and generated (in Ray workers too)
    run_models_loaded: int = 0
    run_generated_tokens: int = 0


def run_backend(method: str, settings: StudySettings) -> str:
    """The backend a method's runs use: ``--backend`` or the method's own default."""
    from promptopt.registry import get_registry

    if settings.backend:
        return settings.backend
    return str(getattr(get_registry().get("method", method), "backend", "hf"))


def lookup(kind: str, name: str, flag: str) -> type[Any]:
    """The registered ``kind`` called ``name`` (a task may also be a data file or a hub
    dataset); unknown names name the study's flag."""
    from promptopt.errors import UnknownComponentError
    from promptopt.registry import get_registry

    registry = get_registry()
    try:
        return registry.task(name) if kind == "task" else registry.get(kind, name)
    except UnknownComponentError as exc:
        what = kind.replace("_", " ")
        raise PromptoptError(f"unknown {what} {name!r} in {flag}", hint=exc.hint) from None


def check_settings(settings: StudySettings) -> None:
    """Fail in one line, before anything is written or any model work, on credentials in a
    model URL, unknown methods, tasks or backends, on options that a method's run would reject
    (the real option routing of ``promptopt run``) and on a gradient method without a white-box
    backend. The evaluation settings are checked by :func:`evaluation_targets`."""
    from promptopt.assembly import plan_run
    from promptopt.config import make_run_config
    from promptopt.options import for_method
    from promptopt.registry import get_registry
    from promptopt.studies.runner import optimizer_values
    from promptopt.urls import refuse_credentials

    for flag in ("model", "optimizer_model", "eval_model"):
        refuse_credentials(getattr(settings, flag), "--" + flag.replace("_", "-"))
    for item in settings.transfer:
        refuse_credentials(item, "--transfer")
    check_task_folders(settings.tasks)
    for task in settings.tasks:
        lookup("task", task, "--tasks")
    prefixes = {key.partition(":")[0] for key in settings.options if ":" in key}
    unknown = sorted(prefixes - set(settings.methods))
    if unknown:
        raise PromptoptError(
            f"option prefix {unknown[0]!r}: is not a method of this study",
            hint=f"prefix options with one of: {', '.join(settings.methods)}",
        )
    for method in settings.methods:
        lookup("method", method, "--methods")
        lookup("backend", run_backend(method, settings), "--backend")
        for task in settings.tasks:  # task options (a data file's columns) differ by task
            values = {
                "method": method,
                "task": task,
                "model": settings.model,
                "backend": settings.backend,
                **optimizer_values(settings, method),
                "data_dir": settings.data_dir,
                "options": for_method(settings.options, method),
            }
            try:
                plan_run(make_run_config({}, values), get_registry())
            except PromptoptError as exc:
                where = f"method {method!r}" + (
                    f", task {task!r}" if len(settings.tasks) > 1 else ""
                )
                raise PromptoptError(f"{where}: {exc.message}", hint=exc.hint) from None
    if settings.eval_backend:
        lookup("backend", settings.eval_backend, "--eval-backend")


def evaluation_targets(settings: StudySettings) -> list[Target]:
    """The main evaluation model and every ``--transfer`` variant, checked now (backend,
    ``--eval-option`` keys and values, the model reachable, transfer files), so a mistake in
    an evaluation setting fails before the first run instead of after the last."""
    from promptopt.studies.targets import main_target
    from promptopt.studies.transfer import transfer_targets

    return [main_target(settings), *transfer_targets(settings)]


def run_study(
    settings: StudySettings,
    root: Path,
    *,
    progress: bool = True,
    echo: bool = True,
    ray: RayOptions | None = None,
    added: dict[str, list[Any]] | None = None,
    export_to: Path | None = None,
) -> dict[str, Any]:
    """Run, resume or just report the study in ``root``; returns the report data. With
    ``ray``, runs and per-run evaluations execute as Ray tasks; the report is the same.
    ``added`` (``--extend``): ``settings`` grow the study already in ``root`` by these methods,
    tasks and seeds, recorded in ``invocations.jsonl``."""
    from promptopt.runlock import RunLock
    from promptopt.studies.record import record_invocation, write_study_file
    from promptopt.studies.testsets import study_task_data

    check_settings(settings)
    targets = evaluation_targets(settings)
    data = study_task_data(settings)  # the shared test sets: fail now, before any run
    if added is None:
        open_study_dir(root, settings)
    with RunLock(root, what="study"):
        if added is not None:
            write_study_file(root, settings)
            record_invocation(root, "extend", added=added)
        else:
            record_invocation(root, "run")
        specs = plan_runs(settings, root)
        check_existing_runs(specs, settings)
        log = StudyLog(root, echo=echo)
        log(
            f"{len(specs)} runs: {', '.join(settings.methods)} x {', '.join(settings.tasks)} x "
            f"seeds {', '.join(map(str, settings.seeds))}; evaluation on {targets[0].backend}"
            + (f"; extended by {_shown(added)}" if added else "")
        )
        return _run_locked(
            settings,
            root,
            specs,
            targets,
            log,
            progress=progress,
            ray=ray,
            data=data,
            export_to=export_to,
        )


def _shown(added: dict[str, list[Any]]) -> str:
    parts = [f"{key} {','.join(map(str, values))}" for key, values in added.items() if values]
    return "; ".join(parts) or "nothing new"


def study_record(root: Path) -> dict[str, Any]:
    """What the report copies from the study's record: the code version now and the study
    file's hash (every invocation is in ``invocations.jsonl``)."""
    from promptopt.studies.record import code_version, read_study_data

    return {"code_version": code_version(), "study_hash": read_study_data(root)["hash"]}


def _run_locked(
    settings: StudySettings,
    root: Path,
    specs: list[RunSpec],
    targets: list[Target],
    log: StudyLog,
    *,
    progress: bool,
    ray: RayOptions | None,
    data: dict[str, Any] | None = None,
    export_to: Path | None = None,
) -> dict[str, Any]:
    """The study's work while this process holds its lock: runs, evaluations, report (and
    the export, with ``export_to``)."""
    from promptopt.htmlreport.studypage import write_study_report
    from promptopt.outputs import guarded_write
    from promptopt.rundir import atomic_write_json
    from promptopt.studies.evaluate import StudyEvaluator
    from promptopt.studies.plots import write_plots
    from promptopt.studies.report import write_reports
    from promptopt.studies.summary import build_report

    executor = RayExecutor(ray, log) if ray is not None else None
    work = RunWork()
    try:
        executed = run_grid_with(executor, specs, settings, log, progress=progress, work=work)
        remote = {"computed": 0, "models_loaded": 0, "generated_tokens": 0}
        if executor is not None:  # evaluations as tasks, into the store the report reads
            remote = executor.prefetch_evaluations(root, settings, specs, targets)
    finally:
        if executor is not None:
            executor.close()
    evaluator = StudyEvaluator(root, settings, log, progress=progress, data=data)
    evaluation = evaluator.evaluate(specs, targets)
    evaluator.computed += remote["computed"]
    evaluator.models_loaded += remote["models_loaded"]
    evaluator.generated_tokens += remote["generated_tokens"]
    report = build_report(evaluation, settings, study_record(root))
    paths = list(write_reports(report, root).values()) + write_plots(report, root)
    # after them: the page only shows what they hold (a failure is one warning line)
    html = write_study_report(root, report, evaluator.examples, evaluator.outcomes)
    paths += [html] if html is not None else []
    if evaluator.rescored:
        log(f"re-scored {len(evaluator.rescored)} stored evaluations under a changed parser")
    if export_to is not None:
        from promptopt.studies.export import export_study
        from promptopt.studies.record import record_invocation

        record_invocation(root, "export", to=str(export_to))
        files = export_study(root, export_to, settings, evaluator.used)
        log(f"exported {len(files)} files to {export_to}")
    invocation = Invocation(
        runs=len(specs),
        runs_executed=executed,
        evaluations_computed=evaluator.computed,
        evaluations_from_store=evaluator.from_store,
        models_loaded=evaluator.models_loaded,
        generated_tokens=evaluator.generated_tokens,
        outputs=[str(p.relative_to(root)) for p in paths],
        run_models_loaded=work.models_loaded,
        run_generated_tokens=work.generated_tokens,
    )
    path = root / INVOCATION
    guarded_write(path, lambda: atomic_write_json(path, asdict(invocation)), hint=STUDY_WRITE_HINT)
    log(
        f"done: {executed} of {len(specs)} runs executed ({work.models_loaded} models loaded, "
        f"{work.generated_tokens} tokens generated); {evaluator.computed} evaluations "
        f"computed, {evaluator.from_store} from the study store ({evaluator.models_loaded} "
        f"models loaded, {evaluator.generated_tokens} tokens generated); wrote "
        f"{', '.join(invocation.outputs)}"
    )
    return report


def render_export(root: Path, *, progress: bool = True, echo: bool = True) -> dict[str, Any]:
    """Re-render ``report.md``, ``report.json`` and the plots of an export from its stored
    evaluation outputs and run results (the task data must be at hand; no model loads: a
    missing evaluation is an error)."""
    from promptopt.runlock import RunLock
    from promptopt.studies.evaluate import StudyEvaluator
    from promptopt.studies.plan import read_settings
    from promptopt.studies.plots import write_plots
    from promptopt.studies.record import record_invocation
    from promptopt.studies.report import write_reports
    from promptopt.studies.summary import build_report
    from promptopt.studies.testsets import study_task_data

    settings = read_settings(root)
    check_settings(settings)
    targets = evaluation_targets(settings)
    data = study_task_data(settings)
    with RunLock(root, what="study"):
        record_invocation(root, "render")
        specs = plan_runs(settings, root)
        log = StudyLog(root, echo=echo)
        evaluator = StudyEvaluator(
            root, settings, log, progress=progress, data=data, store_only=True
        )
        report = build_report(evaluator.evaluate(specs, targets), settings, study_record(root))
        paths = list(write_reports(report, root).values()) + write_plots(report, root)
        log(
            f"re-rendered the export from {evaluator.from_store} stored evaluations; wrote "
            f"{', '.join(str(p.relative_to(root)) for p in paths)}"
        )
        return report
