"""Tests of the example/compare task, using promptopt's plugin-author kit.

The fixtures (``promptopt_fakes``, ``promptopt_run``, ...) come from promptopt's pytest
plugin, which pytest loads by itself once promptopt is installed.
"""

from __future__ import annotations

import pytest
from promptopt.evaluation import evaluate
from promptopt.testing.contracts import check_task
from promptopt.testing.fakes import FakeBackend
from promptopt.types import Prompt

from promptopt_example_task.task import CompareTask


def test_keeps_the_task_contract() -> None:
    check_task(CompareTask())
    check_task(CompareTask(CompareTask.Options(train_size=3, dev_size=2, test_size=1)))


def test_splits_follow_the_size_and_seed_options() -> None:
    task = CompareTask(CompareTask.Options(train_size=5, split_seed=1))
    assert len(task.examples("train")) == 5
    other_seed = CompareTask(CompareTask.Options(train_size=5, split_seed=2))
    assert task.examples("train") != other_seed.examples("train")


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so it is $ Yes", "Yes"),
        ("no doubt... the final answer is $ no.", "No"),
        ("Yes, 71 > 70, so yes", "Yes"),
        ("I cannot tell", None),
    ],
)
def test_parses_the_last_stated_answer(text: str, answer: str | None) -> None:
    assert CompareTask().parse(text) == answer


def test_is_found_by_name_and_optimized_in_a_whole_run(promptopt_fakes, promptopt_run) -> None:
    # The installed entry point registers example/compare; the fake method runs in milliseconds.
    outcome = promptopt_run("fake", task="example/compare", steps=2, train_size=4)
    assert len(outcome.steps) == 2
    assert outcome.result["task"] == "example/compare"


def test_evaluates_with_any_backend() -> None:
    task = CompareTask(CompareTask.Options(test_size=6))
    report = evaluate(
        FakeBackend(None),
        task,
        Prompt("Add first."),
        task.examples("test"),
        scoring="logprob",
        max_new_tokens=8,
    )
    assert report.n == 6
    assert 0.0 <= report.accuracy <= 1.0
