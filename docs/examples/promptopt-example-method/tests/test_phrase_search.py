"""Tests of the phrase-search method and its components, using promptopt's plugin-author kit.

The fixtures (``promptopt_fakes``, ``promptopt_run``, ...) come from promptopt's pytest
plugin, which pytest loads by itself once promptopt is installed. The fake backend stands in
for a model: the method only uses what every backend gives.
"""

from __future__ import annotations

from promptopt.testing.contracts import (
    check_loss_extractor,
    check_method,
    check_proposer,
    check_selector,
)
from promptopt.types import Prompt

from promptopt_example_method.loss import AnswerLogprobLoss
from promptopt_example_method.method import PhraseSearchMethod
from promptopt_example_method.proposer import PhraseEditProposer, sentences
from promptopt_example_method.selector import ClimbSelector


def test_components_keep_their_contracts() -> None:
    text = Prompt("Think step by step. Be brief.")
    check_proposer(PhraseEditProposer, prompt=text)
    check_loss_extractor(AnswerLogprobLoss, prompt=text)
    check_selector(ClimbSelector)


def test_the_method_runs_and_resumes_on_any_backend() -> None:
    # a short run on the fake backend and task, then the same run interrupted and resumed
    check_method(PhraseSearchMethod, steps=3)


def test_edits_add_drop_and_swap_sentences() -> None:
    proposer = PhraseEditProposer(PhraseEditProposer.Options(phrases=("Be brief.",)))
    edits = dict(proposer.edits("Think first. Check."))
    assert edits == {
        "+ Be brief.": "Think first. Check. Be brief.",
        "- Think first.": "Check.",
        "- Check.": "Think first.",
        "Think first. -> Be brief.": "Be brief. Check.",
        "Check. -> Be brief.": "Think first. Be brief.",
    }
    assert sentences("One. Two? Three!") == ["One.", "Two?", "Three!"]


def test_candidates_keep_the_prompt_separator(promptopt_fake_context) -> None:
    prompt = Prompt("Think step by step.", separator="\n")
    candidates = PhraseEditProposer().propose(promptopt_fake_context, prompt)
    assert candidates and all(c.prompt.separator == "\n" for c in candidates)


def test_a_whole_run_by_name(promptopt_fakes, promptopt_run) -> None:
    # the installed entry point registers phrase-search; the fakes make it take milliseconds
    outcome = promptopt_run("phrase-search", task="fake/yes-no", backend="fake", steps=3)
    assert 1 <= len(outcome.steps) <= 3
    assert all(step["notes"]["shortlist"] for step in outcome.steps)
    assert outcome.result["dev_size"] == 3
    assert 0.0 <= outcome.result["dev_accuracy_final"] <= 1.0


def test_an_interrupted_run_resumes_with_the_same_choices(promptopt_fakes, promptopt_run) -> None:
    settings = dict(task="fake/yes-no", backend="fake", steps=4, patience=10)
    straight = promptopt_run("phrase-search", **settings)
    stopped = promptopt_run("phrase-search", **settings, interrupt_after=2)
    resumed = promptopt_run.resume(stopped.path)
    assert [s["chosen_prompt"] for s in resumed.steps] == [
        s["chosen_prompt"] for s in straight.steps
    ]
    assert resumed.result["best_prompt"] == straight.result["best_prompt"]
