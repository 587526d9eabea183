"""GReaTer's proposal: token mask, intersections over example subsets, k growth (tiny model)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from promptopt_greater.candidates import intersect_union, ordered_candidates
from promptopt_greater.vocab import allowed_text

from promptopt.testing.fakes import ListTask

torch = pytest.importorskip("torch")


# --------------------------------------------------------------------------- pure logic


def test_intersection_of_one_draw_is_what_all_chosen_examples_share():
    sets = [frozenset({1, 2, 3}), frozenset({2, 3, 4}), frozenset({3, 2, 9})]
    assert intersect_union(sets, random.Random(0), topq=1, subset=3) == {2, 3}


def test_union_over_draws_matches_a_manual_replay():
    sets = [frozenset(random.Random(i).sample(range(30), 12)) for i in range(8)]
    got = intersect_union(sets, random.Random(5), topq=6, subset=3)
    replay, expected = random.Random(5), set[int]()
    for _ in range(6):
        chosen = replay.sample(range(8), 3)
        expected |= sets[chosen[0]] & sets[chosen[1]] & sets[chosen[2]]
    assert got == expected
    assert got != set().union(*sets)  # intersections really drop tokens


def test_subset_larger_than_the_examples_uses_all_of_them():
    sets = [frozenset({1, 2}), frozenset({2, 5})]
    assert intersect_union(sets, random.Random(1), topq=3, subset=5) == {2}


def test_ordered_candidates_put_the_current_token_first_then_ids():
    assert ordered_candidates({9, 4, 7}, 7) == [7, 4, 9]
    assert ordered_candidates({9, 4}, 7) == [7, 4, 9]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (" think", True), ("Finally", True), (".", True), (",", True), (" ", True),
        ("  ", False), (" .", False), ("42", False), ("é", False), ("a1", False), ("", False),
        ("<|im_end|>", False), ("\n", False), ("don't", False),
    ],
)  # fmt: skip
def test_token_mask_keeps_letters_spaces_and_the_three_symbols(text, ok):
    assert allowed_text(text) is ok


# --------------------------------------------------------------------------- on the tiny model


@pytest.fixture(scope="module")
def setup(tiny_model_dir: Path, fake_registry):
    from promptopt_greater.method import GreaterMethod
    from promptopt_hf.backend import HFBackend

    backend = HFBackend(str(tiny_model_dir), HFBackend.Options())
    task = ListTask()
    prompt = GreaterMethod().initial_prompt(task, backend)
    return backend, task, prompt, fake_registry


def test_allowed_ids_exclude_special_tokens(setup):
    from promptopt_greater.vocab import allowed_ids
    from promptopt_greater.whitebox import white_box

    backend = setup[0]
    wb = white_box(backend)
    ids = allowed_ids(wb)
    assert ids and not set(ids) & set(wb.special_ids)
    assert all(allowed_text(backend.tokenizer.decode([i])) for i in ids)
    assert wb.encode(" think")[0] in ids


def propose(setup, position: int, **options):
    from dataclasses import replace

    from promptopt.testing.steps import step_context_for

    backend, _task, prompt, registry = setup
    prompt = replace(prompt, position=position)
    comps, ctx = step_context_for(
        "greater",
        task="fake/yes-no",
        backend=backend,
        registry=registry,
        seed=3,
        population=[prompt],
        max_new_tokens=4,
        **options,
    )
    return prompt, comps.proposer.propose(ctx, prompt), ctx


@pytest.mark.parametrize("position", [0, 3])
def test_candidates_are_allowed_round_trip_and_never_repeat(setup, position):
    from promptopt_greater.layout import round_trips
    from promptopt_greater.whitebox import white_box

    prompt, candidates, _ = propose(setup, position)
    wb = white_box(setup[0])
    current = prompt.tokens[position]
    previous = prompt.tokens[position - 1] if position else wb.encode(prompt.prefix)[-1]
    ids = [c.meta["token_id"] for c in candidates]
    assert ids[0] == current and candidates[0].meta["current"]
    assert len(set(ids)) == len(ids) >= 6
    assert previous not in ids
    for cand in candidates:
        assert cand.prompt.tokens[position] == cand.meta["token_id"]
        assert cand.prompt.tokens[:position] == prompt.tokens[:position]
        assert cand.prompt.text == prompt.prefix + wb.decode(cand.prompt.tokens)
        assert round_trips(wb, prompt.prefix, cand.prompt.tokens)
        if cand.meta["token_id"] != current:
            assert allowed_text(cand.label)


def test_candidate_set_equals_an_independent_computation(setup):
    """Plain per-example forwards (no cache, no batching), the same mask and the same draws."""
    from promptopt_greater.layout import build_context, round_trips
    from promptopt_greater.vocab import allowed_mask
    from promptopt_greater.whitebox import white_box

    position = 2
    prompt, candidates, ctx = propose(setup, position, topk=8, topq=3, subset=2, min_candidates=1)
    assert ctx.notes["proposal_k"] == 8  # no growth: one round of draws
    backend, task = setup[0], setup[1]
    wb = white_box(backend)
    mask = allowed_mask(wb)
    mask[prompt.tokens[position - 1]] = False
    sets = []
    for example in task.examples("train"):
        context = build_context(wb, task, example, prompt)
        ids = torch.tensor([[*context.head, *context.prompt[:position]]])
        with torch.no_grad():
            logits = backend.model(input_ids=ids).logits[0, -1]
        logits = logits.masked_fill(~mask, float("-inf"))
        sets.append(frozenset(torch.topk(logits, 8).indices.tolist()))
    union = intersect_union(sets, random.Random("promptopt:3:0"), topq=3, subset=2)

    def keeps(t: int) -> bool:
        trial = list(prompt.tokens)
        trial[position] = t
        return round_trips(wb, prompt.prefix, trial)

    expected = {t for t in union if keeps(t)} | {prompt.tokens[position]}
    assert {c.meta["token_id"] for c in candidates} == expected


def test_k_grows_until_enough_candidates(setup):
    _, candidates, ctx = propose(setup, 1, topk=2, topq=2, subset=4, min_candidates=12)
    assert ctx.notes["proposal_k"] > 2
    assert len(candidates) >= 12


def test_reference_mode_proposes_the_same_candidates(setup):
    _, fast, _ = propose(setup, 3)
    _, slow, _ = propose(setup, 3, reference_mode=True)
    assert [c.meta["token_id"] for c in fast] == [c.meta["token_id"] for c in slow]
