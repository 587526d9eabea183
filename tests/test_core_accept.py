"""The acceptance rule through the real loop: a method's final prompt replaces the initial one
only when it beats it on the dev split by a one-sided paired test (``-o accept=paired``, the
default), or always (``-o accept=best``). An oracle fake model answers the first k dev questions
right, k set per prompt, so each prompt's dev outcomes are known exactly."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from promptopt import hookimpl
from promptopt.components import Backend, Method, Selector, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.progress import Progress
from promptopt.stats import mcnemar_exact, sign_flip_p
from promptopt.testing.fakes import FakeBackend, FakeBackendOptions, FakeMethod, ListTask
from promptopt.testing.fakes import FakeMethodOptions as _FakeMethodOptions
from promptopt.types import Example, Prompt

INITIAL = "Use think step by step ."  # the fake method's initial prompt
CANDIDATE = "Use check the answer twice ."
DEV = 20
EXTRACTOR = "Therefore, the final answer is"
QUESTION = re.compile(r"Question (\d+):")


def _examples(split: str, count: int) -> list[Example]:
    return [
        Example(
            f"{split}-{i}", f"Question {i}: is it Yes?", "Yes" if i % 2 else "No", ("Yes", "No")
        )
        for i in range(count)
    ]


AcceptTask = ListTask.with_examples(
    "accept/yes-no", _examples("train", 4), _examples("dev", DEV), _examples("test", 4)
)


class GradedTask(AcceptTask):
    """The same questions with partial credit: a wrong answer still scores 0.25."""

    name = "accept/graded"

    def score(self, predicted: str | None, output: str, example: Example) -> float:
        return 1.0 if self.is_correct(predicted, example) else 0.25

    @property
    def metric_name(self) -> str:
        return "partial"


class OracleOptions(FakeBackendOptions):
    #: prompt text -> how many of the first dev questions it gets right
    right: dict[str, int] = Field(default_factory=dict)


class OracleBackend(FakeBackend):
    """The fake model, except that its answer after the extractor (generated or scored by
    log-probability) is right on question i exactly when i < k, k the ``right`` entry of the
    prompt in the model's input."""

    name = "accept-oracle"
    Options = OracleOptions

    def fingerprint(self) -> dict[str, Any]:
        """Its outputs depend on ``right``: the evaluation cache must tell them apart."""
        return {**super().fingerprint(), "right": self.options.right}

    def _answer(self, text: str) -> str | None:
        found = QUESTION.search(text)
        if found is None or not text.rstrip().endswith(EXTRACTOR):
            return None
        i = int(found.group(1))
        gold = "Yes" if i % 2 else "No"
        known = [k for prompt, k in self.options.right.items() if prompt in text]
        right = i < (known[0] if known else 0)
        return gold if right else ("No" if gold == "Yes" else "Yes")

    def generate(
        self,
        texts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        progress: Progress | None = None,
        **sampling: Any,
    ) -> list[str]:
        out = super().generate(texts, max_new_tokens=max_new_tokens, stop=stop, **sampling)
        answers = [self._answer(text) for text in texts]
        return [o if a is None else f" {a}" for o, a in zip(out, answers, strict=True)]

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        answer = self._answer(prefix)
        if answer is None:
            return super().continuation_logprobs(prefix, continuations)
        return [-0.1 if c.strip() == answer else -5.0 for c in continuations]


class ChosenOptions(_FakeMethodOptions):
    steps: int = 1
    #: the method's final choice, whatever the run found
    candidate: str = CANDIDATE
    #: evaluate both prompts on dev in finalize and record them in the history
    dev_in_history: bool = False


class ChosenMethod(FakeMethod):
    """The fake method with a final choice set by an option."""

    name = "accept-chosen"
    Options = ChosenOptions

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        if self.options.dev_in_history:
            chosen = Prompt(self.options.candidate)
            losses = ctx.loss_extractor.evaluate(ctx, [initial, chosen], split="dev")
            ctx.history.record(losses, step=ctx.step)
        return {"best_prompt": self.options.candidate}


class _Plugin:
    @hookimpl
    def register_backends(self, register: Callable[[type[Backend]], None]) -> None:
        register(OracleBackend)

    @hookimpl
    def register_tasks(self, register: Callable[[type[Task]], None]) -> None:
        register(AcceptTask)
        register(GradedTask)

    @hookimpl
    def register_methods(self, register: Callable[[type[Method]], None]) -> None:
        register(ChosenMethod)


@pytest.fixture
def run(
    promptopt_fakes: Any,
    promptopt_register: Callable[..., Any],
    promptopt_run: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Callable[..., Any]:
    """``run(initial_right, candidate_right, **options)``: a one-step run whose final choice
    is :data:`CANDIDATE`, with the oracle answering that many dev questions right under each."""
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    promptopt_register(_Plugin(), name="accept-test")

    def go(
        initial_right: int, candidate_right: int, *, task: str = "accept/yes-no", **options: Any
    ) -> Any:
        right = {INITIAL: initial_right, CANDIDATE: candidate_right}
        return promptopt_run(
            "accept-chosen", task=task, backend="accept-oracle", backend__right=right, **options
        )

    return go


def log_lines(out: Any, text: str) -> list[str]:
    return [line for line in (out.path / "run.log").read_text().splitlines() if text in line]


def test_a_significantly_better_prompt_is_accepted(run: Callable[..., Any]) -> None:
    out = run(5, 15)  # 10 discordant examples, all for the candidate
    result = out.result
    assert result["best_prompt"] == result["candidate_prompt"] == CANDIDATE
    assert result["accepted"] is True and result["accept_rule"] == "paired"
    assert result["accept_test"] == "mcnemar" and result["accept_dev_n"] == DEV
    assert result["accept_dev_difference"] == pytest.approx(0.5)
    assert result["accept_p_value"] == pytest.approx(2**-10)
    assert result["accept_scores_from"] == "evaluation"
    assert log_lines(out, "replaces the initial one")


def test_a_prompt_better_by_one_example_is_rejected_and_the_run_says_so(
    run: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(10, 11)
    result = out.result
    assert result["best_prompt"] == result["initial_prompt"] == INITIAL
    assert result["candidate_prompt"] == CANDIDATE and result["accepted"] is False
    assert result["accept_dev_difference"] == pytest.approx(1 / DEV)
    assert result["accept_p_value"] == pytest.approx(0.5)  # one discordant pair
    assert result["accept_reason"].startswith("not significant")
    (line,) = log_lines(out, "kept the initial prompt")
    assert CANDIDATE in line and "accept=best" in line
    stderr = [x for x in capsys.readouterr().err.splitlines() if "kept the initial prompt" in x]
    assert stderr == [f"promptopt: {line.split(' INFO ', 1)[1]}"]
    saved = json.loads((out.path / "result.json").read_text())
    assert saved["best_prompt"] == INITIAL


def test_a_worse_prompt_is_rejected(run: Callable[..., Any]) -> None:
    result = run(15, 5).result
    assert result["best_prompt"] == INITIAL and result["accepted"] is False
    assert result["accept_dev_difference"] == pytest.approx(-0.5)
    assert result["accept_reason"].startswith("does not beat the initial prompt")


def test_accept_best_returns_the_methods_choice_whatever_its_margin(
    run: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(10, 11, accept="best")
    result = out.result
    assert result["best_prompt"] == result["candidate_prompt"] == CANDIDATE
    assert (result["accepted"], result["accept_rule"]) == (True, "best")
    # nothing in the history to pair: the reference behaviour evaluates nothing more
    assert result["accept_p_value"] is None and result["accept_dev_difference"] is None
    assert not (out.path.parent / "cache").exists()
    assert "kept the initial prompt" not in capsys.readouterr().err


def test_the_initial_prompt_as_the_choice_is_not_accepted_but_unchanged(
    run: Callable[..., Any],
) -> None:
    for rule in ("paired", "best"):
        result = run(10, 11, candidate=INITIAL, accept=rule).result
        assert result["best_prompt"] == result["candidate_prompt"] == INITIAL
        assert result["accepted"] is False and result["accept_reason"].startswith("unchanged")
        assert result["accept_p_value"] is None


def test_graded_scores_use_the_paired_permutation_test(run: Callable[..., Any]) -> None:
    better = run(5, 15, task="accept/graded").result
    assert better["accept_test"] == "permutation" and better["accepted"] is True
    assert better["accept_dev_difference"] == pytest.approx(10 * 0.75 / DEV)
    assert better["accept_p_value"] == pytest.approx(2**-10)  # every sign pattern counted
    by_one = run(10, 11, task="accept/graded").result
    assert by_one["accept_test"] == "permutation" and by_one["accepted"] is False
    assert by_one["accept_p_value"] == pytest.approx(0.5)
    assert by_one["best_prompt"] == INITIAL


def test_outcomes_in_the_history_are_reused_without_evaluating_again(
    run: Callable[..., Any], tmp_path: Path
) -> None:
    result = run(5, 15, dev_in_history=True).result
    assert result["accept_scores_from"] == "history" and result["accepted"] is True
    assert result["accept_p_value"] == pytest.approx(2**-10)
    assert not (tmp_path / "cache").exists()  # no evaluation went through the cache
    # accept=best reports the test too when it costs nothing
    best = run(10, 11, dev_in_history=True, accept="best").result
    assert best["accept_scores_from"] == "history" and best["accept_p_value"] == 0.5


def test_a_run_interrupted_before_acceptance_resumes_and_finishes(
    run: Callable[..., Any], promptopt_run: Any
) -> None:
    straight = run(10, 11)
    stopped = run(10, 11, interrupt_after=1)  # after the last step's checkpoint
    assert stopped.result == {} and not (stopped.path / "result.json").exists()
    resumed = promptopt_run.resume(stopped.path)
    keys = [k for k in straight.result if k.startswith("accept")] + [
        "best_prompt",
        "candidate_prompt",
    ]
    assert {k: resumed.result[k] for k in keys} == {k: straight.result[k] for k in keys}
    assert resumed.result["best_prompt"] == INITIAL
    assert len(log_lines(resumed, "kept the initial prompt")) == 1


def test_an_unknown_rule_is_a_one_line_error(run: Callable[..., Any]) -> None:
    with pytest.raises(PromptoptError, match="accept='always'"):
        run(5, 15, accept="always")


def test_the_api_result_has_the_fields_typed(run: Callable[..., Any]) -> None:
    from promptopt.runs import RunResult

    out = run(10, 11)
    result = RunResult.load(out.path)
    assert result is not None
    assert (result.accepted, result.accept_rule, result.candidate_prompt) == (
        False,
        "paired",
        CANDIDATE,
    )
    assert result.accept_p_value == pytest.approx(0.5)
    assert result.accept_dev_difference == pytest.approx(1 / DEV)
    assert result.best_prompt == INITIAL


@pytest.mark.parametrize(
    ("only_a", "only_b", "expected"),
    [(0, 0, 1.0), (1, 0, 0.5), (0, 1, 1.0), (10, 0, 2**-10), (3, 1, 5 / 16), (1, 3, 15 / 16)],
)
def test_one_sided_mcnemar(only_a: int, only_b: int, expected: float) -> None:
    assert mcnemar_exact(only_a, only_b, alternative="greater") == pytest.approx(expected)


def test_one_sided_sign_flip() -> None:
    assert sign_flip_p([0.5, 0.5, 0.5], alternative="greater") == (1 / 8, True)
    assert sign_flip_p([-0.5, -0.5, -0.5], alternative="greater") == (1.0, True)
    # +1, -0.25: patterns with a sum of at least 0.75: (+1, -0.25) and (+1, +0.25)
    assert sign_flip_p([1.0, -0.25, 0.0], alternative="greater") == (0.5, True)
    p, exact = sign_flip_p([0.1] * 30, alternative="greater", samples=2000)
    assert not exact and p == pytest.approx(1 / 2001)
