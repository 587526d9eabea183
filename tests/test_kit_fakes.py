"""The kit's fake components: deterministic, real to the interfaces, and fast end to end."""

from __future__ import annotations

import time

import pytest

from promptopt.errors import DataError, PromptoptError
from promptopt.testing.fakes import (
    WORDS,
    FakeBackend,
    FakeWordProposer,
    ListTask,
    decode_words,
    encode_words,
    fake_context,
    word_prompt,
)
from promptopt.types import Example


def test_backend_depends_on_its_input_and_salt() -> None:
    """The Backend contract: tests/test_kit_backends.py."""
    backend = FakeBackend(None)
    texts = [f"question {i}" for i in range(20)]
    first = backend.generate(texts, max_new_tokens=6)
    assert len(set(first)) > 10
    salted = FakeBackend(None, FakeBackend.Options(fake_salt="x")).generate(texts, max_new_tokens=6)
    assert salted != first


def test_backend_respects_max_new_tokens() -> None:
    outputs = FakeBackend(None).generate([f"t{i}" for i in range(30)], max_new_tokens=3)
    assert all(1 <= len(out.split()) <= 3 for out in outputs)


def test_backend_logprobs_depend_on_the_prefix() -> None:
    backend = FakeBackend(None)
    values = backend.continuation_logprobs("prefix A", [" Yes", " No", " Yes please"])
    assert values != backend.continuation_logprobs("prefix B", [" Yes", " No", " Yes please"])


def test_word_prompts_round_trip_and_reject_unknown_words() -> None:
    prompt = word_prompt("think step by step .")
    assert prompt.text == "Use think step by step ."
    assert prompt.text == prompt.prefix + decode_words(prompt.tokens or ())
    ids = tuple(WORDS.index(w) for w in ("check", "the", "answer"))
    assert encode_words("check the answer") == ids
    with pytest.raises(PromptoptError, match="'banana'"):
        encode_words("check banana")


def test_list_task_with_examples_makes_a_named_task() -> None:
    train = [Example("a", "Is 2 > 1?", "Yes", ("Yes", "No"))]
    task_cls = ListTask.with_examples("mine/tiny", train)
    assert task_cls.name == "mine/tiny"
    assert task_cls().examples("train") == train
    with pytest.raises(DataError, match="no dev examples"):
        task_cls().examples("dev")
    assert task_cls().parse("Yes... no, wait. The final answer is No") == "No"


def test_proposer_edits_the_current_position_only() -> None:
    ctx = fake_context()
    prompt = word_prompt("think step by step .", position=2)
    candidates = FakeWordProposer().propose(ctx, prompt)
    assert candidates[0].prompt.text == prompt.text  # the current word comes first
    for candidate in candidates:
        tokens = candidate.prompt.tokens or ()
        assert tokens[:2] + tokens[3:] == (prompt.tokens or ())[:2] + (prompt.tokens or ())[3:]
        assert candidate.label == WORDS[tokens[2]]
    assert len({c.label for c in candidates}) == len(candidates)


def test_a_whole_fake_run_takes_well_under_a_second_per_step(
    promptopt_fakes, promptopt_run, promptopt_hook_recorder
) -> None:
    started = time.perf_counter()
    outcome = promptopt_run("fake", task="fake/yes-no", steps=5)
    assert time.perf_counter() - started < 10
    assert [s["step"] for s in outcome.steps] == [0, 1, 2, 3, 4]
    assert [s["position"] for s in outcome.steps] == [0, 1, 2, 3, 4]
    evaluated = {e["prompt"] for s in outcome.steps for e in s["evaluated"]}
    assert outcome.result["candidate_prompt"] in evaluated  # the method's choice
    # the acceptance rule returns it, or the initial prompt when it does not beat it on dev
    assert outcome.result["best_prompt"] in {
        outcome.result["candidate_prompt"],
        outcome.result["initial_prompt"],
    }
    assert promptopt_hook_recorder.names().count("step_end") == 5
    assert (outcome.path / "checkpoint.json").is_file()


def test_run_fixture_routes_component_overrides_and_options(promptopt_fakes, promptopt_run) -> None:
    outcome = promptopt_run("fake", task="fake/yes-no", steps=1, fake_candidates=2, seed=3)
    assert len(outcome.steps[0]["candidates"]) == 3  # the current word plus two
    with pytest.raises(PromptoptError, match="unknown option 'no_such_option'"):
        promptopt_run("fake", task="fake/yes-no", no_such_option=1)


def test_run_fixture_interrupts_and_resumes_exactly(promptopt_fakes, promptopt_run) -> None:
    straight = promptopt_run("fake", task="fake/yes-no", steps=4, seed=7)
    stopped = promptopt_run("fake", task="fake/yes-no", steps=4, seed=7, interrupt_after=2)
    assert (stopped.result, len(stopped.steps)) == ({}, 2)
    resumed = promptopt_run.resume(stopped.path)

    def untimed(steps: list[dict]) -> list[dict]:
        """Everything but timings and peak memory (model usage counts must match too)."""
        return [
            {
                **{k: v for k, v in step.items() if k != "timings"},
                "compute": step["compute"]["models"],
            }
            for step in steps
        ]

    assert untimed(resumed.steps) == untimed(straight.steps)
    assert resumed.result["best_prompt"] == straight.result["best_prompt"]
