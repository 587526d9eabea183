"""``promptopt transfer``: evaluate a run's initial and optimized prompt on several GGUF models
and quantizations, and write the accuracy (or mean score) matrix (JSON, Markdown, PNG
heatmap)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from promptopt.errors import PromptoptError

if TYPE_CHECKING:
    from promptopt.components import Backend, Task
    from promptopt.evaluation import Scoring
    from promptopt_llamacpp.backend import LlamaCppOptions
    from promptopt_llamacpp.quantize import Variant
    from promptopt_llamacpp.transfer import Cell


def add_transfer_command(app: typer.Typer) -> None:
    app.command(
        name="transfer", short_help="Compare a run's prompts across GGUF models and quants."
    )(transfer_command)


class CellEvaluator:
    """Evaluates prompts on model variants with the core evaluation, keeping one model loaded
    while consecutive cells use it."""

    def __init__(
        self,
        task: Task,
        examples: list[Any],
        options: LlamaCppOptions,
        *,
        split: str,
        scoring: Scoring,
        max_new_tokens: int,
        cache: Any,
        progress: bool,
        separator: str | None = None,
    ) -> None:
        self.task, self.examples, self.options = task, examples, options
        self.split, self.scoring, self.max_new_tokens = split, scoring, max_new_tokens
        self.cache, self.progress = cache, progress
        self.separator = separator  # how the run's method joins its prompts to the question
        self._loaded: tuple[Path, Backend] | None = None

    def backend(self, variant: Variant) -> Backend:
        from promptopt_llamacpp.backend import LlamaCppBackend

        if self._loaded is not None and self._loaded[0] == variant.path:
            return self._loaded[1]
        self.close()
        backend = LlamaCppBackend(str(variant.path), self.options)
        self._loaded = (variant.path, backend)
        return backend

    def __call__(self, variant: Variant, column: str, prompt: str) -> Cell:
        """Evaluate ``prompt`` (the run's ``column`` prompt: initial or optimized) on
        ``variant`` and report its accuracy on stderr, naming the model, quant and prompt."""
        from promptopt.evaluation import evaluate
        from promptopt.progress import Progress
        from promptopt.types import Prompt
        from promptopt_llamacpp.transfer import Cell

        report = evaluate(
            self.backend(variant),
            self.task,
            Prompt(text=prompt, separator=self.separator),
            self.examples,
            scoring=self.scoring,
            max_new_tokens=self.max_new_tokens,
            split=self.split,
            progress=Progress(enabled=None if self.progress else False),
            cache=self.cache,
        )
        typer.echo(progress_line(variant, column, report), err=True)
        return Cell(
            report.score,
            report.ci_low,
            report.ci_high,
            report.correct,
            report.n,
            report.cache_hits,
            report.metric,
            report.binary,
        )

    def close(self) -> None:
        if self._loaded is not None:
            self._loaded[1].close()
            self._loaded = None


def progress_line(variant: Variant, column: str, report: Any) -> str:
    """One cell's result for stderr: model, quant, which prompt (as ``transfer.md`` names it)
    and its accuracy (``score (METRIC)`` for a graded metric), so the two lines per model can be
    told apart."""
    what = "accuracy" if report.binary else f"score ({report.metric})"
    return (
        f"{variant.model} {variant.quant}, {column} prompt: {what} {report.score:.3f} "
        f"[{report.ci_low:.3f}, {report.ci_high:.3f}] (n={report.n}, cached {report.cache_hits})"
    )


def transfer_command(
    run: Annotated[Path, typer.Option(help="Run directory with result.json.")],
    models: Annotated[
        str,
        typer.Option(
            help="Comma-separated GGUF files, HF Llama folders or names (`promptopt models`)."
        ),
    ],
    task: Annotated[
        str | None,
        typer.Option(
            help="Task name or data file, e.g. bbh/boolean_expressions (default: the run's task)."
        ),
    ] = None,
    quants: Annotated[
        str, typer.Option(help="Comma-separated quantizations, e.g. f16,q8_0,q4_k_m; orig = as is.")
    ] = "orig",
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate the first N examples.")] = None,
    scoring: Annotated[
        str, typer.Option(help="generate (parse) or logprob (options).")
    ] = "generate",
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Reasoning length limit.")] = 512,
    data_dir: Annotated[
        str | None, typer.Option(metavar="DIR", help="Local benchmark data folder.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Where transfer.json/.md/.png go.")] = Path("transfer"),
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", metavar="KEY=VALUE", help="Backend/task option."),
    ] = None,
    cache: Annotated[bool, typer.Option(help="Reuse cached per-example outcomes.")] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Evaluate a run's initial and optimized prompts on every model x quantization."""
    from promptopt.config import parse_options, refuse_run_level_options
    from promptopt.evalcache import EvalCache
    from promptopt.evalsetup import (
        apply_limit,
        check_split_and_scoring,
        separator_from_run,
        task_from_run,
        task_note,
    )
    from promptopt.options import build_command_options
    from promptopt.outputs import check_writable_dir
    from promptopt.registry import get_registry
    from promptopt_llamacpp.backend import LlamaCppBackend
    from promptopt_llamacpp.quantize import parse_quants
    from promptopt_llamacpp.report import write_matrix
    from promptopt_llamacpp.transfer import build_variants, read_run_prompts, run_transfer

    split_name, mode = check_split_and_scoring(split, scoring)
    check_writable_dir(out, "--out")
    model_refs = [m.strip() for m in models.split(",") if m.strip()]
    if not model_refs:
        raise PromptoptError("--models is empty", hint="e.g. --models a.gguf,b.gguf")
    quant_names = parse_quants(quants)
    prompts = read_run_prompts(run)
    task = task or task_from_run(run)
    if task is None:
        raise PromptoptError(
            f"{str(run)!r} names no task (no readable config.json)", hint="pass --task NAME"
        )
    options: dict[str, Any] = parse_options(option)
    refuse_run_level_options(options)
    task_cls = get_registry().task(task)
    built = build_command_options(
        {"task": task_cls, "backend": LlamaCppBackend},
        options,
        {"data_dir": data_dir} if data_dir else {},
    )  # routed as a run's: -o backend.n_ctx=4096, -o task.train_size=8
    task_obj = task_cls(built["task"])
    examples = apply_limit(task_obj.examples(split_name), limit, split=split, task=task)
    note = task_note(task_obj)
    if note:
        typer.echo(note, err=True)

    variants = build_variants(model_refs, quant_names)
    evaluator = CellEvaluator(
        task_obj,
        examples,
        built["backend"],
        split=split,
        scoring=mode,
        max_new_tokens=max_new_tokens,
        cache=EvalCache.default() if cache else None,
        progress=progress,
        separator=separator_from_run(run),
    )
    try:
        matrix = run_transfer(variants, prompts, evaluator, task=task, split=split, scoring=scoring)
    finally:
        evaluator.close()
    kept = (
        "the accuracies are printed above and the model outputs are cached: rerun with a "
        "writable --out and nothing is generated again"
        if cache
        else "the accuracies are printed above; free space or pass another --out, then rerun"
    )
    paths = write_matrix(matrix, out, hint=kept)
    typer.echo(json.dumps({name: str(path) for name, path in paths.items()}, indent=2))
