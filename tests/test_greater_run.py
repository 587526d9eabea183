"""The ``greater`` plugin as a whole: registration, option routing, repeatable and resumable
short runs of its components, reference mode, and the final choice on the dev split."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from promptopt.testing.fakes import ListTask

pytest.importorskip("torch")

OPTIONS = {"max_new_tokens": 6, "topk": 12, "subset": 2, "topq": 4}


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


def test_method_defaults_reach_a_component_that_declares_them():
    from promptopt_greater.loss import GreaterLossExtractor
    from promptopt_greater.method import GreaterMethod
    from promptopt_greater.proposer import GreaterProposer
    from promptopt_greater.reasoner import GreaterReasoner
    from promptopt_greater.selector import GreaterSelector

    owners = [
        GreaterMethod,
        GreaterReasoner,
        GreaterProposer,
        GreaterLossExtractor,
        GreaterSelector,
    ]
    fields = set().union(*(cls.Options.model_fields for cls in owners))
    task_owned = {"train_size", "dev_size"}
    assert set(GreaterMethod.defaults) - task_owned <= fields
    assert GreaterMethod.defaults["topk"] == 40 and GreaterMethod.defaults["temperature"] == 0.2


@pytest.fixture(scope="module")
def setup(tiny_model_dir: Path):
    from promptopt_greater.method import GreaterMethod
    from promptopt_hf.backend import HFBackend

    backend = HFBackend(str(tiny_model_dir), HFBackend.Options())
    task = ListTask()
    return backend, task, GreaterMethod().initial_prompt(task, backend)


def test_initial_prompt_is_the_reference_instruction_after_use(setup):
    backend, _, prompt = setup
    assert prompt.text == (
        "Use proper logical reasoning and think step by step."
        " Finally give the actual correct answer."
    )
    assert prompt.prefix == "Use" and prompt.position == 0
    assert prompt.text == "Use" + backend.decode(prompt.tokens)


def run(setup, steps: int, seed: int, **options):
    from promptopt_greater.harness import GreaterComponents, run_steps

    backend, task, prompt = setup
    comps = GreaterComponents.build({**OPTIONS, **options})
    final, results = run_steps(task, backend, comps, prompt, steps, seed=seed)
    return final, results, comps


def test_same_seed_gives_the_same_prompt_and_edits_advance(setup):
    first, results, _ = run(setup, 2, seed=4)
    second, again, _ = run(setup, 2, seed=4)
    assert first == second
    assert [r.selection.loss for r in results] == [r.selection.loss for r in again]
    assert [r.selection.prompt.position for r in results] == [1, 2]
    assert all(len(r.candidates) >= 6 for r in results)
    assert {"proposal", "gradient", "evaluation", "reasoning"} <= set(results[0].timings)


def test_resumed_run_ends_with_the_same_prompt(setup):
    from promptopt_greater.harness import GreaterComponents, run_steps

    backend, task, _ = setup
    whole, _, _ = run(setup, 3, seed=2)
    middle, _, comps = run(setup, 1, seed=2)
    state = json.loads(json.dumps(comps.state_dict()))
    resumed = GreaterComponents.build(OPTIONS)
    resumed.load_state_dict(state)
    end, _ = run_steps(task, backend, resumed, middle, 2, seed=2, start=1)
    assert end == whole
    assert resumed.selector.best_prompts()[0].loss == min(
        k.loss for k in resumed.selector.best_prompts()
    )


def test_reference_mode_chooses_the_same_tokens(setup):
    fast, fast_results, _ = run(setup, 2, seed=6)
    slow, slow_results, _ = run(setup, 2, seed=6, reference_mode=True)
    assert fast.tokens == slow.tokens
    for a, b in zip(fast_results, slow_results, strict=True):
        assert [c.label for c in a.candidates] == [c.label for c in b.candidates]
        assert a.selection.loss == pytest.approx(b.selection.loss, abs=1e-5)


def test_finalize_chooses_among_kept_prompts_on_the_dev_split(setup):
    from promptopt_greater.harness import step_context
    from promptopt_greater.method import GreaterMethod

    backend, task, initial = setup
    _final, _, comps = run(setup, 2, seed=1)
    ctx = step_context(2, task, backend, comps, seed=1)
    result = GreaterMethod().finalize(ctx, initial, comps.selector)
    kept = comps.selector.best_prompts()
    assert result["initial_prompt"] == initial.text
    assert result["best_prompt"] in {k.prompt.text for k in kept}
    assert result["dev_size"] == len(task.examples("dev"))
    accuracies = [row["dev_accuracy"] for row in result["kept_prompts"]]
    assert result["dev_accuracy_final"] == max(accuracies)
    assert 0.0 <= result["dev_accuracy_initial"] <= 1.0
    assert {row["text"] for row in result["kept_prompts"]} == {k.prompt.text for k in kept}


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


def test_gradient_runs_in_eval_mode_with_frozen_weights_and_restores_them(setup):
    from promptopt_greater.harness import GreaterComponents, step_context

    backend, task, prompt = setup
    model = backend.model
    modes: list[bool] = []
    handle = model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    model.train()
    try:
        comps = GreaterComponents.build(OPTIONS)
        ctx = step_context(0, task, backend, comps)
        chains = comps.reasoner.reason(ctx, [prompt], ctx.train)[0]
        candidates = comps.proposer.propose(ctx, prompt, chains)
        weights = [p for p in model.parameters()]
        frozen = [p.requires_grad for p in weights]
        model.train()
        modes.clear()
        comps.loss_extractor.score_candidates(ctx, prompt, candidates, chains)
        assert modes and not any(modes)  # every gradient forward ran in eval mode
        assert model.training  # restored
        assert [p.requires_grad for p in weights] == frozen
        assert all(p.grad is None for p in weights)
    finally:
        handle.remove()
        model.eval()
