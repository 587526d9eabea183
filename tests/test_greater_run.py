"""The ``greater`` plugin as a whole, driven through the one real loop: registration, option
routing, the same tokens as before the core redesign, repeatable and resumable runs, reference
mode, the final choice on the dev split, and the reference's sweep rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

OPTIONS = {"max_new_tokens": 6, "topk": 12, "subset": 2, "topq": 4, "min_candidates": 2}

#: What the GReaTer components chose on the tiny model before the core redesign (recorded with
#: the pre-redesign harness at commit 928b965, seed 4, the options above, 4 steps).
BEFORE_REDESIGN = {
    "initial": [443, 396, 593, 437, 341, 295, 431, 320, 424, 320, 16, 584, 285, 596, 268, 547,
                503, 568, 297, 16],
    "chosen_at": [(0, 465), (1, 439), (2, 461), (3, 435)],
    "losses": [1.1343240690231324, 1.132671456336975, 1.1343518137931823, 1.133683547973633],
    "candidates": [
        [" proper", " F", "Theref", " many", "valid", "NUMBER", "are", "neg", " R", " ban"],
        [" l", " F", " M", " q", "nt", "UMBER", " G", " la", " ago", " app", "ertain", " fri"],
        ["ogical", "z", " M", " C", "nt", "ical", " Apri", "To", "bo", " app"],
        [" reason", "I", "z", " cl", " Apri", " many", "NUMBER", "ose", " P", " Z", " app",
         "ogical"],
    ],
}  # fmt: skip


def test_plugin_registers_every_component_without_importing_torch():
    code = (
        "import sys, promptopt_greater.plugin\n"
        "from promptopt.registry import get_registry\n"
        "r = get_registry()\n"
        "kinds = ('method', 'proposer', 'reasoner', 'loss_extractor', 'selector')\n"
        "print([r.get(k, 'greater').__module__ for k in kinds])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules, heavy = out.stdout.strip().splitlines()
    assert modules.count("promptopt_greater.") == 5
    assert heavy == "False False"


def test_method_defaults_are_keyed_by_the_component_that_declares_them():
    from promptopt_greater.method import GreaterMethod

    from promptopt.registry import get_registry

    registry = get_registry()
    for kind, values in GreaterMethod.defaults.items():
        cls = registry.get(kind, getattr(GreaterMethod, kind))
        assert set(values) <= set(cls.Options.model_fields), kind
    assert GreaterMethod.defaults["proposer"]["topk"] == 40
    assert GreaterMethod.defaults["loss_extractor"]["temperature"] == 0.2
    assert GreaterMethod.defaults["selector"]["filler"] == "_"
    assert GreaterMethod.Options().steps == 125
    for key, kinds in GreaterMethod.shared_options.items():
        for kind in kinds:
            cls = registry.get(kind, getattr(GreaterMethod, kind))
            assert key in cls.Options.model_fields, (key, kind)


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path):
    from promptopt_hf.backend import HFBackend

    return HFBackend(str(tiny_model_dir), HFBackend.Options())


def run(promptopt_run, backend, steps: int, seed: int, **options):
    return promptopt_run(
        "greater",
        task="fake/yes-no",
        loaded_backend=backend,
        seed=seed,
        steps=steps,
        **{**OPTIONS, **options},
    )


def test_same_tokens_as_before_the_core_redesign(promptopt_fakes, promptopt_run, backend):
    outcome = run(promptopt_run, backend, 4, seed=4, final_selection=False)
    tokens = list(BEFORE_REDESIGN["initial"])
    assert outcome.result["initial_prompt"] == "Use" + backend.decode(tokens)
    for record, (position, token), loss, labels in zip(
        outcome.steps,
        BEFORE_REDESIGN["chosen_at"],
        BEFORE_REDESIGN["losses"],
        BEFORE_REDESIGN["candidates"],
        strict=True,
    ):
        tokens[position] = token
        assert record["position"] == position
        assert record["candidates"] == labels
        assert record["chosen_prompt"] == "Use" + backend.decode(tokens)
        assert record["loss"] == pytest.approx(loss, abs=1e-5)


def test_same_seed_same_prompt_and_every_step_is_recorded(promptopt_fakes, promptopt_run, backend):
    first = run(promptopt_run, backend, 2, seed=4)
    second = run(promptopt_run, backend, 2, seed=4)
    assert first.result["best_prompt"] == second.result["best_prompt"]
    assert [r["loss"] for r in first.steps] == [r["loss"] for r in second.steps]
    assert [r["position"] for r in first.steps] == [0, 1]
    step = first.steps[0]
    assert len(step["candidates"]) >= 3 and len(step["candidates"]) == len(step["scores"])
    assert {"proposal", "gradient", "reasoning", "exact_check"} <= set(step["timings"])
    notes = step["notes"]
    assert {"proposal_k", "gradient_loss", "shortlist", "chosen", "move"} <= set(notes)
    assert notes["generated_tokens"] > 0
    assert step["compute"]["models"]["task"]["backward_passes"] > 0
    compute = first.result["compute"]
    assert compute["models"]["task"]["generated_tokens"] >= notes["generated_tokens"]
    assert compute["seconds"] > 0 and compute["peak_rss_mb"] > 0


def test_resumed_run_ends_with_the_same_prompt(promptopt_fakes, promptopt_run, backend):
    whole = run(promptopt_run, backend, 3, seed=2)
    cut = run(promptopt_run, backend, 3, seed=2, interrupt_after=1)
    assert len(cut.steps) == 1 and cut.result == {}
    resumed = promptopt_run.resume(cut.path, loaded_backend=backend)
    assert resumed.result["best_prompt"] == whole.result["best_prompt"]
    assert [r["chosen_prompt"] for r in resumed.steps] == [r["chosen_prompt"] for r in whole.steps]
    assert [r["loss"] for r in resumed.steps] == [r["loss"] for r in whole.steps]


def test_reference_mode_chooses_the_same_tokens(promptopt_fakes, promptopt_run, backend):
    fast = run(promptopt_run, backend, 2, seed=6)
    slow = run(promptopt_run, backend, 2, seed=6, reference_mode=True)
    assert json.loads(Path(slow.path, "config.json").read_text())["options"]["reference_mode"]
    for a, b in zip(fast.steps, slow.steps, strict=True):
        assert a["candidates"] == b["candidates"]
        assert a["chosen_prompt"] == b["chosen_prompt"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)


def test_final_choice_is_made_among_the_kept_prompts_on_the_dev_split(
    promptopt_fakes, promptopt_run, backend
):
    outcome = run(promptopt_run, backend, 2, seed=1, selector__keep=3)
    result = outcome.result
    kept = result["kept_prompts"]
    evaluated = {e["prompt"]: e["loss"] for r in outcome.steps for e in r["evaluated"]}
    lowest = sorted(set(evaluated.values()))[:3]
    assert sorted(row["train_loss"] for row in kept) == lowest
    assert result["candidate_prompt"] in {row["text"] for row in kept}  # the method's choice
    assert result["candidate_dev_accuracy"] == max(row["dev_accuracy"] for row in kept)
    assert 0.0 <= result["dev_accuracy_initial"] <= 1.0
    # paired with the initial prompt on the final choice's own dev outcomes (no evaluation
    # again); three dev examples never make a difference significant: the initial prompt stays
    assert result["accept_scores_from"] == "history" and result["accept_dev_n"] == 3
    assert result["accepted"] is False and result["best_prompt"] == result["initial_prompt"]
    assert result["dev_accuracy_final"] == result["dev_accuracy_initial"]
    assert (
        result["best_tokens"]
        == json.loads((outcome.path / "checkpoint.json").read_text())["initial"][0]["tokens"]
    )
    assert result["dev_size"] == 3  # the fake task's dev split


def test_a_period_chosen_mid_prompt_does_not_end_the_run(promptopt_fakes, promptopt_run, backend):
    """The reference takes a shortlisted "." at or past half the prompt whatever its loss, and
    carries on; at the end of the prompt a "." wraps the sweep to position 0."""
    outcome = run(
        promptopt_run,
        backend,
        10,
        seed=3,
        initial_prompt="think step by step. Then answer.",
        shortlist=100,  # every candidate is shortlisted, so the current "." always is
    )
    steps = outcome.steps
    text = backend.decode(backend.encode(" think step by step. Then answer."))
    assert outcome.result["initial_prompt"] == "Use" + text
    forced = [r["step"] for r in steps if r["notes"]["forced_period"]]
    half = len(backend.encode(" think step by step. Then answer.")) / 2
    assert forced and all(steps[i]["position"] >= half for i in forced)
    assert all("." in steps[i]["notes"]["chosen"] for i in forced)
    assert min(forced) < 9  # taken mid-run...
    assert outcome.result["steps_run"] == 10 and not outcome.result["stopped_early"]  # ...no stop
    moves = [r["notes"]["move"] for r in steps]
    assert "wrap" in moves[:-1]
    assert steps[moves.index("wrap") + 1]["position"] == 0  # the next sweep began at position 0


def test_a_low_loss_starts_a_new_sweep_instead_of_stopping(promptopt_fakes, promptopt_run, backend):
    outcome = run(promptopt_run, backend, 3, seed=2, loss_threshold=100.0)
    assert outcome.result["steps_run"] == 3 and not outcome.result["stopped_early"]
    assert [r["notes"]["move"] for r in outcome.steps] == ["new sweep"] * 3
    assert [r["position"] for r in outcome.steps] == [0, 0, 0]
    assert [r["notes"]["sweep"] for r in outcome.steps] == [1, 2, 3]


def test_patience_ends_the_run_and_says_so(promptopt_fakes, promptopt_run, backend):
    # without the fluency term the loss is the error rate, which a random model rarely moves
    outcome = run(promptopt_run, backend, 8, seed=2, patience=1, eval_fluency_weight=0.0)
    result = outcome.result
    losses = [r["loss"] for r in outcome.steps]
    assert result["stopped_early"] and result["steps_run"] < 8
    assert losses[-1] >= min(losses[:-2]) and losses[-2] >= min(losses[:-2])
    assert "no improvement" in result["stop_reason"]
    assert "stopped early" in Path(outcome.path, "run.log").read_text()


def test_batches_halve_on_out_of_memory_and_stay_halved():
    from promptopt_greater.batching import BatchSize, run_batched

    seen: list[int] = []

    def work(chunk):
        seen.append(len(chunk))
        if len(chunk) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [x * 10 for x in chunk]

    batch = BatchSize(8)
    assert run_batched(work, list(range(7)), batch) == [x * 10 for x in range(7)]
    assert batch.size == 2 and seen[:3] == [7, 4, 2]
    with pytest.raises(ValueError, match="boom"):
        run_batched(lambda chunk: (_ for _ in ()).throw(ValueError("boom")), [1], BatchSize(4))


def test_gradient_runs_in_eval_mode_with_frozen_weights_and_restores_them(fake_registry, backend):
    from promptopt.testing.steps import step_context_for

    model = backend.model
    modes: list[bool] = []
    # the gradient pass runs the decoder and the output head (not the causal-LM forward)
    handle = model.get_decoder().register_forward_pre_hook(
        lambda module, args: modes.append(module.training)
    )
    model.train()
    try:
        comps, ctx = step_context_for(
            "greater", task="fake/yes-no", backend=backend, registry=fake_registry, **OPTIONS
        )
        candidates = comps.proposer.propose(ctx, ctx.prompt)
        ctx.chains(ctx.prompt)
        weights = [p for p in model.parameters()]
        frozen = [p.requires_grad for p in weights]
        model.train()
        modes.clear()
        comps.loss_extractor.score_candidates(ctx, ctx.prompt, candidates)
        assert modes and not any(modes)  # every gradient forward ran in eval mode
        assert model.training  # restored
        assert [p.requires_grad for p in weights] == frozen
        assert all(p.grad is None for p in weights)
    finally:
        handle.remove()
        model.eval()
