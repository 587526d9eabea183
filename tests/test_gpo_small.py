"""``gpo-small`` and the small-model guards through the real loop (scripted optimizer, fake task
model): the prefilled answer, the degenerate-candidate guards counted per step, the paraphrase
fallback after steps without a valid candidate, and T from the run's step count."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from promptopt_gpo.paraphrase import INSTRUCTION
from promptopt_gpo.testing import ScriptedOptimizer, optimizer_plugin, scripted

INITIAL = "Let's think step by step."
RUN = {"task": "fake/yes-no", "backend": "fake", "optimizer_backend": "gpo-scripted"}


@pytest.fixture
def optimizer(
    promptopt_fakes: Any,
    promptopt_register: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Callable[..., type[ScriptedOptimizer]]:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))

    def register(script: dict[str, list[str]] | None = None, pool: tuple[str, ...] = ()) -> Any:
        cls = scripted(script, pool)
        promptopt_register(optimizer_plugin(cls), name="gpo-scripted-optimizer")
        return cls

    return register


def test_gpo_small_prefills_the_answer_and_counts_every_rejection(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    opt = optimizer(
        {
            INITIAL: [
                "Compare the two numbers carefully.<END> trailing chatter",
                "Be brief.",  # two words
                "Let's think step by step. Yes",  # the current prompt plus a label
                "Count twice </START> then answer.",  # a leftover tag
                "Input:\nIs 3 greater than 2?\nOutput:\nYes",  # a copied exemplar block
                "Read the question carefully, then check each step before answering.",
                "Compare the two numbers carefully.",
            ]
        }
    )
    out = promptopt_run("gpo-small", **RUN, steps=1, samples=7, retries=0)
    (step,) = out.steps
    notes = step["notes"]
    call = opt.calls[0]
    assert call["meta_prompt"].endswith("<START>")  # the assistant turn starts with the tag
    assert notes["prefill"] == "<START>" and notes["meta_prompt"] + "<START>" == call["meta_prompt"]
    assert notes["meta_prompt"].startswith("Write an instruction that helps a model")
    assert call["max_new_tokens"] == 96 and call["temperature"] == 1.0
    assert notes["optimizer_outputs"][0]["text"] == (
        "Compare the two numbers carefully."  # the scripted model stopped at <END>
    )
    assert [r["reason"] for r in notes["rejected"]] == [
        "fewer than 3 words",
        "only appends a label to the current prompt",
        "leftover <START>/<END> tag",
        "copies an Input:/Output: block",
        "a substring of the meta-prompt",  # the worked format example, copied
        "repeats output 0 of this step",
    ]
    assert notes["valid_candidates"] == 2 and len(notes["optimizer_outputs"]) == 7
    assert notes["rejections"]["fewer than N words"] == 1 and sum(notes["rejections"].values()) == 6
    assert step["candidates"] == ["Compare the two numbers carefully."]


def test_three_steps_without_a_candidate_bring_a_paraphrase_of_the_best_prompt(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    variation = "Think it through one step at a time."
    opt = optimizer({INITIAL: ["Hi.", "Hi.", "Hi.", f"{variation}<END>"]})
    out = promptopt_run("gpo-small", **RUN, steps=4, samples=1, retries=0)
    assert [s["notes"]["valid_candidates"] for s in out.steps] == [0, 0, 0, 1]
    assert all("paraphrased" not in s["notes"] for s in out.steps[:3])
    fourth = out.steps[3]["notes"]
    assert fourth["paraphrased"] == {"prompt": INITIAL, "steps_without_candidates": 3}
    assert fourth["meta_prompt"].startswith(INSTRUCTION + "\n\nInput: " + INITIAL)
    assert opt.calls[3]["meta_prompt"].endswith("<START>")
    assert out.steps[3]["chosen_prompt"] == variation
    assert "3 steps without a valid candidate" in (out.path / "run.log").read_text()


def test_the_budget_horizon_is_the_runs_step_count(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    optimizer(pool=("Compare both numbers first.", "Look at the larger number first."))
    # scoped to the method only: the proposer still plans T from the run's steps
    out = promptopt_run("gpo", **RUN, method__steps=4, samples=2)
    assert [s["notes"]["T"] for s in out.steps] == [4, 4, 4, 4]
    assert out.steps[0]["notes"]["budget"] == 44  # N_1 of T = 4, not of T = 3 (4 train rows)
    assert out.result["steps_planned"] == 4
