"""Configuration and step records as MLflow parameters and metrics (flat names, plain
values within MLflow's limits)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

#: MLflow's longest parameter value.
PARAM_LIMIT = 6000
_BAD_KEY = re.compile(r"[^\w\-. /]")


def key(name: str) -> str:
    """``name`` with the characters MLflow refuses in a key replaced by ``_``."""
    return _BAD_KEY.sub("_", name)


def params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested configuration as flat ``a.b`` parameters (lists and other values as JSON)."""
    flat: dict[str, str] = {}
    for name, value in config.items():
        full = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            flat.update(params(value, f"{full}."))
            continue
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        flat[key(full)] = text[:PARAM_LIMIT]
    return flat


def number(value: Any) -> float | None:
    """``value`` as a float, None when it is not a number (or is a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def step_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """A step record's numbers: the chosen loss, the candidates' lowest and highest score,
    seconds (whole step and per phase) and usage per model role (tokens, passes)."""
    metrics: dict[str, float] = {}
    loss = number(record.get("loss"))
    if loss is not None:
        metrics["loss"] = loss
    scores = [s for s in (number(v) for v in record.get("scores") or []) if s is not None]
    if scores:
        metrics["candidate_score_min"] = min(scores)
        metrics["candidate_score_max"] = max(scores)
        metrics["candidates"] = float(len(scores))
    for phase, seconds in (record.get("timings") or {}).items():
        value = number(seconds)
        if value is not None:
            metrics["seconds" if phase == "step" else key(f"seconds.{phase}")] = value
    compute = record.get("compute") or {}
    for role, usage in (compute.get("models") or {}).items():
        for name, amount in (usage or {}).items():
            value = number(amount)
            if value is not None:
                metrics[key(f"{role}.{name}")] = value
    peak = number(compute.get("peak_rss_mb"))
    if peak is not None:
        metrics["peak_rss_mb"] = peak
    return metrics


def result_metrics(result: Mapping[str, Any]) -> dict[str, float]:
    """The run's final numbers: dev accuracy of the initial and the best prompt, steps run,
    total seconds and tokens, and the do-no-harm check's p-value where the run has one."""
    metrics: dict[str, float] = {}
    for name in ("dev_accuracy_initial", "dev_accuracy_final", "steps_run", "accept_p_value"):
        value = number(result.get(name))
        if value is not None:
            metrics[name] = value
    compute = result.get("compute") or {}
    seconds = number(compute.get("seconds"))
    if seconds is not None:
        metrics["total_seconds"] = seconds
    for role, usage in (compute.get("models") or {}).items():
        for name, amount in (usage or {}).items():
            value = number(amount)
            if value is not None:
                metrics[key(f"total.{role}.{name}")] = value
    return metrics
