"""Exact token-id layouts: chat template + question + "Use" + prompt tokens + reasoning + answer.

Sequences are built by concatenating ids, never by re-tokenizing joined text, so the edited
prompt position and the answer slot are known exactly. The loss targets the answer tokens
appended last (the reference's "last occurrence").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from promptopt.components import Task
from promptopt.types import Example, Prompt
from promptopt_greater.whitebox import WhiteBox

_SENTINEL = "\x00PROMPTOPT_PROMPT\x00"


@dataclass(frozen=True)
class Context:
    """The model input for one (prompt, example): ``head + prompt + tail``.

    ``head`` is the template start, the question and the fixed prefix ("Use"); ``tail`` the
    rest of the user turn and the template up to the assistant's generation prompt."""

    head: tuple[int, ...]
    prompt: tuple[int, ...]
    tail: tuple[int, ...]

    @property
    def ids(self) -> list[int]:
        return [*self.head, *self.prompt, *self.tail]


@dataclass(frozen=True)
class Row:
    """A full training sequence: context, generated reasoning, extractor and gold answer."""

    context: Context
    reasoning: tuple[int, ...]
    extractor: tuple[int, ...]
    target: tuple[int, ...]
    #: The valid tokens at each answer position (``option_error``/``option_ce``), else None.
    allowed: tuple[tuple[int, ...], ...] | None = None

    @property
    def ids(self) -> list[int]:
        return [*self.context.ids, *self.reasoning, *self.extractor, *self.target]

    @property
    def prompt_start(self) -> int:
        return len(self.context.head)

    @property
    def target_start(self) -> int:
        return len(self.ids) - len(self.target)

    def __len__(self) -> int:
        return (
            len(self.context.head)
            + len(self.context.prompt)
            + len(self.context.tail)
            + len(self.reasoning)
            + len(self.extractor)
            + len(self.target)
        )


def prompt_tokens(wb: WhiteBox, prompt: Prompt) -> tuple[int, ...]:
    """The editable tokens of ``prompt`` (encoded from its text when a text-only prompt)."""
    if prompt.tokens is not None:
        return tuple(prompt.tokens)
    text = (
        prompt.text[len(prompt.prefix) :] if prompt.text.startswith(prompt.prefix) else prompt.text
    )
    return tuple(wb.encode(text))


def build_context(wb: WhiteBox, task: Task, example: Example, prompt: Prompt) -> Context:
    """The exact ids the model sees for ``example`` under ``prompt``.

    The task's ``user_turn`` is called with a sentinel prompt text to find where the prompt
    sits in the user message; the surrounding text is encoded, the prompt's ids are spliced in."""
    user = task.user_turn(example, replace(prompt, text=_SENTINEL))
    if user.count(_SENTINEL) != 1:
        raise ValueError(f"task {task.name!r} user_turn must contain the prompt text exactly once")
    head_text, tail_text = user.split(_SENTINEL)
    before, after = wb.chat_parts()
    head = tuple(wb.encode_input(before + head_text + prompt.prefix))
    tail = tuple(wb.encode(tail_text + after))
    return Context(head=head, prompt=prompt_tokens(wb, prompt), tail=tail)


def answer_ids(
    wb: WhiteBox, task: Task, example: Example, reasoning_text: str
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(extractor ids, gold answer ids) appended after the reasoning, as in the reference's
    ``{reasoning} {extractor}{answer}``."""
    extractor = task.extractor(example)
    sep = "" if not reasoning_text or reasoning_text[-1].isspace() else " "
    return tuple(wb.encode(sep + extractor)), tuple(wb.encode(task.target(example)))


def build_rows(
    wb: WhiteBox,
    task: Task,
    examples: Sequence[Example],
    contexts: Sequence[Context],
    reasonings: Sequence[Sequence[int]],
) -> list[Row]:
    """Full rows for ``examples`` given their contexts and generated reasoning ids."""
    rows = []
    for example, context, reasoning in zip(examples, contexts, reasonings, strict=True):
        text = wb.decode(reasoning, skip_special_tokens=True)
        extractor, target = answer_ids(wb, task, example, text)
        if not target:
            raise ValueError(f"example {example.id!r} has an empty answer target")
        rows.append(Row(context, tuple(reasoning), extractor, target))
    return rows


def with_token(prompt: Prompt, wb: WhiteBox, position: int, token: int) -> Prompt:
    """``prompt`` with ``token`` placed at ``position`` (text rebuilt from the ids)."""
    tokens = list(prompt_tokens(wb, prompt))
    tokens[position] = token
    return make_prompt(wb, prompt.prefix, tokens, position)


def make_prompt(wb: WhiteBox, prefix: str, tokens: Sequence[int], position: int) -> Prompt:
    """A token-level prompt: ``text = prefix + decode(tokens)``."""
    return Prompt(
        text=prefix + wb.decode(tokens, skip_special_tokens=False),
        tokens=tuple(int(t) for t in tokens),
        position=position,
        prefix=prefix,
    )


def round_trips(wb: WhiteBox, prefix: str, tokens: Sequence[int]) -> bool:
    """True when ``prefix + decode(tokens)`` re-encodes to ``encode(prefix) + tokens``, so the
    prompt text means the same ids to any consumer (fix of the reference's unchecked quirk)."""
    head = wb.encode(prefix) if prefix else []
    return wb.encode(prefix + wb.decode(tokens)) == [*head, *tokens]
