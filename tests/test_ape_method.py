"""APE through the real loop: a scripted optimizer model (known completions, malformed ones
included) and the fake task model drive ``promptopt run ape``; the templates against the
authors', the guards, the induction and resampling steps, the selection and the history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from promptopt_ape.loss import ApeLossExtractor
from promptopt_ape.method import ApeMethod
from promptopt_ape.parsing import first_line, rejection
from promptopt_ape.proposer import ApeProposer
from promptopt_ape.selector import ApeSelector
from promptopt_ape.templates import forward_query, resample_query
from scripted_optimizer import ScriptedOptimizer, plugin, scripted

from promptopt.testing.contracts import (
    check_loss_extractor,
    check_method,
    check_proposer,
    check_selector,
)
from promptopt.testing.fakes import ListTask
from promptopt.types import Example, Prompt

RUN = {"task": "fake/yes-no", "backend": "fake", "optimizer_backend": "scripted-optimizer"}
SMALL = {"subsamples": 2, "demos": 2, "prompts_per_subsample": 3, "max_new_tokens": 8}


@pytest.fixture
def optimizer(
    promptopt_fakes: Any,
    promptopt_register: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Callable[..., type[ScriptedOptimizer]]:
    """``optimizer(queue, pool)`` registers a scripted optimizer model for this test."""
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))

    def register(queue: tuple[str, ...] = (), pool: tuple[str, ...] = ()) -> Any:
        cls = scripted(queue, pool)
        promptopt_register(plugin(cls), name="scripted-optimizer-plugin")
        return cls

    return register


def test_components_and_method_keep_their_contracts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    text = Prompt("Think step by step.", separator="\n")
    check_proposer(ApeProposer, prompt=text, options={"subsamples": 1, "prompts_per_subsample": 2})
    check_loss_extractor(ApeLossExtractor, prompt=text, options={"max_new_tokens": 8})
    check_selector(ApeSelector, prompt=text)
    check_method(ApeMethod, options=SMALL)


def test_the_templates_are_the_authors() -> None:
    demos = [Example("1", "Is 3 > 2?", "Yes"), Example("2", "Pick:\n(A) x\n(B) y", "B")]
    assert forward_query(demos) == (
        "I gave a friend an instruction. Based on the instruction they produced the following "
        "input-output pairs:\n\nInput: Is 3 > 2?\nOutput: Yes\n\nInput: Pick:\n(A) x\n(B) y\n"
        "Output: (B)\n\nThe instruction was to"
    )
    assert resample_query("compare the numbers.") == (
        "Generate a variation of the following instruction while keeping the semantic meaning."
        "\n\nInput: compare the numbers.\n\nOutput:"
    )


def test_parsing_and_guards() -> None:
    assert first_line('\n  "compare the two numbers."\nInput: x') == "compare the two numbers."
    assert rejection("go", min_words=2, max_words=50) == "too short: 1 word(s), fewer than 2"
    assert rejection("answer the <INS> question", min_words=2, max_words=50) == (
        "leftover tag '<INS>'"
    )
    assert rejection("answer. Output: Yes", min_words=2, max_words=50) == (
        "template text 'Output:'"
    )
    assert rejection("The instruction was to add", min_words=2, max_words=50).startswith(
        "template text"
    )
    assert rejection(" ".join(["w"] * 51), min_words=2, max_words=50).startswith("too long")
    assert rejection("compare the two numbers.", min_words=2, max_words=50) == ""


def checkpoint(path: Path) -> dict[str, Any]:
    return json.loads((path / "checkpoint.json").read_text())


def test_induction_then_resampling_keeps_the_best_and_records_each_step(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    opt = optimizer(
        queue=(
            " compare the two numbers.\nInput: 4 > 1?",  # the first line is the instruction
            " go",
            " answer yes or no after checking.",
            " compare the two numbers.",  # a duplicate
            " say <INS> here",
            " think about which is larger.",
        ),
        pool=("Check which number is larger.", "Decide carefully whether it holds."),
    )
    out = promptopt_run("ape", **RUN, steps=2, keep=0.5, **SMALL)
    first, second = out.steps
    notes = first["notes"]
    assert notes["stage"] == "induction" and second["notes"]["stage"] == "resample"
    # two induction queries of two demonstrations each, three samples at 0.9 / 0.9, 50 tokens
    assert [(c["n"], c["temperature"], c["top_p"], c["max_new_tokens"]) for c in opt.calls[:2]] == [
        (3, 0.9, 0.9, 50), (3, 0.9, 0.9, 50)
    ]  # fmt: skip
    assert opt.calls[0]["input"].endswith("The instruction was to</user>The instruction was to")
    assert len(notes["meta_prompts"]) == 2
    train_ids = {e.id for e in ListTask.data["train"]}
    assert all(set(o["demos"]) <= train_ids and len(o["demos"]) == 2
               for o in notes["optimizer_outputs"])  # fmt: skip
    assert [(r["output"], r["reason"]) for r in notes["rejected"]] == [
        (1, "too short: 1 word(s), fewer than 2"),
        (3, "duplicate"),
        (4, "leftover tag '<INS>'"),
    ]
    induced = ["compare the two numbers.", "answer yes or no after checking.",
               "think about which is larger."]  # fmt: skip
    assert first["candidates"] == induced
    assert [e["prompt"] for e in first["evaluated"]] == induced
    assert all(e["n"] == 3.0 for e in first["evaluated"])
    # the best half (rounded up) is kept, best first, and leads
    order = sorted(range(3), key=lambda i: (first["scores"][i], i))
    kept = [induced[i] for i in order[:2]]
    assert first["notes"]["kept"] == kept and first["chosen_prompt"] == kept[0]
    # step 1 resamples each kept instruction: ceil(6 / 2) = 3 variations each
    resample = opt.calls[2:]
    assert [c["n"] for c in resample] == [3, 3]
    assert [c["input"] for c in resample] == [
        f"<user>{resample_query(text)}</user>" for text in kept
    ]
    assert second["notes"]["meta_prompts"] == [c["input"] for c in resample]
    assert [s["prompt"] for s in second["notes"]["scored"]] == second["candidates"]
    history = checkpoint(out.path)["history"]["entries"]
    assert [e["step"] for e in history] == [0] * 3 + [1] * len(second["evaluated"])
    assert all(e["split"] == "dev" for e in history)
    best = min(history, key=lambda e: e["loss"])
    assert out.result["candidate_prompt"] == best["prompt"]["text"]  # the method's choice
    kept = best["prompt"]["text"] if out.result["accepted"] else out.result["initial_prompt"]
    assert out.result["best_prompt"] == kept  # after the do-no-harm rule
    chosen_accuracy = out.result.get("candidate_dev_accuracy", out.result["dev_accuracy_final"])
    assert chosen_accuracy == pytest.approx(1 - best["loss"])
    assert out.result["prompt_separator"] == "\n" and out.result["initial_prompt"] == ""


def test_a_step_without_valid_instructions_keeps_its_population(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    optimizer()  # every completion is ""
    out = promptopt_run("ape", **RUN, steps=1, **SMALL)
    (step,) = out.steps
    assert step["candidates"] == [] and step["chosen_prompt"] == ""
    assert step["reason"] == "no valid instruction this step: the population stays"
    assert checkpoint(out.path)["history"]["entries"] == []
    assert out.result["best_prompt"] == ""
