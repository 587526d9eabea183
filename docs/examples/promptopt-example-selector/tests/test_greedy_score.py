"""Tests of the greedy-score selector, using promptopt's plugin-author kit.

The fixtures (``promptopt_fakes``, ``promptopt_fake_context``, ``promptopt_run``, ...) come
from promptopt's pytest plugin, which pytest loads by itself once promptopt is installed.
"""

from __future__ import annotations

import dataclasses

from promptopt.testing.contracts import check_selector
from promptopt.testing.fakes import word_prompt
from promptopt.types import Candidate

from promptopt_example_selector.selector import GreedyScoreSelector, move_position


def test_keeps_the_selector_contract() -> None:
    check_selector(GreedyScoreSelector)


def test_picks_the_lowest_score_and_moves_to_the_next_position(promptopt_fake_context) -> None:
    prompt = word_prompt("think step by step .", position=1)
    candidates = [
        Candidate(word_prompt("think step by step .", position=1), "step"),
        Candidate(word_prompt("think clearly by step .", position=1), "clearly"),
    ]
    selection = GreedyScoreSelector().select(promptopt_fake_context, prompt, candidates, [0.7, 0.2])
    assert selection.prompt.text == "Use think clearly by step ."
    assert selection.prompt.position == 2
    assert selection.loss is not None
    assert [e.prompt.text for e in selection.evaluated] == ["Use think clearly by step ."]


def test_wraps_to_the_first_token_after_the_last() -> None:
    last = word_prompt("think step by step .", position=4)
    assert move_position(last).position == 0


def test_moving_keeps_the_rest_of_the_prompt() -> None:
    prompt = dataclasses.replace(word_prompt("think step by step ."), separator="\n")
    moved = move_position(prompt)
    assert moved == dataclasses.replace(prompt, position=1)


def test_is_selected_by_name_in_a_whole_run(promptopt_fakes, promptopt_run) -> None:
    # The installed entry point registers greedy-score; the fakes make the run take milliseconds.
    outcome = promptopt_run("fake", task="fake/yes-no", selector="greedy-score", steps=3)
    assert [step["step"] for step in outcome.steps] == [0, 1, 2]
    assert all(step["loss"] is not None for step in outcome.steps)
    # the method's final choice (the run returns it only when it beats the initial prompt on dev)
    assert outcome.result["candidate_prompt"] in {step["chosen_prompt"] for step in outcome.steps}
    assert all("winner_score" in step["notes"] for step in outcome.steps)


def test_without_exact_evaluation_no_loss_is_logged(promptopt_fakes, promptopt_run) -> None:
    settings = dict(task="fake/yes-no", selector="greedy-score", steps=2)
    outcome = promptopt_run("fake", **settings, selector__evaluate_winner=False)
    assert [step["loss"] for step in outcome.steps] == [None, None]
    assert all(step["evaluated"] == [] for step in outcome.steps)


def test_an_interrupted_run_resumes_with_the_same_choices(promptopt_fakes, promptopt_run) -> None:
    settings = dict(task="fake/yes-no", selector="greedy-score", steps=4)
    straight = promptopt_run("fake", **settings)
    stopped = promptopt_run("fake", **settings, interrupt_after=2)
    resumed = promptopt_run.resume(stopped.path)
    assert [s["chosen_prompt"] for s in resumed.steps] == [
        s["chosen_prompt"] for s in straight.steps
    ]
    assert resumed.result["best_prompt"] == straight.result["best_prompt"]
