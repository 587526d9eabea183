"""Where a study's work runs: in this process (``local``, the default) or as Ray tasks
(``--executor ray``), one task per (method, task, seed) run and one per run's test
evaluations. Every task writes to the study directory on a shared path (run directories, the
study's evaluation store), so a study resumes after a lost worker by rerunning the command, and
the report is always assembled here from what the tasks wrote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.pluginmanager import load_plugin_files
from promptopt.runs import RunWork
from promptopt.studies.plan import RunSpec, StudySettings
from promptopt.studies.runner import StudyLog, in_study, run_grid

EXECUTORS = ("local", "ray")


@dataclass
class RayOptions:
    """How runs ask Ray for resources. ``address`` None starts a local Ray instance."""

    address: str | None = None
    cpus_per_run: float = 1.0
    #: GPUs for a run whose method needs a white-box model, when the cluster has GPUs.
    gpus_per_white_box_run: float = 1.0
    #: Plugin files every worker registers before it runs anything (``--plugin``).
    plugins: list[str] = field(default_factory=list)


def _run_one(
    spec: RunSpec, settings: StudySettings, plugins: list[str]
) -> tuple[bool, dict[str, int]]:
    """A Ray task: finish one run (skip, resume or start it); whether it did model work, and
    the models it loaded and tokens it generated (the driver's summary adds them up)."""
    import os
    from dataclasses import asdict

    from promptopt.studies.runner import ensure_run

    os.environ.setdefault("PROMPTOPT_PROGRESS", "0")
    load_plugin_files(plugins)
    work = RunWork()
    worked = ensure_run(spec, settings, progress=False, work=work)
    return worked, asdict(work)


def _evaluate_one(
    root: Path, settings: StudySettings, spec: RunSpec, targets: list[Any], plugins: list[str]
) -> dict[str, int]:
    """A Ray task: one run's test evaluations on every target, written to the study store."""
    import os

    from promptopt.studies.evaluate import StudyEvaluator

    os.environ.setdefault("PROMPTOPT_PROGRESS", "0")
    load_plugin_files(plugins)
    evaluator = StudyEvaluator(root, settings, StudyLog(root, echo=False), progress=False)
    evaluator.evaluate([spec], targets)
    return {
        "computed": evaluator.computed,
        "models_loaded": evaluator.models_loaded,
        "generated_tokens": evaluator.generated_tokens,
    }


class RayExecutor:
    """Runs the grid and the per-run evaluations as Ray tasks with resource requests."""

    def __init__(self, options: RayOptions, log: StudyLog) -> None:
        try:
            import ray
        except ImportError:
            raise PromptoptError(
                "--executor ray needs Ray", hint="pip install 'ray>=2.9' (or use --executor local)"
            ) from None
        self.ray, self.options, self.log = ray, options, log
        self._started_here = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"log_to_driver": False, "include_dashboard": False}
            if options.address:
                kwargs["address"] = options.address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = options.address or "a local instance"
                raise PromptoptError(
                    f"Ray could not start or reach {where}: {str(exc).splitlines()[0]}",
                    hint="check --address (e.g. ray://head:10001) or that `ray start` ran",
                ) from None
            self._started_here = True
        resources = ray.cluster_resources()
        self.gpus = float(resources.get("GPU", 0.0))
        log(f"ray: {resources.get('CPU', 0):g} CPUs, {self.gpus:g} GPUs")

    def _resources(self, spec: RunSpec, settings: StudySettings) -> dict[str, float]:
        from promptopt.registry import get_registry

        method = get_registry().get("method", spec.method)
        wants_gpu = bool(getattr(method, "needs_white_box", False)) and self.gpus > 0
        gpus = self.options.gpus_per_white_box_run if wants_gpu else 0.0
        return {"num_cpus": self.options.cpus_per_run, "num_gpus": gpus}

    def run_grid(
        self, specs: Sequence[RunSpec], settings: StudySettings, work: RunWork | None = None
    ) -> int:
        """Every run as one task; returns how many did model work (``work`` adds up the
        models the tasks loaded and the tokens they generated)."""
        remote = self.ray.remote(_run_one)
        futures = {
            remote.options(**self._resources(spec, settings)).remote(
                spec, settings, self.options.plugins
            ): spec
            for spec in specs
        }
        self.log(f"ray: {len(futures)} runs submitted")
        worked = 0
        pending = list(futures)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            spec = futures[done[0]]
            did_work, counts = self._get(done[0], f"run {spec.label}")
            worked += bool(did_work)
            if work is not None:
                work.models_loaded += int(counts["models_loaded"])
                work.generated_tokens += int(counts["generated_tokens"])
            self.log(f"ray: run {spec.index}/{len(specs)} finished: {spec.label}")
        return worked

    def prefetch_evaluations(
        self, root: Path, settings: StudySettings, specs: Sequence[RunSpec], targets: list[Any]
    ) -> dict[str, int]:
        """Every run's test evaluations as one task each, into the study store."""
        remote = self.ray.remote(_evaluate_one)
        futures = [
            remote.options(num_cpus=self.options.cpus_per_run).remote(
                root, settings, spec, targets, self.options.plugins
            )
            for spec in specs
        ]
        totals = {"computed": 0, "models_loaded": 0, "generated_tokens": 0}
        for future, spec in zip(futures, specs, strict=True):
            counts = self._get(future, f"evaluation of {spec.label}")
            for key in totals:
                totals[key] += int(counts[key])
        return totals

    def _get(self, future: Any, what: str) -> Any:
        try:
            return self.ray.get(future)
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, Exception) else exc
            if isinstance(cause, PromptoptError):
                cause = in_study(cause)
                raise PromptoptError(f"{what}: {cause.message}", hint=cause.hint) from None
            raise

    def close(self) -> None:
        if self._started_here:
            self.ray.shutdown()


def run_grid_with(
    executor: RayExecutor | None,
    specs: Sequence[RunSpec],
    settings: StudySettings,
    log: StudyLog,
    *,
    progress: bool,
    work: RunWork | None = None,
) -> int:
    """The grid on ``executor`` (None: this process, one run after another); ``work`` adds
    up the runs' models and tokens wherever they ran."""
    if executor is None:
        return run_grid(specs, settings, log, progress=progress, work=work)
    return executor.run_grid(specs, settings, work)
