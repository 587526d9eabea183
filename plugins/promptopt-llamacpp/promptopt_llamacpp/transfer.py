"""Transfer study: the initial and the optimized prompt of a run, evaluated on every model and
quantization, as one matrix (rows = model variants, columns = prompts) of accuracies, or of mean
scores under a graded metric."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from promptopt.errors import PromptoptError
from promptopt_llamacpp.quantize import Variant, quantize

PROMPT_COLUMNS = ("initial", "optimized")


@dataclass(frozen=True)
class Cell:
    """One (variant, prompt) evaluation: the mean score under the task's metric (an accuracy
    when every example scored 0 or 1, ``binary``) with its bootstrap interval."""

    score: float
    ci_low: float
    ci_high: float
    correct: int
    n: int
    cache_hits: int = 0
    metric: str = "exact"
    binary: bool = True

    def to_dict(self) -> dict[str, Any]:
        """As ``transfer.json`` holds it: ``accuracy`` and ``correct`` for right-or-wrong
        scores, ``score`` for graded ones, and the metric."""
        binary = {"accuracy": self.score, "correct": self.correct}
        return {
            **(binary if self.binary else {"score": self.score}),
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
            "cache_hits": self.cache_hits,
            "metric": self.metric,
        }


def cell_value(cell: dict[str, Any]) -> float:
    """The mean score of a cell of ``transfer.json`` (``accuracy`` or ``score``)."""
    return float(cell["accuracy"] if "accuracy" in cell else cell["score"])


@dataclass
class TransferMatrix:
    """The score (accuracy, for right-or-wrong metrics) of each prompt on each model variant."""

    task: str
    split: str
    scoring: str
    prompts: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    metric: str = "exact"

    @property
    def binary(self) -> bool:
        """True when every cell is an accuracy (its examples scored 0 or 1)."""
        return all("accuracy" in row[column] for row in self.rows for column in self.prompts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_run_prompts(run_dir: Path) -> dict[str, str]:
    """``{"initial": ..., "optimized": ...}`` from ``RUNDIR/result.json``."""
    result = run_dir / "result.json"
    if not result.is_file():
        raise PromptoptError(
            f"{str(run_dir)!r} has no result.json",
            hint="pass the directory of a finished `promptopt run`",
        )
    try:
        data = json.loads(result.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PromptoptError(f"{str(result)!r} is not valid JSON: {exc}", hint="re-run") from None
    keys = ("initial_prompt", "best_prompt")
    missing = [key for key in keys if not isinstance(data.get(key), str)]
    if missing:
        raise PromptoptError(
            f"{str(result)!r} has no {missing[0]!r}", hint="was it written by promptopt run?"
        )
    return {"initial": data["initial_prompt"], "optimized": data["best_prompt"]}


def build_variants(models: Sequence[str], quants: Sequence[str]) -> list[Variant]:
    """Every (model, quant) pair as a loadable file: HF folders are exported to F16 GGUF
    first, quantized files are made once and cached."""
    from promptopt_llamacpp.modelfiles import resolve_model

    variants: list[Variant] = []
    for ref in models:
        source = resolve_model(ref, export_dtype="f16")
        label = Path(ref).name if ref else source.name
        for quant in quants:
            variant = quantize(source, quant)
            variants.append(
                Variant(label, quant, variant.path, variant.source, variant.requantized)
            )
    return variants


#: ``evaluate_cell(variant, column, prompt_text)``: ``column`` names the prompt (``initial`` or
#: ``optimized``) so progress can say which one was evaluated.
EvaluateFn = Callable[[Variant, str, str], Cell]


def run_transfer(
    variants: Sequence[Variant],
    prompts: dict[str, str],
    evaluate_cell: EvaluateFn,
    *,
    task: str,
    split: str,
    scoring: str,
) -> TransferMatrix:
    """Fill the matrix by calling ``evaluate_cell(variant, column, prompt_text)`` for every
    (variant, prompt) pair."""
    from promptopt_llamacpp.modelfiles import file_sha256

    matrix = TransferMatrix(task=task, split=split, scoring=scoring, prompts=dict(prompts))
    for variant in variants:
        cells: dict[str, Cell] = {}
        row: dict[str, Any] = {
            "model": variant.model,
            "quant": variant.quant,
            "path": str(variant.path),
            "sha256": file_sha256(variant.path),
            "requantized": variant.requantized,
        }
        for column, text in prompts.items():
            cells[column] = evaluate_cell(variant, column, text)
            row[column] = cells[column].to_dict()
            matrix.metric = cells[column].metric
        if all(column in cells for column in PROMPT_COLUMNS):
            row["delta"] = cells["optimized"].score - cells["initial"].score
        matrix.rows.append(row)
    return matrix
