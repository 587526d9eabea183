"""Evaluate a prompt on a task with any backend: per-example outcomes and scores, the mean
score (the accuracy, for right-or-wrong metrics) and its bootstrap CI.

Two ways to read the answer after the reasoning chain:

* ``generate``: append the task's extractor, generate a few tokens, parse with the task's parser
  (falling back to parsing the reasoning itself);
* ``logprob``: append the extractor and pick the option with the highest log-probability
  (tasks without closed options fall back to ``generate``).

With a cache, what is stored is the *model's* work, keyed on the exact model input
(:class:`~promptopt.evalcache.CachedModel`); verdicts (``task.parse``, ``task.score``) are
always derived again with the task's current code, so editing a parser or a metric changes the
score without generating anything, and an unchanged rerun generates nothing.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard, get_args

from promptopt.components import Backend, Task
from promptopt.evalcache import CachedModel, OutcomeCache
from promptopt.metrics import is_binary, model_output, task_score
from promptopt.progress import Progress
from promptopt.types import Example, Prompt

Scoring = Literal["generate", "logprob"]

__all__ = [
    "EMPTY_PROMPT_LABEL",
    "EvalReport",
    "ExampleOutcome",
    "OutcomeCache",
    "Scoring",
    "bootstrap_interval",
    "eval_chunk_size",
    "evaluate",
    "is_scoring",
    "judge",
    "prompt_label",
    "write_report",
]


def is_scoring(value: str) -> TypeGuard[Scoring]:
    """True when ``value`` names a scoring mode (``generate`` or ``logprob``)."""
    return value in get_args(Scoring)


@dataclass(frozen=True)
class ExampleOutcome:
    """One example's evaluation, as written to ``examples.jsonl``: ``score`` in [0, 1] from the
    task's metric, ``correct`` when it is 1."""

    example_id: str
    reasoning: str
    answer_text: str
    predicted: str | None
    gold: str
    correct: bool
    option_logprobs: dict[str, float] | None = None
    score: float = 0.0


@dataclass(frozen=True)
class EvalReport:
    """The result of evaluating one prompt on one list of examples: the mean ``score`` under
    the task's ``metric`` with its bootstrap interval, and ``correct``, the examples scored 1."""

    task: str
    backend: str
    model: str
    prompt: str
    split: str
    scoring: str
    n: int
    correct: int
    score: float
    ci_low: float
    ci_high: float
    outcomes: list[ExampleOutcome] = field(repr=False, default_factory=list)
    cache_hits: int = 0
    #: What the prompt is, for people, where its text does not say: ``empty prompt (the bare
    #: question)`` for ``""``; None otherwise (and then left out of the summary).
    prompt_label: str | None = None
    metric: str = "exact"

    @property
    def binary(self) -> bool:
        """True when every example scored 0 or 1: the mean score is then an accuracy."""
        return is_binary([o.score for o in self.outcomes])

    @property
    def accuracy(self) -> float:
        """The share of examples scored 1 (the mean score, for right-or-wrong metrics)."""
        return self.correct / self.n if self.n else 0.0

    def summary(self) -> dict[str, Any]:
        """Everything but the per-example outcomes (and ``prompt_label`` when there is none).
        Right-or-wrong results keep the names ``correct`` and ``accuracy``; graded ones say
        ``score`` (the mean) instead; ``metric`` names the metric either way."""
        data = asdict(self)
        data.pop("outcomes")
        mean, metric, label = data.pop("score"), data.pop("metric"), data.pop("prompt_label")
        shown: dict[str, Any] = {}
        for key, value in data.items():
            if key == "correct":
                shown.update(
                    {"correct": value, "accuracy": mean} if self.binary else {"score": mean}
                )
                continue
            shown[key] = value
            if key == "scoring":
                shown["metric"] = metric
        if label is not None:
            shown["prompt_label"] = label
        return shown


#: How the empty prompt is named in reports: the model sees the question alone, the baseline
#: every study table shows (see :meth:`promptopt.components.Task.user_turn`).
EMPTY_PROMPT_LABEL = "empty prompt (the bare question)"


def prompt_label(prompt: Prompt) -> str | None:
    """:data:`EMPTY_PROMPT_LABEL` for a prompt with no text (the model sees the question
    alone); None for any other prompt, whose text names it."""
    return EMPTY_PROMPT_LABEL if not prompt.text.strip() else None


def bootstrap_interval(
    scores: Sequence[bool | float], *, samples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``scores`` (right/wrong or graded in
    [0, 1]; deterministic for a seed)."""
    n = len(scores)
    if n == 0:
        return (0.0, 0.0)
    values = [float(s) for s in scores]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(samples))
    tail = (1.0 - level) / 2.0
    low = means[int(tail * (samples - 1))]
    high = means[round((1.0 - tail) * (samples - 1))]
    return (low, high)


def eval_chunk_size(backend: Backend) -> int:
    """How many examples are evaluated together before the next ones start: the backend's
    declared :attr:`~promptopt.components.Backend.parallel_width`, at least 4. One chunk fills
    a batching or concurrent backend, and its rows' reasoning is still in the backend's cache
    (llama.cpp's sequence slots) when their answers are read, so the answer step re-reads only
    the extractor; an interrupted evaluation keeps every finished chunk in the cache."""
    return max(4, backend.parallel_width)


def evaluate(
    backend: Backend,
    task: Task,
    prompt: Prompt,
    examples: Sequence[Example],
    *,
    scoring: Scoring = "generate",
    max_new_tokens: int = 512,
    answer_max_tokens: int = 12,
    split: str = "",
    progress: Progress | None = None,
    cache: OutcomeCache | None = None,
    chunk_size: int | None = None,
) -> EvalReport:
    """Reason on every example under ``prompt``, read each answer, and score it.

    Examples run in chunks (:func:`eval_chunk_size`); the model's outputs are cached as soon
    as each generation returns, so a rerun after a failure resumes from what was done.
    ``cache_hits`` counts the examples that needed no model call at all."""
    model = CachedModel(backend, cache)
    progress = progress or Progress(enabled=False)
    size = max(1, chunk_size or eval_chunk_size(backend))
    chunks = [
        list(range(at, min(at + size, len(examples)))) for at in range(0, len(examples), size)
    ]
    # an outer bar only when there are several chunks (each chunk's generation has its own)
    outer = progress if len(chunks) > 1 else Progress(enabled=False)
    outcomes: list[ExampleOutcome] = []
    cached: list[bool] = []
    with outer.bar(len(examples), "evaluate", unit="ex") as bar:
        for chunk in chunks:
            done, hits = _evaluate_chunk(
                model,
                task,
                prompt,
                [examples[i] for i in chunk],
                scoring=scoring,
                max_new_tokens=max_new_tokens,
                answer_max_tokens=answer_max_tokens,
                progress=progress,
            )
            outcomes += done
            cached += hits
            bar.update(len(chunk))
    scores = [o.score for o in outcomes]
    low, high = bootstrap_interval(scores)
    return EvalReport(
        task=task.name,
        backend=backend.name,
        model=backend.model_id,
        prompt=prompt.text,
        split=split,
        scoring=scoring,
        n=len(outcomes),
        correct=sum(o.correct for o in outcomes),
        score=sum(scores) / len(scores) if scores else 0.0,
        ci_low=low,
        ci_high=high,
        outcomes=outcomes,
        cache_hits=sum(cached),
        prompt_label=prompt_label(prompt),
        metric=task.metric_name,
    )


def _evaluate_chunk(
    model: CachedModel,
    task: Task,
    prompt: Prompt,
    examples: Sequence[Example],
    *,
    scoring: Scoring,
    max_new_tokens: int,
    answer_max_tokens: int,
    progress: Progress,
) -> tuple[list[ExampleOutcome], list[bool]]:
    """Outcomes of ``examples`` and, per example, whether no model call was needed."""
    contexts = [model.backend.chat(task.user_turn(ex, prompt)) for ex in examples]
    reasonings, cached = model.generate(contexts, max_new_tokens=max_new_tokens, progress=progress)
    prefixes = [
        f"{ctx}{reasoning.rstrip()} {task.extractor(ex)}"
        for ctx, reasoning, ex in zip(contexts, reasonings, examples, strict=True)
    ]
    outcomes: list[ExampleOutcome | None] = [None] * len(examples)
    to_generate: list[int] = []
    for i, ex in enumerate(examples):
        if scoring == "logprob" and ex.options:
            continuations = [task.continuation(option) for option in ex.options]
            logprobs, hit = model.logprobs(prefixes[i], continuations)
            cached[i] = cached[i] and hit
            scores = dict(zip(ex.options, logprobs, strict=True))
            outcomes[i] = judge(task, ex, reasonings[i], "", scores)
        else:
            to_generate.append(i)
    answers, answer_cached = model.generate(
        [prefixes[i] for i in to_generate], max_new_tokens=answer_max_tokens, stop=("\n",)
    )
    for i, answer, hit in zip(to_generate, answers, answer_cached, strict=True):
        cached[i] = cached[i] and hit
        outcomes[i] = judge(task, examples[i], reasonings[i], answer)
    return [o for o in outcomes if o is not None], cached


def judge(
    task: Task,
    example: Example,
    reasoning: str,
    answer_text: str,
    option_logprobs: dict[str, float] | None = None,
) -> ExampleOutcome:
    """The verdict on one example from the model's raw outputs, with the task's current code:
    the option of highest log-probability (first on ties) when scored by options, else the
    parse of the extractor plus the generated answer, falling back to the reasoning; then the
    task's score of that answer (:meth:`~promptopt.components.Task.score`)."""
    predicted: str | None
    if option_logprobs is not None:
        best = max(option_logprobs, key=lambda o: option_logprobs[o])
        predicted, answer_text = best, task.continuation(best)
    else:
        predicted = task.parse(task.extractor(example) + answer_text)
        if predicted is None:
            predicted = task.parse(reasoning)
    score = task_score(task, predicted, model_output(reasoning, answer_text), example)
    return ExampleOutcome(
        example.id,
        reasoning,
        answer_text,
        predicted,
        example.answer,
        score == 1.0,
        option_logprobs,
        score,
    )


def write_report(report: EvalReport, out_dir: Path, *, hint: str | None = None) -> None:
    """Write ``examples.jsonl`` (one outcome per line) and ``summary.json`` into ``out_dir``; a
    failed write is a one-line error naming the file (``hint`` says what was kept)."""
    from promptopt.outputs import write_text

    hint = hint or f"free space or pass another --out than {str(out_dir)!r}, then rerun"
    lines = "".join(json.dumps(asdict(o)) + "\n" for o in report.outcomes)
    write_text(out_dir / "examples.jsonl", lines, hint=hint)
    write_text(out_dir / "summary.json", json.dumps(report.summary(), indent=2) + "\n", hint=hint)
