"""``example/compare``: "Is 23 + 48 greater than 70?" Yes or No, with generated examples.

A task tells promptopt four things: the examples of each split, the text that makes the model
state its answer (the extractor), how to read the answer back (the parser), and what follows
the extractor for a given answer (the continuation, which is the target of loss-based methods).
"""

from __future__ import annotations

import random
import re
from typing import ClassVar

from promptopt.components import ComponentOptions, Task
from promptopt.errors import PromptoptError
from promptopt.types import SPLITS, AnswerType, Example, Split
from pydantic import Field

ANSWERS = ("Yes", "No")
_STATED = re.compile(r"\$\s*(yes|no)\b", re.IGNORECASE)  # "... is $ Yes"
_BARE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)  # a plain "yes" anywhere


class CompareOptions(ComponentOptions):
    """Split sizes and seed. The names match promptopt-tasks' benchmarks, so one
    ``-o train_size=4`` sizes whichever task a run uses."""

    train_size: int = Field(default=20, ge=1)
    dev_size: int = Field(default=20, ge=1)
    test_size: int = Field(default=50, ge=1)
    split_seed: int = 0


def make_example(split: str, index: int, rng: random.Random) -> Example:
    """One question; the threshold is never equal to the sum, so the answer is clear-cut."""
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    threshold = a + b + rng.choice([-1, 1]) * rng.randint(1, 15)
    answer = "Yes" if a + b > threshold else "No"
    question = f"Is {a} + {b} greater than {threshold}? Answer Yes or No."
    return Example(id=f"{split}-{index}", question=question, answer=answer, options=ANSWERS)


class CompareTask(Task[CompareOptions]):
    """Yes/No questions about sums, generated from ``split_seed`` (no data files)."""

    name = "example/compare"
    description = "is a sum greater than a number? (Yes/No, generated; example plugin)"
    answer_type: ClassVar[AnswerType] = AnswerType.BINARY
    Options = CompareOptions

    def examples(self, split: Split) -> list[Example]:
        if split not in SPLITS:
            raise PromptoptError(f"unknown split {split!r}", hint="use train, dev or test")
        opts = self.options
        size = {"train": opts.train_size, "dev": opts.dev_size, "test": opts.test_size}[split]
        rng = random.Random(f"example/compare:{opts.split_seed}:{split}")
        return [make_example(split, i, rng) for i in range(size)]

    def extractor(self, example: Example) -> str:
        return "Therefore, the final answer is $"

    def continuation(self, answer: str) -> str:
        return f" {answer}"  # "... is $" + " Yes"

    def parse(self, text: str) -> str | None:
        """The last "$ Yes"/"$ No" if there is one, else the last bare yes/no; None if neither."""
        found = _STATED.findall(text) or _BARE.findall(text)
        return found[-1].capitalize() if found else None
