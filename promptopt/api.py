"""The Python API: optimize a prompt, evaluate one, run a study, load a run. The command line
calls these same functions, so a script and a shell get the same runs, files and errors
(:class:`~promptopt.errors.PromptoptError`, one line naming the input and the fix).

``task`` is a task name (``"bbh/navigate"``), a data file (``"reviews.csv"``; also ``.tsv``,
``.jsonl``, ``.json``, ``.parquet``), a hub dataset (``"hf:ORG/NAME"``), a pandas DataFrame or
a list of dicts; tables are stored as a file named by their content hash, so they are loaded,
checked and identified like any data file. ``options`` are the CLI's ``-o`` settings as a dict:
``{"steps": 2, "task.question": "sentence", "backend.n_ctx": 2048}``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.errors import PromptoptError
from promptopt.taskdata import TaskLike, absolute_data_file, task_reference

if TYPE_CHECKING:
    from promptopt.config import RunConfig
    from promptopt.evaluation import Scoring
    from promptopt.results import EvalResult, StudyResult
    from promptopt.runs import RunResult
    from promptopt.studies.plan import StudySettings

__all__ = ["evaluate", "load_run", "optimize", "optimize_config", "study"]

#: The default backend of :func:`evaluate` (``promptopt eval --backend``).
DEFAULT_EVAL_BACKEND = "hf"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _python_resume(run_dir: Path) -> str:
    return f"promptopt.optimize(resume={str(run_dir)!r})"


# --------------------------------------------------------------------------- optimize


def optimize(
    method: str | None = None,
    task: TaskLike | None = None,
    *,
    model: str | None = None,
    backend: str | None = None,
    optimizer_model: str | None = None,
    optimizer_backend: str | None = None,
    options: Mapping[str, Any] | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    progress: bool = True,
    resume: str | Path | None = None,
    data_dir: str | Path | None = None,
    components: Mapping[str, str] | None = None,
    trust_remote_code: bool = False,
) -> RunResult:
    """Optimize a prompt with ``method`` for ``task`` on ``model`` and return the finished
    run's result; its files are in ``result.run_dir`` (default ``runs/<method>-<task>-<time>``).

    ``resume`` continues an interrupted run from its checkpoint with the settings saved in it
    (``method`` and ``task`` may then be left out; if given they must match); a finished run
    returns its result at once. A KeyboardInterrupt leaves the run resumable. ``components``
    overrides the method's preset components (``{"selector": "best-dev"}``);
    ``trust_remote_code`` allows a resumed run whose saved options enable model code."""
    if resume is not None:
        given = {
            "model": model,
            "backend": backend,
            "optimizer_model": optimizer_model,
            "optimizer_backend": optimizer_backend,
            "options": options,
            "out": out,
            "data_dir": data_dir,
            "components": components,
        }
        clashing = [name for name, value in given.items() if value not in (None, {}, [])]
        if clashing:
            raise PromptoptError(
                f"resume= takes the settings saved in the run directory, not {', '.join(clashing)}",
                hint="drop them, or start a new run with the changed settings",
            )
        return continue_run(
            Path(resume),
            method=method,
            task=task,
            progress=progress,
            trust_remote_code=trust_remote_code,
            resume_how=_python_resume,
        )
    if not method:
        raise PromptoptError("no method given", hint="e.g. promptopt.optimize('gpo', 'data.csv')")
    if task is None:
        raise PromptoptError("no task given", hint="pass a task name, a data file or a table")
    from promptopt.config import make_run_config

    values: dict[str, Any] = {
        "method": method,
        "task": task_reference(task),
        "model": model,
        "backend": backend,
        "optimizer_model": optimizer_model,
        "optimizer_backend": optimizer_backend,
        "seed": seed,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "options": dict(options or {}),
        "components": dict(components or {}),
    }
    config = make_run_config({}, values)
    return optimize_config(
        config,
        out=Path(out) if out is not None else None,
        progress=progress,
        resume_how=_python_resume,
    )


def optimize_config(
    config: RunConfig,
    *,
    out: Path | None = None,
    progress: bool = True,
    notify: Callable[[str], None] | None = _stderr,
    resume_how: Callable[[Path], str] | None = None,
) -> RunResult:
    """Start a run from a complete :class:`~promptopt.config.RunConfig` (what
    :func:`optimize` and ``promptopt run`` build from their arguments) in ``out`` (default
    ``runs/<method>-<task>-<time>``)."""
    from promptopt.rundir import default_run_dir
    from promptopt.runs import start_run

    path = out or default_run_dir(config.method, config.task)
    return start_run(config, out=path, progress=progress, notify=notify, resume_how=resume_how)


def continue_run(
    run_dir: Path,
    *,
    method: str | None = None,
    task: TaskLike | None = None,
    progress: bool = True,
    trust_remote_code: bool = False,
    notify: Callable[[str], None] | None = _stderr,
    resume_how: Callable[[Path], str] | None = None,
) -> RunResult:
    """Resume the run in ``run_dir`` from its checkpoint with its saved settings, or return its
    result when it has finished. ``method``/``task``, when given, must be the run's."""
    from promptopt.config import check_remote_code, make_run_config
    from promptopt.rundir import RunDir
    from promptopt.runs import RunResult, resume_run

    say = notify or (lambda line: None)
    opened = RunDir.open(run_dir)
    if method is not None or task is not None:
        _check_same(make_run_config(opened.read_config(), {}), method, task, run_dir)
    finished = opened.read_result()
    if finished is not None:
        say(f"run {run_dir} has already finished; its result:")
        return RunResult.from_dict(finished, opened.path)
    config = make_run_config(opened.read_config(), {})
    if not trust_remote_code:
        check_remote_code(config.options, f"the saved configuration of {str(run_dir)!r}")
    checkpoint = opened.read_checkpoint()  # an unreadable one fails before a model loads
    if checkpoint is not None:
        from promptopt.loop import check_checkpoint_format

        check_checkpoint_format(checkpoint)
    return resume_run(opened, config, progress=progress, notify=notify, resume_how=resume_how)


def _check_same(config: RunConfig, method: str | None, task: TaskLike | None, where: Path) -> None:
    """A one-line error when a resumed run's method or task is not the one asked for."""
    if method is not None and method != config.method:
        raise PromptoptError(
            f"run {str(where)!r} optimizes with {config.method!r}, not {method!r}",
            hint="pass the run's own method, or none",
        )
    if task is not None and task_reference(task) != config.task:
        raise PromptoptError(
            f"run {str(where)!r} is for task {config.task!r}, not {task_reference(task)!r}",
            hint="pass the run's own task, or none",
        )


def load_run(path: str | Path) -> RunResult:
    """The result of the finished run in ``path``; a one-line error for a folder that holds no
    run or an unfinished one (resume it with ``optimize(resume=path)``)."""
    from promptopt.evalsetup import check_run_dir
    from promptopt.runs import RunResult

    run_dir = Path(path)
    check_run_dir(run_dir, flag="run")
    result = RunResult.load(run_dir)
    if result is None:
        raise PromptoptError(
            f"run {str(run_dir)!r} has not finished",
            hint=f"resume it with {_python_resume(run_dir)} or `promptopt run --resume {run_dir}`",
        )
    return result


# --------------------------------------------------------------------------- evaluate


def evaluate(
    prompt: str | RunResult,
    task: TaskLike | None = None,
    *,
    model: str | None = None,
    backend: str | None = None,
    split: str = "test",
    limit: int | None = None,
    scoring: str = "generate",
    max_new_tokens: int = 512,
    options: Mapping[str, Any] | None = None,
    data_dir: str | Path | None = None,
    cache: bool = True,
    progress: bool = True,
    out: str | Path | None = None,
    separator: str | None = None,
) -> EvalResult:
    """Evaluate ``prompt`` on ``split`` of ``task``: the mean score with its 95% bootstrap
    interval and one record per example. ``prompt`` is a text (``""``: the bare question) or
    a run's result (its best prompt, laid out as the run used it; ``task`` then defaults to
    the run's). ``cache`` reuses the model's stored outputs (verdicts are always derived
    again); ``out`` also writes ``examples.jsonl``, ``summary.json`` and ``report.html`` there."""
    from promptopt.config import refuse_run_level_options
    from promptopt.evalcache import EvalCache
    from promptopt.evalsetup import (
        apply_limit,
        build_task_and_backend,
        check_split_and_scoring,
        prompt_text,
        with_run_task_settings,
    )
    from promptopt.evaluation import evaluate as evaluate_examples
    from promptopt.evaluation import write_report
    from promptopt.outputs import check_writable_dir
    from promptopt.progress import Progress
    from promptopt.results import EvalResult
    from promptopt.runs import RunResult
    from promptopt.types import Prompt

    split_name, mode = check_split_and_scoring(split, scoring)
    if isinstance(prompt, RunResult):
        text, separator = prompt.best_prompt, separator or prompt.prompt_separator
        task = task if task is not None else prompt.task
    elif isinstance(prompt, str):
        text = prompt_text(prompt)
    else:
        raise PromptoptError(
            f"prompt of type {type(prompt).__name__} is not supported",
            hint="pass the prompt text, or a run's result (promptopt.load_run(DIR))",
        )
    if task is None:
        raise PromptoptError("no task given", hint="pass a task name, a data file or a table")
    ref = task_reference(task)
    values = dict(options or {})
    if isinstance(prompt, RunResult) and prompt.run_dir is not None:
        values, run_data_dir = with_run_task_settings(
            Path(prompt.run_dir), ref, values, None if data_dir is None else str(data_dir)
        )
        data_dir = run_data_dir
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        check_writable_dir(out_path, "--out")
    refuse_run_level_options(values)
    run_level = {"data_dir": str(data_dir)} if data_dir is not None else {}
    task_obj, backend_obj = build_task_and_backend(
        ref, backend or DEFAULT_EVAL_BACKEND, model, values, run_level, split=split_name
    )
    try:
        examples = apply_limit(task_obj.examples(split_name), limit, split=split, task=ref)
        report = evaluate_examples(
            backend_obj,
            task_obj,
            Prompt(text=text, separator=separator),
            examples,
            scoring=mode,
            max_new_tokens=max_new_tokens,
            split=split,
            progress=Progress(enabled=None if progress else False),
            cache=EvalCache.default() if cache else None,
        )
    finally:
        backend_obj.close()
    if out_path is not None:
        kept = (
            "the model outputs are cached: rerun with a writable out folder and nothing is "
            "generated again"
            if cache
            else "free space or pass another out folder, then rerun"
        )
        write_report(report, out_path, hint=kept)
    result = EvalResult.from_report(report, examples)
    if out_path is not None:  # after the data files; a failure is one warning line
        from promptopt.htmlreport.evalpage import write_eval_report

        write_eval_report(result, out_path)
    return result


# --------------------------------------------------------------------------- study


def study(
    methods: str | Sequence[str] | None,
    tasks: TaskLike | Sequence[TaskLike] | None,
    out: str | Path,
    *,
    seeds: int | Sequence[int] | None = None,
    model: str | None = None,
    backend: str | None = None,
    optimizer_model: str | None = None,
    optimizer_backend: str | None = None,
    options: Mapping[str, Any] | None = None,
    eval_backend: str | None = None,
    eval_model: str | None = None,
    eval_options: Mapping[str, Any] | None = None,
    eval_max_new_tokens: int | None = None,
    test_limit: int | None = None,
    scoring: str | Sequence[str] = "generate",
    transfer: Sequence[str] = (),
    data_dir: str | Path | None = None,
    test_from: int | None = None,
    baseline_prompts: Sequence[str] = (),
    extend: bool = False,
    export: str | Path | None = None,
    pilot: bool = False,
    progress: bool = True,
    executor: str = "local",
    address: str | None = None,
    cpus_per_run: float = 1.0,
    plugins: Sequence[str | Path] = (),
) -> StudyResult:
    """Run every (method, task, seed), evaluate each best prompt on the task's shared test
    set against its initial prompt, the empty prompt, the training majority class and the
    ``baseline_prompts``, and write the report into ``out``. Calling it again resumes
    unfinished runs and reuses every evaluation; ``methods`` and ``tasks`` None continue the
    study recorded in ``out`` (or re-render it, when ``out`` is an export). ``extend`` adds
    ``methods``, ``tasks`` and ``seeds`` to it; ``export`` also writes the committable subset
    there; ``pilot`` only measures the baselines on dev rows."""
    from promptopt.results import StudyResult
    from promptopt.rundir import read_json_object
    from promptopt.studies.driver import INVOCATION, render_export, run_study
    from promptopt.studies.plan import STUDY_FILE, read_settings

    root = Path(out)
    ray_options = _ray_options(executor, address, cpus_per_run, plugins)
    recorded = methods is None and tasks is None and not extend
    if not (recorded or extend) and (root / STUDY_FILE).is_file():
        from promptopt.studies.record import is_export

        if is_export(root):
            raise PromptoptError(
                f"{str(out)!r} is an export: it only re-renders its report",
                hint=f"run `promptopt study --out {out}` without grid flags",
            )
    if recorded or extend:
        if not (root / STUDY_FILE).is_file():
            flag = "--extend" if extend else "--methods and --tasks"
            raise PromptoptError(
                f"--out {str(out)!r} holds no study to continue",
                hint="pass --methods and --tasks to start one"
                + ("" if not extend else f" ({flag} grows an existing study)"),
            )
        from promptopt.studies.record import is_export

        if is_export(root):
            if extend or export is not None or pilot:
                raise PromptoptError(
                    f"{str(out)!r} is an export: it only re-renders its report",
                    hint="extend, export or pilot the original study folder",
                )
            report = render_export(root, progress=progress)
            return StudyResult(root=root, report=report, files=[root / "report.md"])
        stored = read_settings(root)
    added: dict[str, list[Any]] | None = None
    if recorded:
        settings = stored
    elif extend:
        from promptopt.studies.record import extend_settings

        method_names = _method_names(methods) if methods is not None else []
        task_refs = _task_refs(tasks) if tasks is not None else []
        seed_list = _seed_list(seeds) if seeds is not None else []
        settings, added = extend_settings(stored, method_names, task_refs, seed_list)
    else:
        if methods is None or tasks is None:
            raise PromptoptError(
                "pass both --methods and --tasks", hint="or neither, to continue a study"
            )
        settings = _settings(
            methods,
            tasks,
            seeds,
            model=model,
            backend=backend,
            optimizer_model=optimizer_model,
            optimizer_backend=optimizer_backend,
            options=options,
            eval_backend=eval_backend,
            eval_model=eval_model,
            eval_options=eval_options,
            eval_max_new_tokens=eval_max_new_tokens,
            test_limit=test_limit,
            scoring=scoring,
            transfer=transfer,
            data_dir=data_dir,
            test_from=test_from,
            baseline_prompts=baseline_prompts,
        )
    if pilot:
        from promptopt.studies.pilot import run_pilot

        data = run_pilot(settings, root, progress=progress, echo=True)
        return StudyResult(root=root, report=data, files=[root / "pilot" / "pilot.md"])
    report = run_study(
        settings,
        root,
        progress=progress,
        ray=ray_options,
        added=added,
        export_to=Path(export) if export is not None else None,
    )
    invocation = read_json_object(root / INVOCATION, hint="rerun the study")
    files = [root / str(name) for name in invocation.get("outputs", [])]
    return StudyResult(root=root, report=report, files=files)


def _method_names(methods: str | Sequence[str]) -> list[str]:
    from promptopt.studies.plan import parse_names

    if isinstance(methods, str):
        return parse_names(methods, "--methods")
    return _names(methods, "methods")


def _task_refs(tasks: TaskLike | Sequence[TaskLike]) -> list[str]:
    task_list = tasks if _is_many(tasks) else [tasks]
    return _names([absolute_data_file(task_reference(t)) for t in task_list], "tasks")


def _seed_list(seeds: int | Sequence[int] | None) -> list[int]:
    from promptopt.studies.plan import parse_seeds

    if seeds is None:
        return [0]
    if isinstance(seeds, int):
        return parse_seeds(str(seeds))
    return parse_seeds(",".join(str(int(s)) for s in seeds))


def _scorings(scoring: str | Sequence[str]) -> list[Scoring]:
    """``"generate,logprob"`` or a list -> the scorings; an unknown one is a one-line error."""
    from promptopt.evaluation import is_scoring
    from promptopt.studies.plan import parse_names

    names = parse_names(scoring, "--scoring") if isinstance(scoring, str) else list(scoring)
    chosen: list[Scoring] = []
    for name in names:
        if not is_scoring(name):
            raise PromptoptError(f"unknown --scoring {name!r}", hint="use generate or logprob")
        chosen.append(name)
    return chosen


def _settings(
    methods: str | Sequence[str],
    tasks: TaskLike | Sequence[TaskLike],
    seeds: int | Sequence[int] | None,
    *,
    options: Mapping[str, Any] | None,
    eval_options: Mapping[str, Any] | None,
    scoring: str | Sequence[str],
    transfer: Sequence[str],
    data_dir: str | Path | None,
    baseline_prompts: Sequence[str],
    **values: Any,
) -> StudySettings:
    """The settings of a new study from the API's arguments (checked, paths resolved)."""
    from promptopt.config import refuse_run_level_options
    from promptopt.studies.plan import StudySettings

    scorings = _scorings(scoring)
    method_names = _method_names(methods)
    task_refs = _task_refs(tasks)
    seed_list = _seed_list(seeds)
    run_options = dict(options or {})
    refuse_run_level_options(run_options, flags={"seed": "--seeds (seeds= in Python)"})
    data_root = None
    if data_dir is not None:
        data_path = Path(data_dir).expanduser()
        if not data_path.is_dir():
            raise PromptoptError(
                f"--data-dir {str(data_dir)!r} is not a directory", hint="check it"
            )
        data_root = str(data_path.resolve())
    if values.get("test_from") is not None and values["test_from"] < 1:
        raise PromptoptError("--test-from must be at least 1", hint="e.g. --test-from 100")
    prompts = [p for p in baseline_prompts]
    if any(not p.strip() for p in prompts):
        raise PromptoptError(
            "--baseline-prompt is empty", hint="the empty prompt is a baseline already"
        )
    return StudySettings(
        methods=method_names,
        tasks=task_refs,
        seeds=seed_list,
        options=run_options,
        data_dir=data_root,
        eval_options=dict(eval_options or {}),
        scorings=scorings,
        transfer=list(transfer),
        baseline_prompts=prompts,
        **values,
    )


def _ray_options(
    executor: str, address: str | None, cpus_per_run: float, plugins: Sequence[str | Path]
) -> Any:
    """The Ray options of ``--executor ray`` (None for local); bad combinations fail."""
    if executor not in ("local", "ray"):
        raise PromptoptError(f"unknown --executor {executor!r}", hint="use local or ray")
    if address is not None and executor != "ray":
        raise PromptoptError("--address is for --executor ray", hint="add --executor ray")
    if executor != "ray":
        return None
    from promptopt.studies.executors import RayOptions

    return RayOptions(
        address=address,
        cpus_per_run=cpus_per_run,
        plugins=[str(Path(p).resolve()) for p in plugins],
    )


def _is_many(tasks: Any) -> bool:
    """True for a list of tasks; False for one task (a name, a path, a DataFrame or a list of
    dicts, which is one table)."""
    if isinstance(tasks, str | Path) or not isinstance(tasks, Sequence):
        return False
    return not (len(tasks) > 0 and all(isinstance(t, Mapping) for t in tasks))


def _names(values: Sequence[str], what: str) -> list[str]:
    """``values`` without blanks and duplicates (order kept); empty is an error."""
    names: list[str] = []
    for value in values:
        name = str(value).strip()
        if name and name not in names:
            names.append(name)
    if not names:
        raise PromptoptError(f"{what} names nothing", hint=f"pass at least one of the {what}")
    return names
