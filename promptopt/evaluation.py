"""Evaluate a prompt on a task with any backend: per-example outcomes, accuracy and a bootstrap CI.

Two ways to read the answer after the reasoning chain:

* ``generate``: append the task's extractor, generate a few tokens, parse with the task's parser
  (falling back to parsing the reasoning itself);
* ``logprob``: append the extractor and pick the option with the highest log-probability
  (tasks without closed options fall back to ``generate``).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from promptopt.components import Backend, Task
from promptopt.progress import Progress
from promptopt.types import Example, Prompt

Scoring = Literal["generate", "logprob"]


class OutcomeCache(Protocol):
    """Where finished per-example outcomes are stored (see :mod:`promptopt.evalcache`)."""

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None: ...

    def put(self, key: dict[str, Any], value: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class ExampleOutcome:
    """One example's evaluation, as written to ``examples.jsonl``."""

    example_id: str
    reasoning: str
    answer_text: str
    predicted: str | None
    gold: str
    correct: bool
    option_logprobs: dict[str, float] | None = None


@dataclass(frozen=True)
class EvalReport:
    """The result of evaluating one prompt on one list of examples."""

    task: str
    backend: str
    model: str
    prompt: str
    split: str
    scoring: str
    n: int
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    outcomes: list[ExampleOutcome] = field(repr=False, default_factory=list)
    cache_hits: int = 0

    def summary(self) -> dict[str, Any]:
        """Everything but the per-example outcomes."""
        data = asdict(self)
        data.pop("outcomes")
        return data


def bootstrap_interval(
    correct: Sequence[bool], *, samples: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``correct`` (deterministic for a seed)."""
    n = len(correct)
    if n == 0:
        return (0.0, 0.0)
    values = [1.0 if c else 0.0 for c in correct]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(samples))
    tail = (1.0 - level) / 2.0
    low = means[int(tail * (samples - 1))]
    high = means[round((1.0 - tail) * (samples - 1))]
    return (low, high)


def _cache_key(
    backend: Backend,
    task: Task,
    prompt: Prompt,
    example: Example,
    scoring: Scoring,
    max_new_tokens: int,
    answer_max_tokens: int,
) -> dict[str, Any]:
    question_hash = hashlib.sha256(example.question.encode()).hexdigest()[:16]
    return {
        "backend": backend.fingerprint(),
        "task": task.name,
        "prompt": prompt.text,
        "example_id": example.id,
        "question": question_hash,
        "scoring": scoring,
        "max_new_tokens": max_new_tokens,
        "answer_max_tokens": answer_max_tokens,
    }


def eval_chunk_size(backend: Backend) -> int:
    """How many examples are reasoned on before their outcomes are cached: four times the
    backend's parallel width (its ``concurrency`` or ``batch_size`` attribute, else 1), at
    least 4. Small enough that an interrupted evaluation keeps most finished examples, large
    enough to keep a batching or concurrent backend busy."""
    width = getattr(backend, "concurrency", None) or getattr(backend, "batch_size", None) or 1
    return max(4, 4 * int(width))


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
    """Reason on every example under ``prompt``, read each answer, and score it. Examples
    run in chunks (:func:`eval_chunk_size`), each chunk's outcomes cached as soon as it is
    done, so a rerun after a failure resumes from the finished examples."""
    progress = progress or Progress(enabled=False)
    keys = [
        _cache_key(backend, task, prompt, ex, scoring, max_new_tokens, answer_max_tokens)
        for ex in examples
    ]
    cached = [cache.get(key) if cache is not None else None for key in keys]
    todo = [i for i, hit in enumerate(cached) if hit is None]
    outcomes: list[ExampleOutcome | None] = [
        ExampleOutcome(**hit) if hit is not None else None for hit in cached
    ]
    size = max(1, chunk_size or eval_chunk_size(backend))
    chunks = [todo[start : start + size] for start in range(0, len(todo), size)]
    # an outer bar only when there are several chunks (each chunk's generation has its own)
    outer = progress if len(chunks) > 1 else Progress(enabled=False)
    with outer.bar(len(todo), "evaluate", unit="ex") as bar:
        for chunk in chunks:
            fresh = _evaluate_examples(
                backend,
                task,
                prompt,
                [examples[i] for i in chunk],
                scoring=scoring,
                max_new_tokens=max_new_tokens,
                answer_max_tokens=answer_max_tokens,
                progress=progress,
            )
            for i, outcome in zip(chunk, fresh, strict=True):
                outcomes[i] = outcome
                if cache is not None:
                    cache.put(keys[i], asdict(outcome))
            bar.update(len(chunk))
    final = [o for o in outcomes if o is not None]
    correct = [o.correct for o in final]
    low, high = bootstrap_interval(correct)
    return EvalReport(
        task=task.name,
        backend=backend.name,
        model=backend.model_id,
        prompt=prompt.text,
        split=split,
        scoring=scoring,
        n=len(final),
        correct=sum(correct),
        accuracy=sum(correct) / len(final) if final else 0.0,
        ci_low=low,
        ci_high=high,
        outcomes=final,
        cache_hits=len(examples) - len(todo),
    )


def _evaluate_examples(
    backend: Backend,
    task: Task,
    prompt: Prompt,
    examples: Sequence[Example],
    *,
    scoring: Scoring,
    max_new_tokens: int,
    answer_max_tokens: int,
    progress: Progress,
) -> list[ExampleOutcome]:
    if not examples:
        return []
    contexts = [backend.chat(task.user_turn(ex, prompt)) for ex in examples]
    reasonings = backend.generate(contexts, max_new_tokens=max_new_tokens, progress=progress)
    answer_prefixes = [
        f"{ctx}{reasoning.rstrip()} {task.extractor(ex)}"
        for ctx, reasoning, ex in zip(contexts, reasonings, examples, strict=True)
    ]
    outcomes: list[ExampleOutcome | None] = [None] * len(examples)
    to_generate: list[int] = []
    for i, ex in enumerate(examples):
        if scoring == "logprob" and ex.options:
            continuations = [task.continuation(option) for option in ex.options]
            logprobs = backend.continuation_logprobs(answer_prefixes[i], continuations)
            best = max(range(len(logprobs)), key=lambda j: logprobs[j])
            predicted = ex.options[best]
            outcomes[i] = ExampleOutcome(
                ex.id,
                reasonings[i],
                continuations[best],
                predicted,
                ex.answer,
                task.is_correct(predicted, ex),
                dict(zip(ex.options, logprobs, strict=True)),
            )
        else:
            to_generate.append(i)
    if to_generate:
        answers = backend.generate(
            [answer_prefixes[i] for i in to_generate],
            max_new_tokens=answer_max_tokens,
            stop=("\n",),
        )
        for i, answer in zip(to_generate, answers, strict=True):
            ex = examples[i]
            parsed = task.parse(task.extractor(ex) + answer)
            if parsed is None:
                parsed = task.parse(reasonings[i])
            outcomes[i] = ExampleOutcome(
                ex.id, reasonings[i], answer, parsed, ex.answer, task.is_correct(parsed, ex)
            )
    return [o for o in outcomes if o is not None]


def write_report(report: EvalReport, out_dir: Path) -> None:
    """Write ``examples.jsonl`` (one outcome per line) and ``summary.json`` into ``out_dir``."""
    from promptopt.rundir import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(asdict(o)) + "\n" for o in report.outcomes)
    atomic_write_text(out_dir / "examples.jsonl", lines)
    atomic_write_text(out_dir / "summary.json", json.dumps(report.summary(), indent=2) + "\n")
