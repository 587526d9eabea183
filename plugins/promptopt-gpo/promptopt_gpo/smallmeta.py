"""A short meta-prompt for small optimizer models (``-o meta_prompt=small``): at most one short
exemplar, one worked example of the output format, and the shown prompts sorted by score with
the best last (as OPRO orders its trajectory). The reference's meta-prompt runs to a thousand
words on long-question tasks, mostly exemplar text that a small model copies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from promptopt.types import Example
from promptopt_gpo.metaprompt import (
    Entry,
    ScoreScale,
    draw_exemplars,
    exemplar_answer,
    format_score,
    render,
)

MetaPromptKind = Literal["reference", "small"]

INTRO = (
    "Write an instruction that helps a model answer the questions of a task correctly. "
    "The instruction is added after each question."
)
EXAMPLE_INTRO = "An example question of the task, with its correct answer:"
TRAJECTORY_INTRO = (
    "Instructions tried so far, from worst to best, with their scores (0 to 100, higher is better):"
)
REQUEST = (
    "Write one new instruction that scores higher than all of these. Start from the best "
    "(last) one and change at most {budget} words. Write only the instruction, between "
    "<START> and <END>, like this:"
)
#: The worked example of the output format (a candidate copying it is rejected by the guards:
#: it is a substring of the meta-prompt).
FORMAT_EXAMPLE = "<START>Read the question carefully, then check each step before answering.<END>"
#: Exemplars longer than this many words are not shown (a small model copies them).
EXEMPLAR_MAX_WORDS = 60


def short_exemplar(
    train: Sequence[Example], count: int, seed: int, max_words: int = EXEMPLAR_MAX_WORDS
) -> list[Example]:
    """At most one exemplar: the training example with the shortest question (ties: the
    seeded draw order), none when ``count`` is 0 or even that one exceeds ``max_words``."""
    if count < 1 or not train:
        return []
    ordered = draw_exemplars(train, len(train), seed)
    best = min(ordered, key=lambda e: len(e.question.split()))
    return [best] if len(best.question.split()) <= max_words else []


def render_small(
    entries: Sequence[Entry],
    exemplars: Sequence[Example],
    budget: int,
    scale: ScoreScale = "percent",
) -> str:
    """The small meta-prompt: the task intro, the exemplar (if any), the shown entries sorted
    by score ascending (unknown scores first; ties keep their order), the request and the
    format example."""
    ranked = sorted(
        range(len(entries)),
        key=lambda i: (entries[i].accuracy is not None, entries[i].accuracy or 0.0, i),
    )
    tried = "\n\n".join(
        f"Instruction: {entries[i].text}\nScore: {format_score(entries[i].accuracy, scale)}"
        for i in ranked
    )
    parts = [INTRO]
    for ex in exemplars[:1]:
        parts.append(
            f"{EXAMPLE_INTRO}\nInput:\n{ex.question.strip()}\nOutput:\n{exemplar_answer(ex)}"
        )
    parts += [
        f"{TRAJECTORY_INTRO}\n\n{tried}",
        REQUEST.format(budget=budget) + "\n" + FORMAT_EXAMPLE,
    ]
    return "\n\n".join(parts)


def compose(
    kind: MetaPromptKind,
    entries: Sequence[Entry],
    current: Entry,
    train: Sequence[Example],
    *,
    count: int,
    seed: int,
    budget: int,
    scale: ScoreScale = "percent",
    max_words: int = EXEMPLAR_MAX_WORDS,
) -> tuple[str, list[Example]]:
    """The meta-prompt of ``kind`` and the exemplars it shows: ``reference`` (the authors'
    text, ``count`` exemplars drawn per seed) or ``small``."""
    if kind == "small":
        exemplars = short_exemplar(train, count, seed, max_words)
        return render_small(entries, exemplars, budget, scale), exemplars
    exemplars = draw_exemplars(train, count, seed)
    return render(entries, current, exemplars, budget, scale), exemplars
