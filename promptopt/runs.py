"""Runs as a library: start or resume an optimization run in a run directory and get its typed
result. ``promptopt run``, studies, benchmarks and the testing kit all go through here; the
command line (:mod:`promptopt.cli.run`) only parses flags and prints.

The building blocks: :func:`start_run` and :func:`resume_run` (the loop in a new or a resumed
run directory), :class:`RunResult` (``result.json``, typed), :class:`RunWork` (what one call
loaded and generated), :func:`describe_run` (what a run would use, no model loaded) and
:func:`saved_run_config` (a run directory's configuration).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.errors import PromptoptError

if TYPE_CHECKING:
    from promptopt.components import Backend
    from promptopt.config import RunConfig
    from promptopt.rundir import RunDir
    from promptopt.types import Prompt

#: Where :func:`start_run` and :func:`resume_run` say what they do by default: one line each on
#: stderr (the run directory, and how to resume after an interruption).
Notify = Callable[[str], None]
#: How to resume the run in a folder, for the line printed when a run is interrupted.
ResumeHow = Callable[[Path], str]


def _cli_resume(run_dir: Path) -> str:
    return f"`promptopt run --resume {run_dir}`"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass(frozen=True)
class RunResult:
    """A finished run: the fields of its ``result.json`` every method writes, typed, with the
    run directory; :meth:`to_dict` gives the whole file, the method's own fields included.

    ``dev_accuracy_initial`` / ``dev_accuracy_final``: the initial and the best prompt's
    accuracy on the dev split, None when the method does not measure them; ``compute``: the
    run's totals (seconds, seconds per phase, usage per model role, peak memory).

    The acceptance rule (``-o accept``, :mod:`promptopt.acceptance`): ``accepted`` says whether
    the method's choice ``candidate_prompt`` replaced the initial prompt, under
    ``accept_rule``, with ``accept_dev_difference`` (candidate minus initial mean dev score)
    and its one-sided ``accept_p_value``; None for runs written before the rule existed."""

    run_dir: Path
    best_prompt: str
    initial_prompt: str
    steps_run: int
    dev_accuracy_initial: float | None = None
    dev_accuracy_final: float | None = None
    accepted: bool | None = None
    accept_rule: str | None = None
    accept_dev_difference: float | None = None
    accept_p_value: float | None = None
    candidate_prompt: str | None = None
    compute: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The contents of ``result.json`` (a copy)."""
        return dict(self.data)

    @property
    def prompt_separator(self) -> str | None:
        """What joined the run's prompts to each question (GPO: a new line); None: the
        task's layout."""
        separator = self.data.get("prompt_separator")
        return separator if isinstance(separator, str) else None

    @property
    def best(self) -> Prompt:
        """The best prompt as the run used it (text and layout)."""
        from promptopt.types import Prompt

        return Prompt(self.best_prompt, separator=self.prompt_separator)

    @property
    def config(self) -> dict[str, Any]:
        """The run's saved configuration (``config.json``): method, task, model, options."""
        from promptopt.rundir import RunDir

        return RunDir.open(self.run_dir).read_config()

    @property
    def method(self) -> str:
        """The method that optimized the prompt."""
        return str(self.config.get("method", ""))

    @property
    def task(self) -> str:
        """The task the run optimized for (a name or a data-file path)."""
        return str(self.config.get("task", ""))

    @property
    def steps(self) -> list[dict[str, Any]]:
        """One record per optimization step (``steps.jsonl``): candidates, losses, the chosen
        prompt, the step's notes and compute."""
        from promptopt.rundir import RunDir

        return RunDir.open(self.run_dir).read_steps()

    @classmethod
    def from_dict(cls, data: dict[str, Any], run_dir: Path) -> RunResult:
        """The result of the run in ``run_dir`` from the contents of its ``result.json``; a
        one-line error when a field every run writes is missing or of the wrong type."""
        where = f"{str(Path(run_dir) / 'result.json')!r}"
        for key, kind in (("best_prompt", str), ("initial_prompt", str), ("steps_run", int)):
            if not isinstance(data.get(key), kind) or isinstance(data.get(key), bool):
                raise PromptoptError(
                    f"{where} has no {kind.__name__} {key!r}",
                    hint="was it written by promptopt run?",
                )
        return cls(
            run_dir=Path(run_dir),
            best_prompt=data["best_prompt"],
            initial_prompt=data["initial_prompt"],
            steps_run=data["steps_run"],
            dev_accuracy_initial=_accuracy(data.get("dev_accuracy_initial")),
            dev_accuracy_final=_accuracy(data.get("dev_accuracy_final")),
            accepted=_flag(data.get("accepted")),
            accept_rule=_text(data.get("accept_rule")),
            accept_dev_difference=_accuracy(data.get("accept_dev_difference")),
            accept_p_value=_accuracy(data.get("accept_p_value")),
            candidate_prompt=_text(data.get("candidate_prompt")),
            compute=dict(data.get("compute") or {}),
            data=dict(data),
        )

    @classmethod
    def load(cls, run_dir: str | Path) -> RunResult | None:
        """The result of the run in ``run_dir``, or None while it is unfinished."""
        from promptopt.rundir import RunDir

        path = Path(run_dir)
        data = RunDir.open(path).read_result()
        return None if data is None else cls.from_dict(data, path)


def _accuracy(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class RunWork:
    """What one :func:`start_run` or :func:`resume_run` call did in this process (a study's
    summary line adds it up): the models it loaded and the tokens they generated."""

    models_loaded: int = 0
    generated_tokens: int = 0


def start_run(
    config: RunConfig,
    *,
    out: Path | None = None,
    progress: bool = True,
    backend: Backend | None = None,
    work: RunWork | None = None,
    notify: Notify | None = _stderr,
    resume_how: ResumeHow | None = None,
) -> RunResult:
    """Build the components and run the loop in a new run directory ``out`` (default
    ``runs/<method>-<task>-<UTC time>``; it must not hold a run). ``backend`` reuses an already
    loaded task model (tests, benchmarks, studies); it is not closed. ``work``, when given,
    receives what this call loaded and generated; ``notify`` gets the run directory's line
    (None: nothing is printed), the line saying the initial prompt was kept (when the
    acceptance rule rejects the method's choice) and, on an interrupt, how to resume
    (``resume_how``, default the ``promptopt run --resume`` command)."""
    from promptopt.rundir import default_run_dir

    path = out or default_run_dir(config.method, config.task)
    return _run(config, path, None, progress, backend, work, notify, resume_how)


def resume_run(
    run_dir: RunDir,
    config: RunConfig | None = None,
    *,
    progress: bool = True,
    backend: Backend | None = None,
    work: RunWork | None = None,
    notify: Notify | None = _stderr,
    resume_how: ResumeHow | None = None,
) -> RunResult:
    """Continue the run in ``run_dir`` from its checkpoint, with ``config`` (default: the
    configuration saved in it). The other arguments are :func:`start_run`'s."""
    from promptopt.config import make_run_config

    if config is None:
        config = make_run_config(run_dir.read_config(), {})
    return _run(config, run_dir.path, run_dir, progress, backend, work, notify, resume_how)


def _run(
    config: RunConfig,
    path: Path,
    resume_dir: RunDir | None,
    progress: bool,
    backend: Backend | None,
    work: RunWork | None,
    notify: Notify | None,
    resume_how: ResumeHow | None,
) -> RunResult:
    from promptopt.assembly import build_components, plan_run
    from promptopt.loop import optimize
    from promptopt.pluginmanager import get_plugin_manager
    from promptopt.progress import Progress
    from promptopt.records import RunInfo
    from promptopt.registry import get_registry, plugin_rows
    from promptopt.rundir import RunDir
    from promptopt.runlock import RunLock

    say = notify or (lambda line: None)
    if resume_dir is None:
        RunDir.ensure_free(path)  # before the model loads
    plan = plan_run(config, get_registry())
    identity = plan.task_cls.identity()
    if resume_dir is None:
        config = config.model_copy(update={"task_identity": identity})
    else:  # the data must be what the run started on, whatever configuration resumes it
        check_task_identity(config.task, resume_dir.read_config().get("task_identity"), identity)
    lock = RunLock(path).acquire()  # one process per run directory, before any model loads
    try:
        components = build_components(plan, backend=backend)
    except BaseException:
        lock.release(remove_if_empty=resume_dir is None)
        raise
    config_dict = config.model_dump()
    initial = None
    try:
        if resume_dir is None:  # a bad initial prompt fails before the run directory exists
            initial = components.method.initial_population(components.task, components.backend)
        run_dir = resume_dir or RunDir.create(path, config_dict, plugin_rows())
    except BaseException:
        if backend is None:
            components.close()
        lock.release(remove_if_empty=True)
        raise
    info = RunInfo(
        run_dir=run_dir.path,
        config=config_dict,
        components=components.names(),
        resumed=resume_dir is not None,
    )
    say(f"run directory: {run_dir.path}")
    try:
        result = optimize(
            components,
            run_dir,
            get_plugin_manager(),
            info,
            seed=config.seed,
            progress=Progress(enabled=None if progress else False),
            initial=initial,
            notify=notify,
        )
    except KeyboardInterrupt:
        say(f"promptopt: interrupted; resume with {(resume_how or _cli_resume)(run_dir.path)}")
        raise
    finally:
        if work is not None:
            models = components.backends()
            work.models_loaded += len(models) - (backend is not None)
            work.generated_tokens += sum(m.usage.generated_tokens for m in models.values())
        run_dir.close()
        if backend is None:
            components.close()
        lock.release()
    return RunResult.from_dict(result, run_dir.path)


#: What to do when a run's data changed since it started.
CHANGED_DATA_HINT = (
    "restore the data as it was to resume this run, or start a new run on the changed data"
)


def check_task_identity(
    task: str, recorded: Any, current: dict[str, Any], *, hint: str = CHANGED_DATA_HINT
) -> None:
    """A one-line error when the task's data identity (``Task.identity``, e.g. a data file's
    SHA-256) differs from the one ``recorded`` when the run started."""
    before = recorded if isinstance(recorded, dict) else {}
    if before == current:
        return
    keys = sorted(set(before) | set(current))
    key = next(k for k in keys if before.get(k) != current.get(k))
    raise PromptoptError(
        f"task {task!r} changed since the run started: its {key} was "
        f"{_shown(before.get(key))}, now {_shown(current.get(key))}",
        hint=hint,
    )


def _shown(value: Any) -> str:
    if value is None:
        return "(not recorded)"
    text = str(value)
    return text[:16] + "..." if len(text) > 16 else text


def describe_run(config: RunConfig) -> dict[str, Any]:
    """What a run would use, without loading a model: components, every option with its value
    and source, split sizes read from the data, and what the method adds."""
    from promptopt.assembly import plan_run
    from promptopt.registry import get_registry

    plan = plan_run(config, get_registry())
    task = plan.task_cls(plan.options["task"])
    description = plan.describe(task)
    method = plan.method_cls(plan.options["method"])
    description.update(method.describe(task))
    return description


def saved_run_config(run_dir: RunDir) -> RunConfig | None:
    """A run directory's saved configuration, or None when this version cannot read it."""
    from promptopt.config import make_run_config

    try:
        return make_run_config(run_dir.read_config(), {})
    except PromptoptError:
        return None
