"""GReaTer's selection: shortlist, exact check, position sweep and growth, kept prompts, stops."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from promptopt_greater.selector import pick_lowest, shortlist

from promptopt.testing.fakes import ListTask
from promptopt.types import Candidate

pytest.importorskip("torch")


def test_shortlist_takes_the_most_negative_scores_first():
    assert shortlist([0.3, -0.5, 0.1, -0.2, -0.5], 3) == [1, 4, 3]
    assert shortlist([1.0], 3) == [0]


def test_pick_lowest_takes_the_minimum_and_ties_go_to_the_later_one():
    assert pick_lowest([0.5, 0.2, 0.4]) == 1
    assert pick_lowest([0.2, 0.5, 0.2]) == 2


@pytest.fixture(scope="module")
def setup(tiny_model_dir: Path):
    from promptopt_greater.method import GreaterMethod
    from promptopt_greater.whitebox import white_box
    from promptopt_hf.backend import HFBackend

    backend = HFBackend(str(tiny_model_dir), HFBackend.Options())
    task = ListTask()
    prompt = GreaterMethod().initial_prompt(task, backend)
    return backend, task, prompt, white_box(backend)


def test_position_moves_wraps_after_a_period_and_grows_otherwise(setup):
    from promptopt_greater.layout import make_prompt
    from promptopt_greater.selector import next_position

    _, _, prompt, wb = setup
    assert prompt.tokens is not None
    n = len(prompt.tokens)
    moved, how = next_position(wb, replace(prompt, position=3), "_")
    assert (moved.position, how, moved.tokens) == (4, "next", prompt.tokens)
    assert wb.decode([prompt.tokens[-1]]) == "."
    wrapped, how = next_position(wb, replace(prompt, position=n - 1), "_")
    assert (wrapped.position, how, wrapped.tokens) == (0, "wrap", prompt.tokens)
    word = wb.encode(" answer")
    assert len(word) == 1
    open_end = make_prompt(wb, prompt.prefix, [*prompt.tokens[:-1], word[0]], n - 1)
    grown, how = next_position(wb, open_end, "_")
    assert grown.tokens is not None
    assert how == "grow" and grown.position == n and len(grown.tokens) == n + 1
    assert grown.tokens[:n] == open_end.tokens
    assert grown.text == open_end.text + "_"  # the reference's filler


def candidates_for(wb, prompt, position, tokens):
    from promptopt_greater.layout import with_token

    return [
        Candidate(with_token(prompt, wb, position, t), wb.decode([t]), {"token_id": t})
        for t in tokens
    ]


def selection_setup(setup, registry, **options):
    from promptopt.testing.steps import step_context_for

    backend = setup[0]
    return step_context_for(
        "greater",
        task="fake/yes-no",
        backend=backend,
        registry=registry,
        seed=1,
        max_new_tokens=6,
        **options,
    )


def test_select_evaluates_the_shortlist_and_keeps_the_lowest_loss(setup, fake_registry):
    _backend, _task, prompt, wb = setup
    comps, ctx = selection_setup(setup, fake_registry)
    position = 2
    prompt = replace(prompt, position=position)
    tokens = [prompt.tokens[position], *wb.encode(" think the true")]
    cands = candidates_for(wb, prompt, position, tokens)
    scores = [0.5, -0.9, 0.1, -0.3]  # shortlist: 1, 3, 2
    selection = comps.selector.select(ctx, prompt, cands, scores)
    evaluated = selection.evaluated
    assert [e.prompt.tokens for e in evaluated] == [cands[i].prompt.tokens for i in (1, 3, 2)]
    # each evaluated loss equals an independent single-prompt evaluation
    fresh, fresh_ctx = selection_setup(setup, fake_registry)
    for item in evaluated:
        (alone,) = fresh.loss_extractor.evaluate(fresh_ctx, [item.prompt])
        assert alone.loss == pytest.approx(item.loss, abs=1e-6)
        assert alone.error_rate == item.error_rate
    best = pick_lowest([e.loss for e in evaluated])
    assert selection.loss == evaluated[best].loss
    assert selection.prompt.tokens == evaluated[best].prompt.tokens
    assert selection.prompt.position == position + 1
    assert not selection.stop
    assert ctx.notes["shortlist"] == [cands[i].label for i in (1, 3, 2)]
    assert ctx.notes["move"] == "next" and ctx.notes["forced_period"] is False


def test_evaluate_loss_is_error_rate_plus_weighted_prompt_nll(setup, fake_registry):
    _backend, _task, prompt, _wb = setup
    comps, ctx = selection_setup(setup, fake_registry, eval_fluency_weight=0.5)
    (result,) = comps.loss_extractor.evaluate(ctx, [prompt])
    assert 0.0 <= result.error_rate <= 1.0
    expected = result.error_rate + 0.5 * result.details["prompt_nll"]
    assert result.loss == pytest.approx(expected)
    assert result.details["prompt_nll"] > 0


def test_low_loss_starts_a_new_sweep_and_patience_stops(setup, fake_registry):
    _backend, _task, prompt, wb = setup
    cands = candidates_for(wb, replace(prompt, position=1), 1, [prompt.tokens[1]])

    comps, ctx = selection_setup(setup, fake_registry, loss_threshold=100.0)
    selection = comps.selector.select(ctx, replace(prompt, position=1), cands, [0.0])
    assert not selection.stop
    assert selection.prompt.position == 0 and ctx.notes["move"] == "new sweep"
    assert comps.selector.state_dict()["sweep"] == 1

    comps, ctx = selection_setup(setup, fake_registry, patience=1)
    comps.selector.load_state_dict(
        {"best_loss": -1.0, "since_improvement": 1, "initial_length": None, "sweep": 0}
    )
    selection = comps.selector.select(ctx, replace(prompt, position=1), cands, [0.0])
    assert selection.stop and "improvement" in selection.reason


def test_a_shortlisted_period_past_half_is_taken_whatever_its_loss(setup, fake_registry):
    """The reference evaluates in gradient order and stops at a "." past half the prompt."""
    _backend, _task, prompt, wb = setup
    period = wb.encode(".")[0]
    n = len(prompt.tokens)
    late = replace(prompt, position=n - 2)
    others = [t for t in wb.encode(" think the true") if t != period]
    cands = candidates_for(wb, late, n - 2, [others[0], period, others[1]])
    comps, ctx = selection_setup(setup, fake_registry)
    selection = comps.selector.select(ctx, late, cands, [-1.0, -0.5, 0.0])  # order: 0, 1, 2
    assert [e.prompt.tokens for e in selection.evaluated] == [c.prompt.tokens for c in cands[:2]]
    assert selection.prompt.tokens[n - 2] == period and not selection.stop
    assert ctx.notes["forced_period"] is True

    comps, ctx = selection_setup(setup, fake_registry)
    early = replace(prompt, position=2)
    early_cands = candidates_for(wb, early, 2, [period])
    comps.selector.select(ctx, early, early_cands, [0.0])
    assert ctx.notes["forced_period"] is False


def test_selector_state_round_trips(setup, fake_registry):
    from promptopt_greater.selector import GreaterSelector

    _backend, _task, prompt, wb = setup
    comps, ctx = selection_setup(setup, fake_registry, shortlist=3)
    position = 4
    prompt = replace(prompt, position=position)
    tokens = [prompt.tokens[position], *wb.encode(" think the true")]
    cands = candidates_for(wb, prompt, position, tokens)
    comps.selector.select(ctx, prompt, cands, [0.0, -1.0, -2.0, -3.0])
    state = json.loads(json.dumps(comps.selector.state_dict()))
    restored = GreaterSelector()
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    assert state["initial_length"] == len(prompt.tokens) and state["best_loss"] is not None


def test_exact_loss_can_rank_by_the_answer_cross_entropy(setup, fake_registry):
    _backend, _task, prompt, _wb = setup
    comps, ctx = selection_setup(setup, fake_registry, exact_loss="answer_ce")
    (result,) = comps.loss_extractor.evaluate(ctx, [prompt])
    expected = result.details["answer_ce"] + 0.02 * result.details["prompt_nll"]
    assert result.loss == pytest.approx(expected)
    assert result.loss != pytest.approx(result.error_rate + 0.02 * result.details["prompt_nll"])


def test_the_exact_check_in_llama_cpp_equals_the_torch_one(setup, fake_registry):
    """With llama.cpp generating the chains, the exact check scores the answers there (only the
    tokens after the chains' KV) and takes the prompt NLL from the logits of the chains'
    prefill; torch's full forward gives the same verdicts and losses."""
    _backend, _task, prompt, wb = setup
    position = 2
    prompt = replace(prompt, position=position)
    tokens = [prompt.tokens[position], *wb.encode(" think the true")]
    prompts = [c.prompt for c in candidates_for(wb, prompt, position, tokens)]
    fast, ctx = selection_setup(setup, fake_registry, generator="llamacpp")
    slow, slow_ctx = selection_setup(
        setup, fake_registry, generator="llamacpp", exact_check="torch"
    )
    got, want = (
        fast.loss_extractor.evaluate(ctx, prompts),
        slow.loss_extractor.evaluate(slow_ctx, prompts),
    )
    assert [g.error_rate for g in got] == [w.error_rate for w in want]
    rows = len(prompts) * int(got[0].details["examples"])
    assert ctx.notes["prompt_nlls_from_generator"] == rows  # no torch forward for them
    assert "prompt_nlls_from_generator" not in slow_ctx.notes
    for g, w in zip(got, want, strict=True):
        assert g.loss == pytest.approx(w.loss, abs=1e-4)
        assert g.details["answer_ce"] == pytest.approx(w.details["answer_ce"], abs=1e-4)
        assert g.details["prompt_nll"] == pytest.approx(w.details["prompt_nll"], abs=1e-4)
