"""The task's valid answers at each answer slot, for the exact check's ``option_error`` and
``option_ce``: which tokens may stand at each position of the gold answer, so the argmax and the
cross-entropy can be taken over valid answers only instead of the whole vocabulary.

Closed tasks (choice, yes/no, labels: ``Example.options``): the options' continuations
(``Task.continuation``) as token sequences; at answer position ``i`` the valid tokens are the
``i``-th tokens of the options that agree with the gold answer on positions ``0..i-1`` (a prefix
tree walked along the gold path; for one-token options, the options' tokens). Number tasks
(integer answer type, or a data file typed ``number``): every token made only of digits, and at
the first position also ``-`` and ``-`` followed by digits. The gold token is always valid."""

from __future__ import annotations

import re
import weakref
from collections.abc import Sequence
from typing import Any

from promptopt.components import Task
from promptopt.errors import PromptoptError
from promptopt.types import AnswerType, Example
from promptopt_greater.whitebox import WhiteBox

#: Allowed tokens per answer position of one row.
Allowed = tuple[tuple[int, ...], ...]

_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-[0-9]*")


def answer_kind(task: Task, example: Example) -> str | None:
    """``"closed"`` (the example lists its options), ``"number"`` (a number task) or None."""
    if example.options:
        return "closed"
    if task.answer_type is AnswerType.INTEGER:
        return "number"
    if task.describe().get("answer_type") == "number":  # a data file typed "number"
        return "number"
    return None


def check_closed(task: Task, examples: Sequence[Example], loss: str) -> None:
    """A one-line error when some example has neither options nor a number answer."""
    for example in examples:
        if answer_kind(task, example) is None:
            raise PromptoptError(
                f"exact_loss={loss} needs closed answers (choice, yes/no or number), and task "
                f"{task.name!r} example {example.id!r} has none",
                hint="use -o loss_extractor.exact_loss=error_rate or answer_ce for this task",
            )


def allowed_tokens(wb: WhiteBox, task: Task, example: Example, target: Sequence[int]) -> Allowed:
    """The valid tokens at each position of ``target`` (the gold answer's ids), gold included."""
    kind = answer_kind(task, example)
    if kind == "closed":
        options = [tuple(wb.encode(task.continuation(o))) for o in example.options]
        return tuple(
            tuple(
                sorted(
                    {o[i] for o in options if len(o) > i and o[:i] == tuple(target[:i])}
                    | {target[i]}
                )
            )
            for i in range(len(target))
        )
    if kind == "number":
        first, later = number_tokens(wb)
        return tuple(
            tuple(sorted(set(first if i == 0 else later) | {target[i]})) for i in range(len(target))
        )
    raise PromptoptError(
        f"task {task.name!r} example {example.id!r} has no closed answers",
        hint="use -o loss_extractor.exact_loss=error_rate or answer_ce for this task",
    )


def number_tokens(wb: WhiteBox) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(tokens valid first in a number, tokens valid after): digit-only tokens, and first also
    "-" and "-" followed by digits; special tokens excluded. Cached per tokenizer."""
    cached = _NUMBER_CACHE.get(wb.tokenizer)
    if cached is not None:
        return cached
    special = wb.special_ids
    first: list[int] = []
    later: list[int] = []
    for i in range(min(wb.vocab_size, len(wb.tokenizer))):
        if i in special:
            continue
        text = wb.tokenizer.decode([i], skip_special_tokens=False)
        if _DIGITS.fullmatch(text):
            first.append(i)
            later.append(i)
        elif _SIGNED.fullmatch(text):
            first.append(i)
    found = (tuple(first), tuple(later))
    _NUMBER_CACHE[wb.tokenizer] = found
    return found


_NUMBER_CACHE: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], tuple[int, ...]]] = (
    weakref.WeakKeyDictionary()
)
