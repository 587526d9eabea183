"""A run's ``report.html``: the prompt's trajectory (each step's prompt with what it changed
highlighted, its loss), the loss plot, the compute table and the final prompt (with the
do-no-harm decision when ``result.json`` has one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promptopt.htmlreport.diff import word_diff
from promptopt.htmlreport.render import REPORT_NAME, image_uri, render, write_html


def trajectory(result: dict[str, Any], steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The initial prompt, then per step the chosen prompt as a word diff against the prompt
    before it, with the step's loss, best candidate score, seconds and stop reason."""
    initial = str(result.get("initial_prompt", steps[0]["prompt_before"] if steps else ""))
    rows: list[dict[str, Any]] = [
        {
            "step": "initial",
            "segments": word_diff(None, initial),
            "loss": None,
            "best_score": None,
            "candidates": None,
            "seconds": None,
            "note": "",
        }
    ]
    previous = initial
    for record in steps:
        chosen = str(record.get("chosen_prompt", ""))
        scores = [float(s) for s in record.get("scores") or [] if isinstance(s, int | float)]
        rows.append(
            {
                "step": record.get("step"),
                "segments": word_diff(previous, chosen),
                "loss": record.get("loss"),
                "best_score": min(scores) if scores else None,
                "candidates": len(record.get("candidates") or []),
                "seconds": (record.get("timings") or {}).get("step"),
                "note": str(record.get("reason") or "") if record.get("stop") else "",
            }
        )
        previous = chosen
    return rows


def compute_rows(compute: dict[str, Any]) -> tuple[list[list[str]], list[str], list[list[str]]]:
    """(phase rows, usage columns, usage rows per model role) of a run's compute totals."""
    phases = [[name, f"{float(sec):.2f}"] for name, sec in (compute.get("phases") or {}).items()]
    phases.append(["total", f"{float(compute.get('seconds') or 0.0):.2f}"])
    models = compute.get("models") or {}
    columns = sorted({key for usage in models.values() for key in usage})
    usage = [[role, *(str(u.get(key, "–")) for key in columns)] for role, u in models.items()]
    return phases, columns, usage


def decision(result: dict[str, Any]) -> dict[str, Any] | None:
    """The do-no-harm decision of ``result.json`` (``accepted``, ``accept_p_value``,
    ``candidate_prompt``), None when the run has none."""
    if "accepted" not in result:
        return None
    return {
        "accepted": bool(result.get("accepted")),
        "p_value": result.get("accept_p_value"),
        "candidate": result.get("candidate_prompt"),
    }


def run_page(run_dir: Path) -> str:
    """The HTML of the finished run in ``run_dir``."""
    from promptopt.rundir import RunDir

    opened = RunDir(run_dir)
    result = opened.read_result() or {}
    config = opened.read_config()
    steps = opened.read_steps()
    phases, columns, usage = compute_rows(dict(result.get("compute") or {}))
    facts = [
        ("method", result.get("method", config.get("method"))),
        ("task", result.get("task", config.get("task"))),
        ("backend", result.get("backend", config.get("backend"))),
        ("model", result.get("model", config.get("model"))),
        ("seed", result.get("seed", config.get("seed"))),
        ("steps run", result.get("steps_run")),
        ("stopped early", result.get("stop_reason") if result.get("stopped_early") else "no"),
        ("dev accuracy, initial prompt", _pct(result.get("dev_accuracy_initial"))),
        ("dev accuracy, best prompt", _pct(result.get("dev_accuracy_final"))),
    ]
    return render(
        "run.html.j2",
        title=f"promptopt run: {result.get('method', '')} on {result.get('task', '')}",
        facts=[(k, v) for k, v in facts if v is not None],
        rows=trajectory(result, steps),
        loss_plot=image_uri(run_dir / "losses.png"),
        phases=phases,
        usage_columns=columns,
        usage=usage,
        best_prompt=str(result.get("best_prompt", "")),
        initial_prompt=str(result.get("initial_prompt", "")),
        decision=decision(result),
        options=config.get("options") or {},
    )


def _pct(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return f"{100 * float(value):.1f}%"


def write_run_report(run_dir: Path) -> Path | None:
    """Write ``RUN/report.html`` (a failure is one warning line, see
    :func:`~promptopt.htmlreport.render.write_html`)."""
    return write_html(run_dir / REPORT_NAME, lambda: run_page(run_dir))
