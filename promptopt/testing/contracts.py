"""Contract checks a third-party task or selector package runs in its own tests.

Each check returns nothing and raises :class:`AssertionError` with a message naming the
component and the broken rule::

    from promptopt.testing.contracts import check_selector, check_task

    def test_my_task_keeps_the_contract():
        check_task(MyTask())

    def test_my_selector_keeps_the_contract():
        check_selector(MySelector)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from promptopt.components import Component, ComponentOptions, Selector, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.testing.fakes import FakeWordProposer, fake_context, word_prompt
from promptopt.types import SPLITS, AnswerType, Candidate, Prompt, PromptLoss, Selection


def is_finite(value: object) -> bool:
    """True for None or a finite number (what a Selection's loss may be)."""
    return value is None or (isinstance(value, (int, float)) and math.isfinite(value))


def _fail(component: str, rule: str) -> AssertionError:
    return AssertionError(f"{component}: {rule}")


def check_component_class(cls: type[Component]) -> None:
    """Class-level rules every component keeps: a name, a description, strict defaulted Options."""
    who = f"{cls.kind or 'component'} {cls.__name__}"
    if not cls.name:
        raise _fail(who, "set the class attribute `name` (what users select it by)")
    if not cls.description:
        raise _fail(who, "set the class attribute `description` (shown by `promptopt plugins`)")
    if not issubclass(cls.Options, ComponentOptions):
        raise _fail(who, "Options must subclass promptopt.components.ComponentOptions")
    try:
        cls.Options()
    except ValidationError as exc:
        raise _fail(who, f"every option needs a default so Options() builds: {exc}") from exc
    try:
        cls.Options(**{"__no_such_option__": 1})
    except ValidationError:
        pass
    else:
        raise _fail(who, 'Options accepts unknown keys; keep model_config extra="forbid"')


# --------------------------------------------------------------------------- tasks


def check_task(task: Task) -> None:
    """Check a constructed task on every split: examples, answers, parser, extractor, scorer."""
    cls = type(task)
    check_component_class(cls)
    who = f"task {task.name!r}"
    if not isinstance(cls.answer_type, AnswerType):
        raise _fail(who, f"answer_type {cls.answer_type!r} is not a promptopt.types.AnswerType")
    for split in SPLITS:
        try:
            examples = task.examples(split)
        except PromptoptError as exc:
            raise _fail(who, f"split {split!r} cannot be loaded: {exc}") from exc
        if not examples:
            raise _fail(who, f"split {split!r} is empty")
        if [e.id for e in task.examples(split)] != [e.id for e in examples]:
            raise _fail(who, f"split {split!r} is not in a deterministic order")
        ids = [e.id for e in examples]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise _fail(who, f"split {split!r} repeats example ids {duplicates[:5]}")
        for example in examples:
            _check_example(task, who, split, example)


def _check_example(task: Task, who: str, split: str, example: Any) -> None:
    where = f"{who}, {split} example {example.id!r}"
    if not isinstance(example.answer, str) or not example.answer:
        raise _fail(where, f"gold answer {example.answer!r} must be a non-empty string")
    extractor = task.extractor(example)
    parsed = task.parse(extractor + task.continuation(example.answer))
    if parsed != example.answer:
        raise _fail(
            where,
            f"parse(extractor + continuation(answer)) gave {parsed!r}, not the gold "
            f"{example.answer!r}; the parser must read back what the extractor leads to",
        )
    alone = task.parse(extractor)
    if alone is not None:
        raise _fail(
            where,
            f"the extractor alone parses to {alone!r}; an empty model answer "
            "would be read as that answer",
        )
    if not task.is_correct(example.answer, example):
        raise _fail(where, "is_correct(gold answer) is False")
    if task.is_correct(None, example):
        raise _fail(where, "is_correct(None) is True; an unparsed answer must be wrong")
    if example.options:
        if example.answer not in example.options:
            raise _fail(
                where, f"options {example.options} do not contain the answer {example.answer!r}"
            )
        if len(set(example.options)) != len(example.options):
            raise _fail(where, f"options {example.options} repeat a value")
        other = (
            next(o for o in example.options if o != example.answer)
            if len(example.options) > 1
            else None
        )
        if other is not None and task.is_correct(other, example):
            raise _fail(where, f"is_correct({other!r}) is True but the gold is {example.answer!r}")
    marker = "PROMPTOPT-CONTRACT-PROMPT"
    if marker not in task.user_turn(example, Prompt(marker)):
        raise _fail(
            where, "user_turn() drops the prompt text; the optimized prompt never reaches the model"
        )


# --------------------------------------------------------------------------- selectors


def check_selector(
    selector_cls: type[Selector],
    *,
    options: ComponentOptions | Mapping[str, Any] | None = None,
    prompt: Prompt | None = None,
    candidates: Sequence[Candidate] | None = None,
    scores: Sequence[float] | None = None,
    context: StepContext | None = None,
) -> None:
    """Check a selector class on a real step over the fake components (or the given inputs).

    Builds it with default options (or ``options``: an Options instance or a dict validated
    through the selector's Options), runs :meth:`~Selector.select` and checks the
    :class:`Selection`, that the state round-trips through JSON and ``load_state_dict``, and
    that two fresh selectors pick the same prompt for the same inputs.
    """
    check_component_class(selector_cls)
    who = f"selector {selector_cls.name!r}"
    if isinstance(options, Mapping):
        try:
            options = selector_cls.Options(**options)
        except ValidationError as exc:
            raise _fail(who, f"the given options do not validate: {exc}") from exc
    prompt = prompt if prompt is not None else word_prompt("think step by step .")
    new_context = _context_factory(context, prompt)
    if candidates is None:
        candidates = FakeWordProposer().propose(new_context(), prompt)
    if scores is None:
        scores = [float(len(c.label) % 5) + 0.5 * i for i, c in enumerate(candidates)]
    if len(scores) != len(candidates):
        raise ValueError("give one score per candidate")

    first = _build(selector_cls, options)
    selection = first.select(new_context(), prompt, candidates, scores)
    _check_selection(who, selection, prompt, candidates)
    _check_state(who, selector_cls, options, first)

    again = _build(selector_cls, options).select(new_context(), prompt, candidates, scores)
    if (again.prompt, again.loss, again.stop) != (selection.prompt, selection.loss, selection.stop):
        raise _fail(
            who,
            f"not deterministic: picked {selection.prompt.text!r} "
            f"(loss {selection.loss}) then {again.prompt.text!r} (loss {again.loss}) "
            "for the same inputs; draw randomness from ctx.rng only",
        )


def _context_factory(context: StepContext | None, prompt: Prompt) -> Callable[[], StepContext]:
    """Fresh copies of a context with the same random state, so two selectors see the same
    numbers (the fake context, with ``prompt`` as its population, when none is given)."""
    if context is None:
        return lambda: fake_context(population=(prompt,))
    state = context.rng.getstate()

    def make() -> StepContext:
        rng = random.Random()
        rng.setstate(state)
        return dataclasses.replace(
            context, rng=rng, timings={}, notes={}, history=copy.deepcopy(context.history)
        )

    return make


def _build(cls: type[Selector], options: ComponentOptions | None) -> Selector:
    return cls(options if options is not None else cls.Options())


def _same_prompt(a: Prompt, b: Prompt) -> bool:
    """Equal up to the edit position (selectors may move it)."""
    return (a.text, a.tokens, a.prefix) == (b.text, b.tokens, b.prefix)


def _check_selection(
    who: str, selection: Any, prompt: Prompt, candidates: Sequence[Candidate]
) -> None:
    if not isinstance(selection, Selection):
        raise _fail(who, f"select() returned {type(selection).__name__}, not a Selection")
    if not isinstance(selection.prompt, Prompt):
        raise _fail(who, f"Selection.prompt is {type(selection.prompt).__name__}, not a Prompt")
    allowed = [prompt, *(c.prompt for c in candidates)]
    if not any(_same_prompt(selection.prompt, p) for p in allowed):
        raise _fail(
            who,
            f"chose {selection.prompt.text!r}, which is neither the current prompt nor a candidate",
        )
    tokens = selection.prompt.tokens
    if tokens is not None and not 0 <= selection.prompt.position < max(1, len(tokens)):
        raise _fail(
            who,
            f"position {selection.prompt.position} is outside the prompt's {len(tokens)} tokens",
        )
    if not is_finite(selection.loss):
        raise _fail(who, f"loss {selection.loss!r} is neither finite nor None")
    if not isinstance(selection.stop, bool):
        raise _fail(who, f"Selection.stop is {selection.stop!r}, not a bool")
    _check_evaluated(who, list(selection.evaluated))
    for member in selection.population:
        if not isinstance(member, Prompt):
            raise _fail(who, f"Selection.population holds {type(member).__name__}, not a Prompt")


def _check_evaluated(who: str, entries: Any, what: str = "Selection.evaluated") -> None:
    if not isinstance(entries, list):
        raise _fail(who, f"{what} returned {type(entries).__name__}, not a list")
    for entry in entries:
        if not isinstance(entry, PromptLoss):
            raise _fail(who, f"{what} holds {type(entry).__name__}, not PromptLoss")
        if None in (entry.loss, entry.error_rate) or not (
            is_finite(entry.loss) and is_finite(entry.error_rate)
        ):
            raise _fail(who, f"{what} holds a non-finite loss for {entry.prompt.text!r}")


def _check_state(
    who: str, cls: type[Selector], options: ComponentOptions | None, selector: Selector
) -> None:
    state = selector.state_dict()
    try:
        text = json.dumps(state, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise _fail(who, f"state_dict() is not JSON-serializable: {exc}") from exc
    fresh = _build(cls, options)
    fresh.load_state_dict(json.loads(text))
    restored = fresh.state_dict()
    if json.loads(json.dumps(restored)) != json.loads(text):
        raise _fail(
            who,
            "load_state_dict(state_dict()) does not restore the same state: "
            f"{text[:200]} became {json.dumps(restored)[:200]}",
        )
