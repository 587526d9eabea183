"""The degenerate-candidate guards (promptopt.candidateguards) and GPO's small meta-prompt, on the
real BBH data: the texts a small optimizer model copies are real training questions and the
real meta-prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from promptopt_gpo.metaprompt import Entry, draw_exemplars, render
from promptopt_gpo.proposer import _labels
from promptopt_gpo.smallmeta import FORMAT_EXAMPLE, compose, render_small, short_exemplar

from promptopt.candidateguards import (
    APPENDS_LABEL,
    COPIED_BLOCK,
    COPIES_META_PROMPT,
    COPIES_QUESTION,
    LEFTOVER_TAG,
    GuardContext,
    RejectionCounter,
    degenerate,
)
from promptopt.types import Example

INITIAL = "Let's think step by step."


def bbh(name: str, data_dir: Path) -> Any:
    from promptopt.registry import get_registry

    cls = get_registry().get("task", name)
    return cls(cls.Options(data_dir=data_dir))


@pytest.fixture(scope="module")
def navigate(shared_data_dir: Path) -> list[Example]:
    return bbh("bbh/navigate", shared_data_dir).examples("train")


def guards(train: list[Example], meta: str) -> GuardContext:
    return GuardContext.of(
        prompts=[INITIAL], meta_prompt=meta, questions=[e.question for e in train],
        labels=_labels(train),
    )  # fmt: skip


def test_each_guard_names_its_reason_on_real_text(navigate: list[Example]) -> None:
    exemplars = short_exemplar(navigate, 1, seed=0)
    meta = render_small([Entry(INITIAL, 0.5)], exemplars, 30)
    ctx = guards(navigate, meta)
    question = navigate[7].question
    first_line = question.splitlines()[0]
    cases = {
        "Track position.": "fewer than 3 words",
        "Track every step <START> you take.": LEFTOVER_TAG,
        "Track every step you take.</END": LEFTOVER_TAG,
        f"Count the steps.\nInput:\n{question}": COPIED_BLOCK,
        "Count the steps.\nOutput:\nYes": COPIED_BLOCK,
        FORMAT_EXAMPLE.removeprefix("<START>").removesuffix("<END>"): COPIES_META_PROMPT,
        "scores higher than all of these": COPIES_META_PROMPT,
        INITIAL: COPIES_META_PROMPT,  # the current prompt, unchanged
        first_line: COPIES_QUESTION,
        "Let's think step by step. Yes": APPENDS_LABEL,
        "Let's think step by step. Answer: No.": APPENDS_LABEL,
        "Let's think step by step. (B)": APPENDS_LABEL,
    }
    assert first_line.lower() not in meta.lower()  # another question than the exemplar's
    for text, reason in cases.items():
        assert degenerate(text, ctx) == reason, text
    good = [
        "Track your position after every instruction, then say whether you are back at the start.",
        "Let's think step by step and keep count of every step forward and backward.",
        "Let's think step by step. Yes or no: are you back where you started?",
    ]
    for text in good:
        assert degenerate(text, ctx) is None, text
    # the raw text is screened too: a copied block that cleaning would have dropped
    assert degenerate("Count the steps.", ctx, raw="Input:\nTake 3 steps.\nCount the steps.") == (
        COPIED_BLOCK
    )


def test_the_counter_groups_reasons() -> None:
    counter = RejectionCounter()
    for reason in ("105 words, over the limit of 100", "99 words, over the limit of 100"):
        counter.add(reason)
    counter.add(LEFTOVER_TAG)
    assert counter.as_dict() == {"N words, over the limit of N": 2, LEFTOVER_TAG: 1}
    assert counter.total() == 3
    assert counter.summary() == f"2 x N words, over the limit of N; 1 x {LEFTOVER_TAG}"
    assert RejectionCounter().summary() == "none"


def test_the_small_meta_prompt_is_short_and_puts_the_best_prompt_last(
    shared_data_dir: Path,
) -> None:
    train = bbh("bbh/causal_judgement", shared_data_dir).examples("train")
    entries = [Entry("Think hard.", 0.75), Entry(INITIAL, 0.5), Entry("Read twice.", 0.625)]
    reference = render(entries, entries[1], draw_exemplars(train, 3, 0), 30)
    small, shown = compose("small", entries, entries[1], train, count=1, seed=0, budget=30)
    # the long causal-judgement stories are not shown to a small model at all
    assert shown == [] and "Input:" not in small
    assert len(small.split()) < 150 < 600 < len(reference.split())
    order = [small.index(f"Instruction: {t}\n") for t in ("Think hard.", "Read twice.", INITIAL)]
    assert order == sorted(order, reverse=True)  # 50, 62.5, 75: the best last
    assert "Score: 75\n\nWrite one new instruction" in small
    assert "change at most 30 words" in small and small.endswith(FORMAT_EXAMPLE)
    assert small.count("<START>") == 2  # the request names the tags, one worked example


def test_the_small_meta_prompt_shows_one_short_exemplar(navigate: list[Example]) -> None:
    (exemplar,) = short_exemplar(navigate, 3, seed=0)
    shortest = min(len(e.question.split()) for e in navigate)
    assert len(exemplar.question.split()) == shortest
    assert short_exemplar(navigate, 0, seed=0) == []
    assert short_exemplar(navigate, 1, seed=0, max_words=shortest - 1) == []
    meta, shown = compose("small", [Entry(INITIAL, None)], Entry(INITIAL, None), navigate,
                          count=1, seed=0, budget=49)  # fmt: skip
    assert shown == [exemplar]
    assert f"Input:\n{exemplar.question.strip()}\nOutput:\n{exemplar.answer}" in meta
    assert "Score: unknown" in meta
