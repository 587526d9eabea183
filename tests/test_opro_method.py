"""OPRO through the real loop: a scripted optimizer model (known outputs, malformed ones
included) and the fake task model drive ``promptopt run opro``; the meta-prompt against the
reference's text, the guards, the selection and the history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from promptopt_opro.loss import OproLossExtractor
from promptopt_opro.metaprompt import Scored, bucketize, render, shown_pairs
from promptopt_opro.method import INITIAL_PROMPT, OproMethod
from promptopt_opro.parsing import extract, rejection
from promptopt_opro.proposer import OproProposer
from promptopt_opro.selector import OproSelector
from scripted_optimizer import ScriptedOptimizer, plugin, scripted

from promptopt.testing.contracts import (
    check_loss_extractor,
    check_method,
    check_proposer,
    check_selector,
)
from promptopt.types import Example, Prompt

RUN = {"task": "fake/yes-no", "backend": "fake", "optimizer_backend": "scripted-optimizer"}


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
    check_loss_extractor(OproLossExtractor, prompt=text, options={"max_new_tokens": 8})
    check_proposer(OproProposer, prompt=text, options={"samples": 2})
    check_selector(OproSelector, prompt=text)
    check_method(OproMethod, options={"samples": 2, "max_new_tokens": 8})


def test_the_meta_prompt_is_the_references_with_ascending_bucketized_scores() -> None:
    scored = [Scored("A b.", 0.5, -1), Scored("C d.", 0.125, 0), Scored("E f.", 0.875, 0)]
    shown = shown_pairs(scored, threshold=0.0, max_instructions=2)
    assert [s.text for s in shown] == ["A b.", "E f."]  # the top 2, ascending
    example = Example("1", "Is it? Options:\n(A) yes\n(B) no", "B", ("A", "B"))
    text = render(shown, [example], pos="Q_end")
    assert text == (
        "Your task is to generate the instruction <INS>. Below are some previous instructions "
        "with their scores. The score ranges from 0 to 100.\n"
        "\ntext:\nA b.\nscore:\n50\n\ntext:\nE f.\nscore:\n88\n"
        "\n\nBelow are some problems.\n"
        "\nProblem:\nIs it? Options:\n(A) yes\n(B) no\n<INS>\n\nGround truth answer:\n(B)\n"
        "\n\nGenerate an instruction that is different from all the instructions <INS> above, "
        "and has a higher score than all the instructions <INS> above. The instruction should "
        "begin with <INS> and end with </INS>. The instruction should be concise, effective, "
        "and generally applicable to all problems above."
    )
    assert "\nProblem:\n<INS>\nIs it?" in render(shown, [example], pos="Q_begin")
    begin = render(shown, [example], pos="A_begin")
    assert "\nQ: Is it? Options:\n(A) yes\n(B) no\nA: <Start>" in begin
    assert begin.startswith("Your task is to generate the answer starting sentence <Start>.")
    palm = render(shown, [example], style="palm")
    assert palm.startswith("I have some texts along with their corresponding scores.")
    assert palm.endswith("Write the text in square brackets.")
    assert bucketize(0.625, 100) == 62  # Python's round, as the reference
    assert [s.text for s in shown_pairs(scored, threshold=0.3, max_instructions=20)] == [
        "A b.", "E f."
    ]  # fmt: skip


def test_parsing_and_guards() -> None:
    assert extract("x <INS>**solve** it well.</INS> y", "gpt", "Q_end", require_tags=True).text == (
        "Solve it well."
    )
    assert extract("solve it", "gpt", "Q_end", require_tags=True).reason == (
        "missing <INS> and </INS>"
    )
    assert extract("solve it</INS>", "gpt", "Q_end", require_tags=False).text == "Solve it"
    assert extract("[be careful.] [x]", "palm", "Q_end", require_tags=True).text == "Be careful."
    assert extract("go <Start>First, list.</Start>", "gpt", "A_begin", require_tags=True).text == (
        "First, list."
    )
    assert rejection("Go.", min_words=2) == "too short: 1 word(s), fewer than 2"
    assert rejection("Use <INS> here now.", min_words=2) == "leftover tag '<INS>'"
    assert rejection("Ground truth answer: it is B.", min_words=2).startswith("copies meta-prompt")
    assert rejection("Add 3 and 4 together.", min_words=2, task_name="gsm8k") == (
        "contains numbers (GSM8K)"
    )
    assert rejection("x" * 501 + " y", min_words=2).startswith("too long")
    assert rejection("Take it: x. Take it: x.", min_words=2) == ""  # two-word sentences
    assert rejection("Go on then. Go on then.", min_words=2) == "repeats 'Go on then.'"
    assert rejection("Check each step carefully.", min_words=2) == ""


def checkpoint(path: Path) -> dict[str, Any]:
    return json.loads((path / "checkpoint.json").read_text())


def test_a_run_scores_every_new_instruction_and_leads_with_the_best(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    opt = optimizer(
        queue=(
            "Sure. <INS>Compare the two numbers.</INS>",
            "<INS>Think about each step.</INS>",
            "no tags at all",
            "<INS>Go.</INS>",
            "<INS>compare the two numbers.</INS>",  # a repeat once polished
            "<INS>Use <INS> twice.</INS>",
            "<INS>Read it all.\n\nRead it all.</INS>",
        ),
        pool=("<INS>Read the question twice.</INS>", "<INS>Answer with care, please.</INS>"),
    )
    # the reference's free answer (no prefill): the tags are the model's to write
    out = promptopt_run("opro", **RUN, steps=2, samples=7, max_new_tokens=8, prefill=False)
    first, second = out.steps
    notes = first["notes"]
    assert notes["meta_prompt"] == opt.calls[0]["input"].removeprefix("<user>").removesuffix(
        "</user>"
    )
    assert f"\ntext:\n{INITIAL_PROMPT}\nscore:\n" in notes["meta_prompt"]
    assert [(c["n"], c["temperature"], c["max_new_tokens"]) for c in opt.calls] == [
        (7, 1.0, 512), (7, 1.0, 512)
    ]  # fmt: skip
    assert [(r["output"], r["reason"]) for r in notes["rejected"]] == [
        (2, "missing <INS> and </INS>"),
        (3, "too short: 1 word(s), fewer than 3"),
        (4, "generated before"),
        (5, "leftover tag '<INS>'"),
        (6, "repeats 'Read it all.'"),
    ]
    assert first["candidates"] == ["Compare the two numbers.", "Think about each step."]
    # every candidate is scored on the dev split and recorded with its score
    assert [e["prompt"] for e in first["evaluated"]] == first["candidates"]
    assert all(e["n"] == 3.0 for e in first["evaluated"])
    assert [s["prompt"] for s in notes["scored"]] == first["candidates"]
    history = checkpoint(out.path)["history"]["entries"]
    assert [(e["step"], e["prompt"]["text"]) for e in history[:3]] == [
        (-1, INITIAL_PROMPT), (0, "Compare the two numbers."), (0, "Think about each step.")
    ]  # fmt: skip
    assert all(e["split"] == "dev" for e in history)
    # the lead after each step is the best instruction scored so far (ties: the earlier)
    for step in out.steps:
        upto = [e for e in history if e["step"] <= step["step"]]
        best = min(upto, key=lambda e: e["loss"])
        assert step["chosen_prompt"] == best["prompt"]["text"]
        assert step["loss"] == best["loss"]
    # the second meta-prompt shows every scored instruction, ascending by score
    shown = second["notes"]["shown"]
    assert {s["text"] for s in shown} == {e["prompt"]["text"] for e in history[:3]}
    assert [s["accuracy"] for s in shown] == sorted(s["accuracy"] for s in shown)
    result = out.result
    chosen = min(history, key=lambda e: e["loss"])["prompt"]["text"]
    assert result["candidate_prompt"] == chosen  # the method's choice
    assert result["best_prompt"] == (chosen if result["accepted"] else result["initial_prompt"])
    assert result["instruction_pos"] == "Q_end" and result["prompt_separator"] == "\n"
    assert result["instructions_scored"] == len({e["prompt"]["text"] for e in history})


def test_no_valid_output_keeps_the_best_and_adds_nothing(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    optimizer()  # every output is "" (no tags)
    out = promptopt_run("opro", **RUN, steps=1, samples=3, max_new_tokens=8)
    (step,) = out.steps
    assert step["candidates"] == [] and step["chosen_prompt"] == INITIAL_PROMPT
    assert step["reason"].startswith("no valid instruction this step")
    assert [e["step"] for e in checkpoint(out.path)["history"]["entries"]] == [-1]
    assert out.result["best_prompt"] == INITIAL_PROMPT


def test_instruction_positions_reach_the_task_model(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any, tmp_path: Path
) -> None:
    from promptopt.evalcache import EvalCache

    optimizer()
    for pos in ("Q_begin", "A_begin"):
        promptopt_run("opro", **RUN, steps=1, samples=1, max_new_tokens=8, instruction_pos=pos)
    inputs = _cached_inputs(EvalCache.default().root)
    assert any(f"<|user|>\n{INITIAL_PROMPT}\n" in text for text in inputs)  # Q_begin
    assert any(f"<|assistant|>\n{INITIAL_PROMPT}" in text for text in inputs)  # A_begin


def _cached_inputs(root: Path) -> list[str]:
    """The model inputs the evaluation cache holds (each entry keeps its key)."""
    keys = [json.loads(p.read_text())["key"] for p in root.rglob("*.json")]
    return [str(k.get("input", k.get("prefix", ""))) for k in keys]


def test_prefill_opens_the_answer_with_the_tag_and_stops_at_the_end_tag(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    opt = optimizer(
        queue=(
            "Compare the two numbers carefully.</INS> and then some chatter",
            "Think about each step\n\nThen more text",
            "Go.",
        ),
        pool=("Read the question twice.",),
    )
    out = promptopt_run("opro", **RUN, steps=1, samples=3, max_new_tokens=8)
    notes = out.steps[0]["notes"]
    assert opt.calls[0]["input"] == f"<user>{notes['meta_prompt']}</user><INS>"
    assert notes["prefill"] is True
    assert notes["generated"] == [
        "Compare the two numbers carefully.",
        "Think about each step",
        "Go.",
    ]
    assert [r["reason"] for r in notes["rejected"]] == ["too short: 1 word(s), fewer than 3"]
    assert notes["valid_candidates"] == 2
