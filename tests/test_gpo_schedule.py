"""GPO's step count, cosine edit budget, meta-prompt and exemplars against the numbers and text
of the authors' code (RUCAIBox/GPO)."""

from __future__ import annotations

import pytest
from promptopt_gpo.metaprompt import (
    Entry,
    draw_exemplars,
    exemplar_answer,
    format_score,
    render,
)
from promptopt_gpo.schedule import budget_schedule, edit_budget, steps_per_epoch, total_steps

from promptopt.types import Example

#: N_t of RUCAIBox/GPO's cosine schedule (learning_rate_scheduler/consine.py) for BBH, T = 18.
BBH_BUDGETS = [49, 48, 47, 45, 42, 40, 36, 33, 30, 26, 23, 20, 17, 14, 12, 11, 10, 10]


@pytest.mark.parametrize(
    ("n_train", "total"),
    [(48, 18), (50, 18), (100, 39), (20, 9), (8, 3), (11, 3), (12, 6), (4, 3), (3, 3)],
)
def test_total_steps_from_train_size(n_train: int, total: int) -> None:
    assert total_steps(n_train) == total


def test_steps_per_epoch_rounds_half_batches_up() -> None:
    assert [steps_per_epoch(n) for n in (8, 11, 12, 15, 16)] == [1, 1, 2, 2, 2]
    assert total_steps(100, epochs=1) == 13
    assert total_steps(48, batch=16) == 9


def test_bbh_budget_schedule_matches_the_paper() -> None:
    assert budget_schedule(18) == BBH_BUDGETS
    assert edit_budget(1, 18) == 49 and edit_budget(18, 18) == 10


def test_budget_clamps_past_the_end_and_follows_its_bounds() -> None:
    assert edit_budget(25, 18) == 10
    assert edit_budget(0, 18) == 50
    assert budget_schedule(2) == [30, 10]
    assert budget_schedule(4, high=20, low=0) == [17, 10, 2, 0]


def test_meta_prompt_is_the_reference_text() -> None:
    exemplars = [
        Example("e1", "Is 3 greater than 2?\nOptions:\n- Yes\n- No", "Yes", ("Yes", "No")),
        Example("e2", "Pick one.\nOptions:\n(A) red\n(B) blue", "B", ("A", "B")),
    ]
    text = render(
        [Entry("Count first.", 0.25), Entry("Let's think step by step.", 0.5)],
        Entry("Let's think step by step.", 0.5),
        exemplars,
        49,
    )
    assert text == (
        "Your task is to write a prompt to replace <Prompt>.\n\n"
        "Below are the previous prompts with their scores. The score ranges from 0 to 100, and "
        "higher scores indicate better quality.\n\n"
        "Prompt: Count first.\nScore: 25\n\n"
        "Prompt: Let's think step by step.\nScore: 50\n\n"
        "The current prompt is:\nLet's think step by step.\n\n"
        "The following exemplars show how to apply the prompt: you replace <Prompt> in each "
        "input with your new prompt, then read the input and give an output. We say your output "
        "is wrong if it is different from the given output, and we say your output is correct "
        "if they are the same.\n\n"
        "Input:\nIs 3 greater than 2?\nOptions:\n- Yes\n- No\n<Prompt>\nOutput:\nYes\n\n"
        "Input:\nPick one.\nOptions:\n(A) red\n(B) blue\n<Prompt>\nOutput:\n(B)\n\n"
        "Carefully analyze the previous prompts and their scores, and write a new improved "
        "prompt to replace <Prompt> at the end of the question in the task examples.\n"
        "You are allowed to change up to 49 words in the current prompt.\n\n"
        "Wrap the new prompt with <START> and <END>."
    )


def test_scores_are_percent_by_default_and_raw_fractions_on_request() -> None:
    assert [format_score(x) for x in (0.0, 0.625, 1 / 3, 1.0)] == ["0", "62.5", "33.33", "100"]
    assert format_score(0.625, "fraction") == "0.625"
    assert format_score(None) == "unknown"


def test_exemplar_answers_show_the_option_label() -> None:
    mc = Example("a", "Q?\nOptions:\n(A) x\n(B) y", "B", ("A", "B"))
    assert exemplar_answer(mc) == "(B)"
    assert exemplar_answer(Example("b", "How many?", "42")) == "42"


def test_exemplars_are_drawn_once_per_seed() -> None:
    train = [Example(f"t{i}", f"q{i}", "Yes") for i in range(50)]
    first = [e.id for e in draw_exemplars(train, 3, seed=0)]
    assert first == [e.id for e in draw_exemplars(train, 3, seed=0)]
    assert len(set(first)) == 3
    assert first != [e.id for e in draw_exemplars(train, 3, seed=1)]
    assert len(draw_exemplars(train[:2], 3, seed=0)) == 2
