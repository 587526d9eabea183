"""The meta-prompt of the authors' final configuration, verbatim (RUCAIBox/GPO,
src/optimization/utilize_gradient/generate_without_gradient.py), and the fixed exemplars it
shows."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from promptopt.types import Example

ScoreScale = Literal["percent", "fraction"]

HEADER = (
    "Your task is to write a prompt to replace <Prompt>.\n\n"
    "Below are the previous prompts with their scores. The score ranges from 0 to 100, and "
    "higher scores indicate better quality."
)
EXEMPLAR_INTRO = (
    "The following exemplars show how to apply the prompt: you replace <Prompt> in each input "
    "with your new prompt, then read the input and give an output. We say your output is wrong "
    "if it is different from the given output, and we say your output is correct if they are "
    "the same."
)
INSTRUCTION = (
    "Carefully analyze the previous prompts and their scores, and write a new improved prompt "
    "to replace <Prompt> at the end of the question in the task examples.\n"
    "You are allowed to change up to {budget} words in the current prompt.\n\n"
    "Wrap the new prompt with <START> and <END>."
)
#: What the meta-prompt shows for a prompt whose score is not known yet (``--dry-run``).
UNKNOWN_SCORE = "unknown"


@dataclass(frozen=True)
class Entry:
    """One trajectory entry as the meta-prompt shows it: a prompt and its dev accuracy."""

    text: str
    accuracy: float | None


def format_score(accuracy: float | None, scale: ScoreScale = "percent") -> str:
    """``percent``: accuracy x 100, at most two decimals ("62.5", "100"), matching the
    meta-prompt's "ranges from 0 to 100"; ``fraction``: the raw accuracy the reference's code
    prints (``repr`` of the float)."""
    if accuracy is None:
        return UNKNOWN_SCORE
    if scale == "fraction":
        return repr(float(accuracy))
    text = f"{accuracy * 100:.2f}".rstrip("0").rstrip(".")
    return text or "0"


def exemplar_answer(example: Example) -> str:
    """The output an exemplar shows: the gold answer, as "(B)" when the question lists the
    option that way (BBH multiple choice)."""
    answer = example.answer
    return f"({answer})" if f"({answer})" in example.question else answer


def draw_exemplars(train: Sequence[Example], count: int, seed: int) -> list[Example]:
    """``count`` training examples drawn once per run (the same for a seed, fresh or resumed)."""
    rng = random.Random(f"promptopt-gpo:exemplars:{seed}")
    picks = rng.sample(range(len(train)), min(count, len(train)))
    return [train[i] for i in picks]


def render(
    entries: Sequence[Entry],
    current: Entry,
    exemplars: Sequence[Example],
    budget: int,
    scale: ScoreScale = "percent",
) -> str:
    """The meta-prompt: scored trajectory entries (ascending similarity, the current prompt
    last), the current prompt, the exemplars with <Prompt> after the question, the budget."""
    trajectory = "\n\n".join(
        f"Prompt: {e.text}\nScore: {format_score(e.accuracy, scale)}" for e in entries
    )
    shown = "\n\n".join(
        f"Input:\n{ex.question}\n<Prompt>\nOutput:\n{exemplar_answer(ex)}" for ex in exemplars
    )
    parts = [
        HEADER,
        trajectory,
        f"The current prompt is:\n{current.text}",
        EXEMPLAR_INTRO,
        shown,
        INSTRUCTION.format(budget=budget),
    ]
    return "\n\n".join(part for part in parts if part)
