"""EvoPrompt's components against the testing kit's contracts, its parsing and guard against
the authors' ``get_final_prompt``, its templates against the authors' placeholders, and
``promptopt study`` running both methods like any other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from promptopt_evoprompt.loss import DevLossExtractor
from promptopt_evoprompt.parsing import final_prompt, parse
from promptopt_evoprompt.proposer import DeProposer, GaProposer
from promptopt_evoprompt.selector import DeSelector, GaSelector
from promptopt_evoprompt.templates import (
    de_template,
    fill,
    ga_template,
    manual_prompts,
    paraphrase_template,
)

from promptopt.history import History
from promptopt.testing.contracts import check_loss_extractor, check_proposer, check_selector
from promptopt.testing.fakes import fake_context
from promptopt.types import Candidate, Prompt

POPULATION = [Prompt(t, separator="\n") for t in manual_prompts()[:5]]


def context(step: int) -> Any:
    return lambda: fake_context(population=POPULATION, step=step, seed=4)


@pytest.mark.parametrize("step", [0, 1])
@pytest.mark.parametrize("cls", [GaProposer, DeProposer])
def test_the_proposers_keep_the_contract(cls: Any, step: int) -> None:
    for member in POPULATION[:2]:
        check_proposer(cls, prompt=member, context=context(step)(), options={"popsize": 4})


@pytest.mark.parametrize("step", [0, 1])
@pytest.mark.parametrize("cls", [GaSelector, DeSelector])
def test_the_selectors_keep_the_contract(cls: Any, step: int) -> None:
    candidates = [
        Candidate(Prompt("Work through it one step at a time.", separator="\n"), "child",
                  {"member": 0, "parent": 0}),
    ]  # fmt: skip
    check_selector(
        cls, prompt=POPULATION[0], candidates=candidates, scores=[0.5], context=context(step)()
    )


def test_the_loss_extractor_keeps_the_contract(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    check_loss_extractor(DevLossExtractor, options={"max_new_tokens": 8})


def test_final_prompt_is_the_authors_get_final_prompt() -> None:
    assert final_prompt("1. Crossover Prompt: x\n2. <prompt>Be exact.</prompt> more") == "Be exact."
    # the last <prompt> wins (the template's demonstration may be echoed first)
    assert final_prompt("<prompt>Demo.</prompt>\n<prompt> Mine. </prompt>") == "Mine."
    assert final_prompt("<prompt>Unclosed prompt text") == "Unclosed prompt text"
    assert final_prompt('"Quoted prompt."') == "Quoted prompt."
    assert final_prompt("No tag at all.") == "No tag at all."


@pytest.mark.parametrize(
    ("output", "tagged", "expected"),
    [
        ("2. <prompt>Check every turn and step.</prompt>", True, "Check every turn and step."),
        ("2. <prompt>Check every\nturn.</prompt>", True, "Check every turn."),
        ("<prompt>Ok.</prompt>", True, "1 words, under the minimum of 3"),
        ("<prompt>" + "word " * 151 + "</prompt>", True, "151 words, over the limit of 150"),
        ("1. Crossover Prompt: A and B\n2. <prompt>x y z</prompt>", True, "x y z"),
        ("1. Crossover Prompt: A and B\n2. Mutate", True, "no <prompt> tag"),
        ("<prompt>Use <prompt1> here.</prompt>", True, "leftover template text '<prompt1>'"),
        ("<prompt>Prompt 3: Think about it again.</prompt>", True, "leftover template text"),
        ("Think it through step by step.", False, "Think it through step by step."),
        ("Input: Let's think.\nOutput: Let us think.", False, "leftover template text"),
    ],
)
def test_the_guard(output: str, tagged: bool, expected: str) -> None:
    parsed = parse(output, tagged=tagged, min_words=3, max_words=150)
    if parsed.text is not None:
        assert parsed.text == expected and parsed.reason == ""
    else:
        assert parsed.reason.startswith(expected)


def test_without_required_tags_the_whole_output_is_screened_as_the_authors_take_it() -> None:
    loose = {"tagged": True, "min_words": 3, "max_words": 150, "require_tags": False}
    assert parse("Think about each turn.", **loose).text == "Think about each turn."
    assert parse("1. Crossover Prompt: A and B", **loose).reason == (
        "leftover template text 'Crossover Prompt:'"
    )


def test_the_templates_are_the_authors() -> None:
    ga = ga_template()
    assert ga.startswith(
        "Please follow the instruction step-by-step to generate a better prompt.  \n"
    )
    assert ga.endswith(
        "Prompt 1: <prompt1>\nPrompt 2: <prompt2>\n2. Mutate the prompt generated in Step 1 and "
        "generate a final prompt bracketed with <prompt> and </prompt>.\n\n1. "
    )
    de = de_template("v1")
    assert de.endswith(
        "Prompt 3: <prompt3>\n4. Crossover the prompt in the step3 with the following basic prompt "
        "and generate a final prompt bracketed with <prompt> and </prompt>:\nBasic Prompt: "
        "<prompt0>\n\n1. "
    )
    assert "<prompt3>" not in de_template("v2") and "<prompt0>" in de_template("v2")
    assert "Randomly mutate Prompt 1 and Prompt 2" in de_template("v3")
    assert paraphrase_template() == (
        "Generate a variation of the following instruction while keeping the semantic meaning."
        "\nInput:<input>\nOutput:"
    )
    prompts = manual_prompts()
    assert len(prompts) == 20 and prompts[0] == "Let's think step by step."
    assert (
        prompts[1]
        == "Let’s work this out in a step by step way to be sure we have the right answer."
    )
    # filled in one pass: a prompt that spells a placeholder stays as written
    filled = fill(ga, {"<prompt1>": "Use <prompt2> literally.", "<prompt2>": "Be brief."})
    assert "Prompt 1: Use <prompt2> literally.\nPrompt 2: Be brief.\n" in filled


def test_the_history_records_nothing_twice_in_a_selection() -> None:
    """A candidate already in the history is not evaluated again by the selector."""
    ctx = fake_context(population=POPULATION[:4], step=1, history=History())
    ctx.history.record(ctx.loss_extractor.evaluate(ctx, POPULATION[:4], split="dev"), step=-1)
    repeat = Candidate(POPULATION[1], "repeat", {"member": 0})
    new = Candidate(Prompt("Count each turn.", separator="\n"), "new", {"member": 1})
    earlier = ctx.history.lookup(POPULATION[1], split="dev")
    assert earlier is not None
    scores = [earlier.loss, 0.0]
    selection = GaSelector(GaSelector.Options(popsize=4)).select(
        ctx, POPULATION[0], [repeat, new], scores
    )
    assert [e.prompt.text for e in selection.evaluated] == ["Count each turn."]
    assert selection.prompt.text == "Count each turn."  # loss 0: the best of the next population
    assert len(selection.population) == 4


FAKES = "from promptopt.testing.fakes import *  # noqa: F403\n"


def test_promptopt_study_runs_both_methods(tmp_path: Path) -> None:
    """``promptopt study`` with evoprompt-ga and evoprompt-de on the fake model and task: no
    special case, a report for both."""
    plugin = tmp_path / "fakes_plugin.py"
    plugin.write_text(FAKES)
    out = tmp_path / "study"
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"), "PROMPTOPT_PROGRESS": "0"}
    command = [
        sys.executable, "-m", "promptopt", "study", "--methods", "evoprompt-ga,evoprompt-de",
        "--tasks", "fake/yes-no", "--backend", "fake", "--seeds", "0", "-o", "steps=2",
        "-o", "popsize=4", "-o", "manual_count=4", "-o", "max_new_tokens=8",
        "--plugin", str(plugin), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert {run["method"] for run in report["runs"]} == {"evoprompt-ga", "evoprompt-de"}
    for method in ("evoprompt-ga", "evoprompt-de"):
        (result_file,) = (out / "runs" / method).rglob("result.json")
        result = json.loads(result_file.read_text())
        assert result["method"] == method and result["steps_run"] == 2
        assert result["prompt_separator"] == "\n"
