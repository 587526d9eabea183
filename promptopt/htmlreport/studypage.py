"""A study's ``report.html``: the tables of ``report.md``, the plots, and the per-example
browser over every (task, method, seed) run: the initial prompt, the optimized prompt and the
empty prompt side by side on each test example."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from promptopt.htmlreport.browser import Column, View, page_views, rows_of
from promptopt.htmlreport.render import REPORT_NAME, image_uri, render, write_html

#: What the study page needs per run: (prompt, separator) -> outcomes, on the main model.
Outcomes = Mapping[tuple[str, str | None], Sequence[Any]]


def study_views(
    report: dict[str, Any],
    examples: Mapping[str, Sequence[Any]],
    outcomes: Mapping[str, Outcomes],
) -> list[View]:
    """One view per run of ``report``: ``examples`` by test-set id, ``outcomes`` by test-set
    id then (prompt, separator). Runs whose outcomes are missing are left out."""
    views = []
    for run in report["runs"]:
        digest = run["test_set"]
        found = outcomes.get(digest, {})
        sep = (run.get("result") or {}).get("prompt_separator")
        initial, best = run["initial"]["prompt"], run["best"]["prompt"]
        wanted = [(initial, sep), (best, sep), ("", None)]
        if not all(key in found for key in wanted) or digest not in examples:
            continue
        test_set = report["test_sets"][digest]
        columns = [
            Column("initial prompt", initial),
            Column(f"optimized ({run['method']})", best),
            Column("empty prompt", ""),
        ]
        view = View(
            id=f"run{run['index']}",
            task=str(run["task"]),
            method=str(run["method"]),
            seed=str(run["seed"]),
            label=f"{run['method']} · {run['task']} · seed {run['seed']}",
            columns=columns,
            note=f"majority class: {test_set['majority_answer']}",
        )
        view.rows = rows_of(
            examples[digest], [found[key] for key in wanted], reference=0, optimized=1
        )
        views.append(view)
    return views


def study_tables(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The tables of ``report.md`` (overall, per task, transfer) as header and rows."""
    from promptopt.studies import report as md

    tables = [
        {
            "title": "Overall",
            "header": md.overall_header(report),
            "rows": md.overall_rows(report),
        }
    ]
    evaluation = report["evaluation"]
    for task in report["settings"]["tasks"]:
        tables.append(
            {
                "title": task,
                "header": md.task_header(report, task),
                "rows": md.task_rows(report, task),
            }
        )
        if evaluation.get("transfer"):
            tables.append(
                {
                    "title": f"Transfer ({task})",
                    "header": ("", f"{evaluation['backend']} (main)", *evaluation["transfer"]),
                    "rows": md.transfer_rows(report, task),
                }
            )
    return tables


def study_page(root: Path, report: dict[str, Any], views: list[View]) -> str:
    """The HTML of the study in ``root``."""
    settings, evaluation = report["settings"], report["evaluation"]
    plots = [
        (name, uri)
        for name, uri in (
            (name, image_uri(root / name)) for name in ("accuracy.png", "gain_vs_compute.png")
        )
        if uri is not None
    ]
    return render(
        "study.html.j2",
        title=f"promptopt study: {', '.join(settings['methods'])} on "
        f"{', '.join(settings['tasks'])}",
        settings=settings,
        evaluation=evaluation,
        tables=study_tables(report),
        plots=plots,
        prompts=report["runs"],
        **page_views(views),
        switch=True,
    )


def write_study_report(
    root: Path,
    report: dict[str, Any],
    examples: Mapping[str, Sequence[Any]],
    outcomes: Mapping[str, Outcomes],
) -> Path | None:
    """Write ``STUDY/report.html`` (a failure is one warning line)."""
    return write_html(
        root / REPORT_NAME,
        lambda: study_page(root, report, study_views(report, examples, outcomes)),
    )
