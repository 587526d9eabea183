"""Transfer study: the initial and the optimized prompt of a run, evaluated on every model and
quantization, as one matrix (rows = model variants, columns = prompts)."""

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
    """One (variant, prompt) evaluation: accuracy with its bootstrap interval."""

    accuracy: float
    ci_low: float
    ci_high: float
    correct: int
    n: int
    cache_hits: int = 0


@dataclass
class TransferMatrix:
    """Accuracy of each prompt on each model variant."""

    task: str
    split: str
    scoring: str
    prompts: dict[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)

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
        row: dict[str, Any] = {
            "model": variant.model,
            "quant": variant.quant,
            "path": str(variant.path),
            "sha256": file_sha256(variant.path),
            "requantized": variant.requantized,
        }
        for column, text in prompts.items():
            row[column] = asdict(evaluate_cell(variant, column, text))
        if all(column in row for column in PROMPT_COLUMNS):
            row["delta"] = row["optimized"]["accuracy"] - row["initial"]["accuracy"]
        matrix.rows.append(row)
    return matrix
