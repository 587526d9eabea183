"""Write a transfer matrix as JSON, a Markdown table and a PNG heatmap (matplotlib, Agg)."""

from __future__ import annotations

import json
from pathlib import Path

from promptopt_llamacpp.transfer import TransferMatrix, cell_value


def _fmt(cell: dict[str, float]) -> str:
    return f"{cell_value(cell):.3f} [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"


def value_name(matrix: TransferMatrix) -> str:
    """What the cells hold: ``accuracy``, or ``score (METRIC)`` for a graded metric."""
    return "accuracy" if matrix.binary else f"score ({matrix.metric})"


def markdown(matrix: TransferMatrix) -> str:
    """A table: one row per model variant, accuracy (or mean score) [95% CI] per prompt, and
    the change."""
    columns = list(matrix.prompts)
    shown = "" if matrix.binary else f", {value_name(matrix)}"
    lines = [
        f"# Transfer: {matrix.task} ({matrix.split}, scoring={matrix.scoring}{shown})",
        "",
        *(f"- **{name}** prompt: `{text}`" for name, text in matrix.prompts.items()),
        "",
        "| model | quant | " + " | ".join(columns) + " | delta | n |",
        "|---|---|" + "---|" * len(columns) + "---|---|",
    ]
    for row in matrix.rows:
        cells = " | ".join(_fmt(row[c]) for c in columns)
        delta = f"{row['delta']:+.3f}" if "delta" in row else ""
        quant = row["quant"] + (" (requantized)" if row.get("requantized") else "")
        n = row[columns[0]]["n"] if columns else 0
        lines.append(f"| {row['model']} | {quant} | {cells} | {delta} | {n} |")
    return "\n".join(lines) + "\n"


def heatmap(matrix: TransferMatrix, path: Path) -> Path:
    """Accuracy (or mean score) heatmap (variants x prompts), each cell annotated with its
    value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from promptopt.rundir import save_figure

    columns = list(matrix.prompts)
    labels = [f"{row['model']} / {row['quant']}" for row in matrix.rows]
    values = [[cell_value(row[c]) for c in columns] for row in matrix.rows]
    intervals = [[(row[c]["ci_low"], row[c]["ci_high"]) for c in columns] for row in matrix.rows]
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(columns), 1.2 + 0.5 * max(1, len(labels))))
    image = ax.imshow(values, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(labels)), labels)
    for i, row in enumerate(values):
        for j, value in enumerate(row):
            low, high = intervals[i][j]
            text = f"{value:.2f}\n[{low:.2f}, {high:.2f}]"
            color = "white" if value < 0.6 else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=color)
    ax.set_title(f"{matrix.task} {value_name(matrix)} ({matrix.split})")
    fig.colorbar(image, ax=ax, label=value_name(matrix))
    fig.tight_layout()
    try:
        save_figure(fig, path)  # atomic: a full disk never leaves a truncated image
    finally:
        plt.close(fig)
    return path


def write_matrix(
    matrix: TransferMatrix, out_dir: Path, *, hint: str | None = None
) -> dict[str, Path]:
    """``transfer.json``, ``transfer.md`` and ``transfer.png`` in ``out_dir``; a failed write is
    a one-line error naming the file (``hint`` says what was kept)."""
    from promptopt.errors import PromptoptError
    from promptopt.outputs import reason, write_text

    hint = hint or f"free space or pass another --out than {str(out_dir)!r}, then rerun"
    paths = {
        "json": out_dir / "transfer.json",
        "markdown": out_dir / "transfer.md",
        "png": out_dir / "transfer.png",
    }
    write_text(paths["json"], json.dumps(matrix.to_dict(), indent=2) + "\n", hint=hint)
    write_text(paths["markdown"], markdown(matrix), hint=hint)
    try:
        heatmap(matrix, paths["png"])
    except OSError as exc:
        raise PromptoptError(
            f"could not write {str(paths['png'])!r} ({reason(exc)})", hint=hint
        ) from None
    return paths
