"""The guards a small optimizer model needs (the authors' code has none): tags, cleaning, and
the rejection of empty, over-long, leaking and copied candidates."""

from __future__ import annotations

import pytest
from promptopt_gpo.parsing import (
    between_tags,
    clean,
    leaked_answer,
    rejection,
    word_edit_distance,
)

from promptopt.types import Example

NUMBERS = [
    Example("n1", "Tom has 40 apples and buys 2 more. How many apples now?", "42"),
    Example("n2", "What is 7 times 6 minus 2?", "40"),
]
YES_NO = [Example("y1", "Is 3 greater than 2?\nOptions:\n- Yes\n- No", "Yes", ("Yes", "No"))]


def test_text_between_the_first_start_and_the_first_end_after_it() -> None:
    out = "intro <END> then <START> Count the steps. <END> more <START>x<END>"
    assert between_tags(out).text == " Count the steps. "
    assert between_tags("<start>Be brief.</end>").text == "Be brief."


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        ("<START>Count the steps.", "missing <END>"),
        ("Count the steps.<END>", "missing <START>"),
        ("Count the steps.", "missing <START> and <END>"),
        ("", "missing <START> and <END>"),
    ],
)
def test_both_tags_are_required(output: str, reason: str) -> None:
    parsed = between_tags(output)
    assert parsed.text is None and parsed.reason == reason


def test_an_echoed_tag_instruction_is_no_prompt() -> None:
    parsed = between_tags("Wrap the solution with <START> and <END>.")
    assert (
        parsed.text is None and parsed.reason == "echoes the instruction 'with <START> and <END>'"
    )
    assert between_tags("<START>Think and check.<END>").text == "Think and check."


def test_without_the_guard_a_missing_tag_falls_back_like_the_reference() -> None:
    assert between_tags("<START>Count the steps.", require_tags=False).text == "Count the steps."
    assert between_tags("Count.<END> junk", require_tags=False).text == "Count."
    assert between_tags("just text", require_tags=False).text == "just text"


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("  Here is the new prompt: think about each turn. ", "Think about each turn."),
        ("Sure! Here's an improved prompt: Track your position.", "Track your position."),
        ("New prompt: Prompt: Track your position.", "Track your position."),
        ("**Track** your position.", "Track your position."),
        ("Track your position.\n<Prompt>", "Track your position."),
        ("Input: a question\nTrack your position.\nOutput: No", "Track your position."),
        ("Track your\nposition\n\nstep by step.", "Track your position step by step."),
        ('"Track your position."', "Track your position."),
        ("track your position.", "Track your position."),
        ("Here are the steps: add them up.", "Here are the steps: add them up."),
        ("Prompt-based reasoning works.", "Prompt-based reasoning works."),
    ],
)
def test_cleaning(raw: str, cleaned: str) -> None:
    assert clean(raw) == cleaned


def test_empty_and_over_long_candidates_are_rejected() -> None:
    assert rejection("", NUMBERS, max_words=100) == "empty after cleaning"
    assert rejection(clean("**<Prompt>**"), NUMBERS, max_words=100) == "empty after cleaning"
    assert rejection(" ".join(["word"] * 100), NUMBERS, max_words=100) == ""
    too_long = " ".join(["word"] * 101)
    assert rejection(too_long, NUMBERS, max_words=100) == "101 words, over the limit of 100"


def test_a_candidate_containing_an_exemplar_answer_is_rejected() -> None:
    reason = rejection("Add them: the answer is 42.", NUMBERS, max_words=100)
    assert reason == "contains the exemplar answer '42'"
    assert rejection("Count all 142 apples.", NUMBERS, max_words=100) == ""  # not the word 42
    assert rejection("Answer 40.", NUMBERS, max_words=100, leakage="off") == ""


def test_closed_options_are_no_leak_unless_asked() -> None:
    assert leaked_answer("Answer Yes or No.", YES_NO) is None
    assert leaked_answer("Answer Yes or No.", YES_NO, leakage="all") == "Yes"


def test_a_copied_exemplar_question_is_rejected() -> None:
    text = "Tom has 40 apples and buys 2 more. How many apples now? Think."
    assert rejection(text, NUMBERS, max_words=100, leakage="off") == "copies an exemplar question"


def test_the_optional_budget_guard_counts_changed_words() -> None:
    assert word_edit_distance("think step by step", "think each step by step") == 1
    assert word_edit_distance("a b c", "x y") == 3
    current = "Let's think step by step."
    assert (
        rejection("Let's reason step by step.", [], max_words=100, current=current, budget=1) == ""
    )
    reason = rejection("Count every move twice.", [], max_words=100, current=current, budget=2)
    assert reason == "changes 5 words, over the budget of 2"
