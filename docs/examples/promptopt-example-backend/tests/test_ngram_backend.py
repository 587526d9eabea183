"""Tests of the ngram backend, using promptopt's plugin-author kit.

``check_backend`` checks the whole Backend contract; the rest are this backend's own rules.
The fixtures (``promptopt_fakes``, ``promptopt_run``) come from promptopt's pytest plugin.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from promptopt.errors import ModelLoadError
from promptopt.evaluation import evaluate
from promptopt.testing.contracts import check_backend
from promptopt.testing.fakes import ListTask
from promptopt.types import Prompt

from promptopt_example_backend.backend import NgramBackend
from promptopt_example_backend.ngram import CharNgram, documents


def test_keeps_the_backend_contract(tmp_path: Path) -> None:
    check_backend(NgramBackend(None))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("### User:\nhello\n### Assistant:\nhello to you\n\nanother document\n")
    check_backend(
        NgramBackend(str(corpus), NgramBackend.Options(order=3, template="Q: {user}\nA:"))
    )


def test_probabilities_sum_to_one_and_follow_the_corpus() -> None:
    model = CharNgram.train(["abcabc", "abd"], order=3)
    for history in (b"", b"ab", b"zz"):
        assert math.isclose(sum(model.distribution(history)), 1.0)
    assert model.logprob(b"ab", b"c") > model.logprob(b"ab", b"x")
    assert model.logprob(b"ab", b"") == 0.0
    assert documents("one\n\n\ntwo\nlines\n") == ["one", "two\nlines"]


def test_the_model_is_its_corpus(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("first corpus\n")
    backend = NgramBackend(str(corpus))
    before = NgramBackend.identify(str(corpus), backend.options)
    corpus.write_text("second corpus\n")
    assert NgramBackend.identify(str(corpus), backend.options) != before
    assert NgramBackend(str(corpus)).fingerprint() != backend.fingerprint()
    with pytest.raises(ModelLoadError, match="cannot read the ngram corpus"):
        NgramBackend(str(tmp_path / "missing.txt"))


def test_evaluates_a_task() -> None:
    task = ListTask()
    report = evaluate(
        NgramBackend(None),
        task,
        Prompt("Let's think step by step."),
        task.examples("test"),
        scoring="logprob",
        max_new_tokens=64,
    )
    assert report.n == 3 and 0.0 <= report.accuracy <= 1.0


def test_a_whole_run_on_it(promptopt_fakes, promptopt_run) -> None:
    # the installed entry point registers ngram; the fake method only uses the contract
    outcome = promptopt_run("fake", task="fake/yes-no", backend="ngram", steps=2)
    assert outcome.result["backend"] == "ngram" and outcome.result["model"] == "builtin"
    assert outcome.result["compute"]["models"]["task"]["generated_tokens"] > 0
