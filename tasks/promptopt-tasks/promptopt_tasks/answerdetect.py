"""Which answer type a column of gold answers holds (choice, yesno, number, text), with the
reason shown to users, and the answer format each type reads answers with."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from promptopt_tasks.answers import (
    AnswerFormat,
    Binary,
    FreeText,
    Labels,
    Number,
    label_key,
    normalize_number,
)

AnswerKind = Literal["choice", "yesno", "number", "text"]
ANSWER_KINDS: tuple[str, ...] = get_args(AnswerKind)

#: At most this many distinct answers read as labels (more: free text).
MAX_LABELS = 20
#: Numbers read as labels (0/1, ratings 1-5) only when there are this few distinct values.
MAX_NUMBER_LABELS = 5
#: Labels are short: an answer of more words is text.
MAX_LABEL_WORDS = 4


@dataclass(frozen=True)
class AnswerSpec:
    """An answer type, why it was chosen (``"2 distinct labels in 120 rows"``) and, for
    ``choice``, the labels in their canonical spelling."""

    kind: AnswerKind
    reason: str
    labels: tuple[str, ...] = ()

    def answer_format(self) -> AnswerFormat:
        """How answers of this type are normalized, parsed and continued (as for the built-in
        tasks: yes/no as BBH's Binary, numbers as GSM8K's, text as free text)."""
        if self.kind == "yesno":
            return Binary("Yes", "No")
        if self.kind == "number":
            return Number()
        if self.kind == "text":
            return FreeText("text")
        return Labels(self.labels)


def canonical_labels(answers: Sequence[str]) -> dict[str, str]:
    """Label key -> the label's spelling: the most common one (ties: the first in the data)."""
    spellings: dict[str, Counter[str]] = {}
    for answer in answers:
        spellings.setdefault(label_key(answer), Counter())[answer.strip()] += 1
    return {key: max(counts, key=lambda s: counts[s]) for key, counts in spellings.items()}


def _order(label: str) -> tuple[int, float, str]:
    number = normalize_number(label)
    return (0, float(number), "") if number is not None else (1, 0.0, label.lower())


def ordered_labels(labels: Iterable[str]) -> tuple[str, ...]:
    """Labels in a stable order: numbers in numeric order, then words alphabetically."""
    return tuple(sorted(labels, key=_order))


def detect(answers: Sequence[str]) -> AnswerSpec:
    """The answer type of a column of (non-empty) gold answers, and why."""
    rows = len(answers)
    labels = canonical_labels(answers)
    distinct = len(labels)
    ordered = ordered_labels(labels.values())
    if set(labels) == {"yes", "no"}:
        return AnswerSpec("yesno", f"every answer is Yes or No ({rows} rows)")
    numbers = {normalize_number(a) for a in answers}
    if None not in numbers:
        integers = all("." not in n for n in numbers if n is not None)
        if integers and distinct <= MAX_NUMBER_LABELS and rows >= 4 * distinct:
            return AnswerSpec(
                "choice", f"{distinct} distinct number labels in {rows} rows", ordered
            )
        return AnswerSpec(
            "number", f"every answer is a number ({len(numbers)} distinct in {rows} rows)"
        )
    longest = max(len(label.split()) for label in labels.values())
    if distinct <= MAX_LABELS and rows >= 2 * distinct and longest <= MAX_LABEL_WORDS:
        return AnswerSpec("choice", f"{distinct} distinct labels in {rows} rows", ordered)
    why = (
        f"answers of up to {longest} words"
        if longest > MAX_LABEL_WORDS
        else f"{distinct} distinct answers in {rows} rows"
    )
    return AnswerSpec("text", f"free text: {why}")
