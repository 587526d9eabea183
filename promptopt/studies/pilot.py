"""``promptopt study --pilot``: the baselines of every task measured on *dev* rows (never the
test set), so tasks and settings can be chosen before the study without looking at test rows.
Writes ``DIR/pilot/pilot.json`` and ``pilot.md``; no run starts and ``study.json`` is not
written, so the study may then start in the same folder with the chosen settings."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from promptopt.studies.plan import PILOT, STUDY_WRITE_HINT, RunSpec, StudySettings
from promptopt.studies.report import acc_ci, table
from promptopt.studies.runner import StudyLog
from promptopt.studies.stats import bootstrap_ci


def _entry(scores: Any) -> dict[str, Any]:
    low, high = bootstrap_ci(scores.scores)
    return {**scores.to_dict(), "ci_low": low, "ci_high": high}


class RunBackends:
    """The backends the study's runs use (one per backend class, model and options), loaded on
    first need: a method's initial prompt is made by its own run backend (GReaTer's needs a
    white-box model and tokenizer, which the evaluation backend may not be)."""

    def __init__(self) -> None:
        self._open: dict[str, Any] = {}

    def get(self, plan: Any) -> Any:
        cls = plan.backend_cls()
        options = plan.options["backend"]
        key = json.dumps(
            [cls.__module__, cls.__qualname__, plan.config.model, options.model_dump(mode="json")],
            sort_keys=True,
            default=str,
        )
        if key not in self._open:
            self._open[key] = cls(plan.config.model, options)
        return self._open[key]

    def close(self) -> None:
        for backend in self._open.values():
            backend.close()
        self._open.clear()


def initial_prompt(
    settings: StudySettings, method: str, task_name: str, task: Any, backends: RunBackends
) -> tuple[str, str | None]:
    """A method's initial prompt (text, separator) for ``task``, as its runs would start: made
    by the run's own backend."""
    from promptopt.studies.evaluate import run_plan
    from promptopt.studies.runner import expected_config

    spec = RunSpec(0, method, task_name, settings.seeds[0], Path("."))
    plan = run_plan(expected_config(spec, settings).model_dump(mode="json"))
    instance = plan.method_cls(plan.options["method"])
    prompt = instance.initial_prompt(task, backends.get(plan))
    return prompt.text, prompt.separator


def run_pilot(settings: StudySettings, root: Path, *, progress: bool, echo: bool) -> dict[str, Any]:
    """Measure the baselines on dev rows; returns the pilot data (also written to disk)."""
    from promptopt.outputs import write_text
    from promptopt.studies.driver import check_settings, evaluation_targets
    from promptopt.studies.evaluate import StudyEvaluator, majority
    from promptopt.studies.testsets import examples_digest, study_task_data

    check_settings(settings)
    targets = evaluation_targets(settings)
    data = study_task_data(settings)
    folder = root / PILOT
    folder.mkdir(parents=True, exist_ok=True)
    log = StudyLog(folder, echo=echo)
    evaluator = StudyEvaluator(folder, settings, log, progress=progress)
    main = targets[0]
    tasks: dict[str, Any] = {}
    run_backends = RunBackends()
    try:
        for name, ctx in data.items():
            dev = replace(
                ctx, test=ctx.dev, digest=examples_digest(ctx.task, ctx.dev, ctx.max_new_tokens)
            )
            for scoring in settings.scorings:
                answer, scored = majority(ctx.task, ctx.train, ctx.dev)
                rows: dict[str, Any] = {f"majority class ({answer}, train labels)": _entry(scored)}
                rows["empty prompt"] = _entry(
                    evaluator._score(main, dev, scoring, "", f"{name} dev: empty prompt")
                )
                for i, text in enumerate(settings.baseline_prompts, start=1):
                    what = f"{name} dev: prompt {i}"
                    rows[f"prompt {i}"] = _entry(evaluator._score(main, dev, scoring, text, what))
                for method in settings.methods:
                    text, sep = initial_prompt(settings, method, name, ctx.task, run_backends)
                    what = f"{name} dev: initial prompt ({method})"
                    scores = evaluator._score(main, dev, scoring, text, what, sep)
                    rows[f"initial prompt ({method})"] = _entry(scores)
                tasks.setdefault(name, {})[scoring] = {"n": len(ctx.dev), "rows": rows}
    finally:
        run_backends.close()
        evaluator.close()
    from promptopt.studies.record import portable_settings

    values, relative = portable_settings(settings, folder)  # no absolute paths in the record
    pilot = {"split": "dev", "settings": values, "relative_paths": relative, "tasks": tasks}
    text = json.dumps(pilot, indent=2, ensure_ascii=False) + "\n"
    write_text(folder / "pilot.json", text, hint=STUDY_WRITE_HINT)
    lines = [
        "# promptopt study pilot (dev rows only)",
        "",
        "Baselines on each task's dev rows, to choose tasks and settings without the test set.",
    ]
    for name, by_scoring in tasks.items():
        for scoring, info in by_scoring.items():
            lines += ["", f"## {name} ({scoring}, n={info['n']} dev rows)", ""]
            cells = [[label, acc_ci(entry)] for label, entry in info["rows"].items()]
            lines.append(table(("", "dev acc [95% CI]"), cells))
    write_text(folder / "pilot.md", "\n".join(lines) + "\n", hint=STUDY_WRITE_HINT)
    log(f"pilot: wrote {folder / 'pilot.md'}")
    return pilot
