"""The ``mlflow`` tracker: a run is an MLflow run (its resolved configuration as parameters,
per-step metrics, its files as artifacts, its final prompt in MLflow's prompt registry); a
study is a parent run with one nested run per (method, task, seed).

Where it logs is MLflow's own choice: ``MLFLOW_TRACKING_URI`` (a server, ``file:DIR``,
``sqlite:///FILE``), else MLflow's default local store, and ``MLFLOW_EXPERIMENT_NAME`` (default
``promptopt``)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.records import RunInfo, StepRecord
from promptopt.tracking import Tracker
from promptopt_mlflow.flatten import params, result_metrics, step_metrics

EXPERIMENT = "promptopt"
#: Run-directory files that are the run's record (the checkpoint and lock are not).
SKIPPED = {"checkpoint.json", ".lock"}
#: A server that does not answer fails fast (MLflow retries for minutes by default); the
#: user's own settings of these win.
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


def prompt_name(method: str, task: str) -> str:
    """The registry name of a method's prompts for a task: ``promptopt-greater-bbh-navigate``
    (MLflow allows letters, digits, ``-``, ``_`` and ``.``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"promptopt-{method}-{task}").strip("-")


def run_name(config: dict[str, Any]) -> str:
    return f"{config.get('method')} {config.get('task')} seed {config.get('seed')}"


class MlflowTracker(Tracker):
    """Logs runs and studies to MLflow (see the module docstring)."""

    name = "mlflow"
    description = "MLflow: parameters, per-step metrics, artifacts, the prompt registry"

    def __init__(self) -> None:
        try:
            import mlflow
        except ImportError:
            raise PromptoptError(
                "--tracker mlflow needs MLflow", hint="pip install mlflow"
            ) from None
        self.mlflow = mlflow
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if mlflow.get_tracking_uri().startswith("file:") or "://" not in mlflow.get_tracking_uri():
            # MLflow keeps its file store working only on request; asking for one is that
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self._experiment_set = False
        self._study: Any = None
        self._runs: dict[Path, Any] = {}

    def _experiment(self) -> None:
        if self._experiment_set:
            return
        if not (os.environ.get("MLFLOW_EXPERIMENT_NAME") or os.environ.get("MLFLOW_EXPERIMENT_ID")):
            self.mlflow.set_experiment(EXPERIMENT)
        self._experiment_set = True

    # ------------------------------------------------------------------ a study

    def study_start(self, root: Path, settings: dict[str, Any]) -> None:
        self._experiment()
        self._study = self.mlflow.start_run(
            run_name=f"study {root.name}",
            tags={"promptopt.kind": "study", "promptopt.dir": str(root.resolve())},
        )
        self.mlflow.log_params(params(settings))

    def study_end(self, root: Path, files: list[Path]) -> None:
        if self._study is None:
            return
        for path in files:
            if path.is_file():
                self.mlflow.log_artifact(str(path), run_id=self._study.info.run_id)
        self.mlflow.end_run()
        self._study = None

    # ------------------------------------------------------------------ a run

    def run_start(self, run: RunInfo) -> None:
        self._experiment()
        config = run.config
        tags = {
            "promptopt.kind": "run",
            "promptopt.dir": str(Path(run.run_dir).resolve()),
            "promptopt.method": str(config.get("method")),
            "promptopt.task": str(config.get("task")),
            "promptopt.resumed": str(run.resumed).lower(),
            **{f"promptopt.component.{k}": str(v) for k, v in run.components.items()},
        }
        active = self.mlflow.start_run(
            run_name=run_name(config), nested=self._study is not None, tags=tags
        )
        self._runs[Path(run.run_dir)] = active
        self.mlflow.log_params(params(config))

    def step_end(self, run: RunInfo, record: StepRecord) -> None:
        active = self._runs.get(Path(run.run_dir))
        if active is None:
            return
        metrics = step_metrics(record.to_dict())
        if metrics:
            self.mlflow.log_metrics(metrics, step=record.step, run_id=active.info.run_id)

    def run_end(self, run: RunInfo, result: dict[str, Any]) -> None:
        active = self._runs.pop(Path(run.run_dir), None)
        if active is None:
            return
        run_id = active.info.run_id
        self.mlflow.log_metrics(result_metrics(result), run_id=run_id)
        for path in sorted(Path(run.run_dir).iterdir()):
            if path.is_file() and path.name not in SKIPPED and not path.name.startswith("."):
                self.mlflow.log_artifact(str(path), run_id=run_id)
        self._register_prompt(result, run_id)
        self.mlflow.end_run()

    def _register_prompt(self, result: dict[str, Any], run_id: str) -> None:
        """The final prompt as a new version in MLflow's prompt registry, tagged with the
        task, model and dev score; the run gets a tag naming the version."""
        best = str(result.get("best_prompt") or "")
        if not best.strip():  # the registry refuses an empty template
            self.mlflow.set_tag("promptopt.prompt", "(empty: the bare question)")
            return
        dev = result.get("dev_accuracy_final")
        tags = {
            "task": str(result.get("task")),
            "model": str(result.get("model")),
            "method": str(result.get("method")),
            "dev_score": "" if dev is None else str(dev),
            "mlflow_run_id": run_id,
        }
        if "accepted" in result:
            tags["accepted"] = str(bool(result["accepted"])).lower()
        name = prompt_name(str(result.get("method")), str(result.get("task")))
        version = self.mlflow.genai.register_prompt(
            name=name,
            template=best,
            commit_message=f"promptopt {result.get('method')} on {result.get('task')}",
            tags=tags,
        )
        self.mlflow.set_tag("promptopt.prompt", f"prompts:/{name}/{version.version}")

    def close(self, failed: bool) -> None:
        """End every run still open (an error or interrupt: as failed)."""
        status = "FAILED" if failed else "FINISHED"
        while self.mlflow.active_run() is not None:
            self.mlflow.end_run(status=status)
        self._runs.clear()
        self._study = None
