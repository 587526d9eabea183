"""EvoPrompt through the real loop: a scripted optimizer model (it paraphrases, crosses and
mutates from the filled template; malformed outputs first where a test queues them) and the fake
task model drive ``promptopt run evoprompt-ga`` / ``evoprompt-de`` deterministically. The tests
recompute the authors' selection and population update from what the run recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from promptopt_evoprompt.proposer import parent_pool
from promptopt_evoprompt.templates import de_template, fill, ga_template, manual_prompts
from promptopt_evoprompt.testing import ScriptedOptimizer, optimizer_plugin, scripted

from promptopt import hookimpl
from promptopt.components import Task
from promptopt.testing.fakes import ListTask, fake_context
from promptopt.types import Example, Prompt

RUN = {"task": "fake/yes-no-12", "backend": "fake", "optimizer_backend": "evoprompt-scripted"}
SMALL = {"popsize": 4, "manual_count": 6, "max_new_tokens": 8}


def comparisons(split: str, count: int, offset: int) -> list[Example]:
    """Yes/No questions "Is a greater than b?" with their answers."""
    out = []
    for i in range(count):
        a, b = (offset + 7 * i) % 23, (offset + 11 * i + 5) % 19
        out.append(Example(f"{split}-{i}", f"Is {a} greater than {b}?", "Yes" if a > b else "No",
                           ("Yes", "No")))  # fmt: skip
    return out


#: A fake task with a 12-example dev split, so dev accuracies differ between prompts.
TASK = ListTask.with_examples(
    "fake/yes-no-12", comparisons("train", 4, 0), comparisons("dev", 12, 100),
    comparisons("test", 3, 200),
)  # fmt: skip


class TaskPlugin:
    @hookimpl
    def register_tasks(self, register: Callable[[type[Task]], None]) -> None:
        register(TASK)


@pytest.fixture
def optimizer(
    promptopt_fakes: Any,
    promptopt_register: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Callable[..., type[ScriptedOptimizer]]:
    """``optimizer(bad=[...])`` registers a scripted optimizer model for this test (the fakes
    too; the evaluation cache is the test's own)."""
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))

    def register(bad: tuple[str, ...] = ()) -> type[ScriptedOptimizer]:
        cls = scripted(bad)
        promptopt_register(optimizer_plugin(cls), name="evoprompt-scripted-optimizer")
        promptopt_register(TaskPlugin(), name="evoprompt-test-task")
        return cls

    return register


def history(path: Path) -> list[dict[str, Any]]:
    return json.loads((path / "checkpoint.json").read_text())["history"]["entries"]


def dev_accuracy(entries: list[dict[str, Any]]) -> dict[str, float]:
    """Each prompt's dev accuracy, from the run's history."""
    return {e["prompt"]["text"]: 1.0 - e["error_rate"] for e in entries if e["split"] == "dev"}


def best_first(prompts: list[str], acc: dict[str, float]) -> list[str]:
    return sorted(prompts, key=lambda p: -acc[p])  # stable: ties keep their order


def check_initialisation(out: Any, manual: list[str], acc: dict[str, float]) -> None:
    """Step 0: every manual prompt scored on dev before it; the best popsize // 2 paraphrased;
    the population = the best popsize - popsize // 2 manual prompts and the paraphrases."""
    entries = history(out.path)
    start = [e for e in entries if e["step"] == -1]
    assert [e["prompt"]["text"] for e in start] == manual
    assert {e["split"] for e in entries} == {"dev"}
    assert all(e["prompt"]["separator"] == "\n" for e in entries)
    step0 = out.steps[0]
    ranked = best_first(manual, acc)
    filled = step0["notes"]["filled_templates"]
    assert [f["parents"] for f in filled] == [[p] for p in manual if p in ranked[:2]]
    for f in filled:
        assert f["operator"] == "paraphrase"
        assert f["meta_prompt"] == (
            "Generate a variation of the following instruction while keeping the semantic "
            f"meaning.\nInput:{f['parents'][0]}\nOutput:"
        )
    paraphrases = [f["child"] for f in filled]
    assert paraphrases == [f"Carefully: {f['parents'][0]}" for f in filled]
    assert [s["prompt"] for s in step0["notes"]["scored"]] == paraphrases
    assert step0["candidates"] == paraphrases
    population = best_first(ranked[:2] + paraphrases, acc)
    assert [p["prompt"] for p in step0["notes"]["population"]] == population
    assert out.steps[1]["population"] == population
    assert step0["chosen_prompt"] == population[0]


def test_ga_selects_parents_by_the_wheel_and_keeps_the_best_popsize(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    opt = optimizer()
    out = promptopt_run("evoprompt-ga", **RUN, **SMALL, steps=4, seed=3)
    manual = list(manual_prompts()[:6])
    entries = history(out.path)
    acc = dev_accuracy(entries)
    check_initialisation(out, manual, acc)
    # every request: the authors' sampling settings, one sample each
    assert {(c["temperature"], c["top_p"], c["max_new_tokens"]) for c in opt.calls} == {
        (0.5, 1.0, 1000)
    }
    for before, step in zip(out.steps[1:], [*out.steps[2:], None], strict=True):
        population = before["population"]
        notes = before["notes"]
        pool = [population[i] for i in notes["wheel"]]
        assert len(pool) == len(population) == 4
        filled = notes["filled_templates"]
        assert len(filled) == 4  # one child per member
        for f in filled:
            a, b = f["parents"]
            assert a in pool and b in pool
            assert f["meta_prompt"] == fill(ga_template(), {"<prompt1>": a, "<prompt2>": b})
        children = [f["child"] for f in filled]
        assert before["candidates"] == children
        scored = {s["prompt"]: s["dev_accuracy"] for s in notes["scored"]}
        assert scored == {c: acc[c] for c in children}
        # the next population: the best popsize of members and children (members first on ties)
        merged = list(dict.fromkeys(population + children))
        expected = best_first(merged, acc)[:4]
        assert [p["prompt"] for p in notes["population"]] == expected
        assert before["chosen_prompt"] == expected[0]
        if step is not None:
            assert step["population"] == expected
    # the history: each prompt scored once, on dev, when it first appeared
    texts = [e["prompt"]["text"] for e in entries]
    assert len(texts) == len(set(texts))
    for step in out.steps:
        assert {e["prompt"] for e in step["evaluated"]} == set(step["candidates"]) - {
            e["prompt"]["text"] for e in entries if e["step"] < step["step"]
        }
    final = [p["prompt"] for p in out.result["final_population"]]
    assert final == [p["prompt"] for p in out.steps[-1]["notes"]["population"]]
    assert out.result["candidate_prompt"] == final[0]  # the method's choice
    kept = final[0] if out.result["accepted"] else out.result["initial_prompt"]
    assert out.result["best_prompt"] == kept  # after the do-no-harm rule
    chosen_accuracy = out.result.get("candidate_dev_accuracy", out.result["dev_accuracy_final"])
    assert chosen_accuracy == pytest.approx(max(acc[p] for p in final))
    assert out.result["initial_prompt"] == manual[0]
    assert out.result["prompt_separator"] == "\n"
    assert out.result["generations"] == 3


def test_de_uses_donors_and_the_best_and_keeps_a_child_only_when_strictly_better(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    optimizer()
    out = promptopt_run("evoprompt-de", **RUN, **SMALL, steps=4, seed=1)
    manual = list(manual_prompts()[:6])
    acc = dev_accuracy(history(out.path))
    check_initialisation(out, manual, acc)
    replaced_any = False
    for step in out.steps[1:]:
        population = step["population"]
        notes = step["notes"]
        filled = notes["filled_templates"]
        assert [f["member"] for f in filled] == [0, 1, 2, 3]
        best = max(population, key=lambda p: acc[p])  # first of the best at the step's start
        for f in filled:
            member = population[f["member"]]
            a, b, c = f["parents"]
            others = population[: f["member"]] + population[f["member"] + 1 :]
            assert a in others and b in others and a != b
            # Prompt 3: the best so far, updated by this step's strictly better children
            earlier = [g["child"] for g in filled[: f["member"]] if g["child"]]
            for child in earlier:
                if acc[child] > acc[best]:
                    best = child
            assert c == best
            values = {"<prompt0>": member, "<prompt1>": a, "<prompt2>": b, "<prompt3>": c}
            assert f["meta_prompt"] == fill(de_template("v1"), values)
        expected = []
        for f in filled:
            member, child = population[f["member"]], f["child"]
            keep_child = child is not None and acc[child] > acc[member]
            replaced_any |= keep_child
            expected.append(child if keep_child else member)
        assert notes["replaced"] == [i for i, p in enumerate(expected) if p != population[i]]
        assert [p["prompt"] for p in notes["population"]] == best_first(expected, acc)
    final = [p["prompt"] for p in out.result["final_population"]]
    assert out.result["candidate_prompt"] == final[0]  # the method's choice
    kept = final[0] if out.result["accepted"] else out.result["initial_prompt"]
    assert out.result["best_prompt"] == kept  # after the do-no-harm rule
    assert acc[final[0]] == max(acc[p] for p in final)
    assert replaced_any  # the run did exercise a replacement


def test_malformed_outputs_are_rejected_retried_and_recorded(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    bad = (
        "Let us <prompt1> think.",  # template text left over (a paraphrase: no tags needed)
        "Ok.",  # too short
        "Please follow the instruction step-by-step to generate a better prompt.",
    )
    opt = optimizer(bad)
    out = promptopt_run("evoprompt-ga", **RUN, **SMALL, steps=1, retries=2)
    first = out.steps[0]["notes"]["filled_templates"][0]
    reasons = [o["rejected"] for o in first["outputs"]]
    assert reasons[0] == "leftover template text '<prompt1>'"
    assert reasons[1] == "1 words, under the minimum of 3"
    assert reasons[2] == "leftover template text 'Please follow the instruction'"
    assert first["child"] is None  # three attempts, none usable: no paraphrase of this member
    assert len({o["seed"] for o in first["outputs"]}) == 3
    assert out.steps[0]["notes"]["children_rejected"] == 1
    # its place goes to the next-best manual prompt: the population keeps its size
    assert len(out.steps[0]["notes"]["population"]) == 4
    assert len(opt.calls) == 3 + 1


def test_an_evolution_output_without_prompt_tags_is_rejected_and_asked_again(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    bad = (
        "Think about every single step.",  # the two paraphrases of step 0 (no tags needed)
        "Check each turn with care.",
        "1. Crossover Prompt: Think first.\n2. Mutate: Think about it first.",  # no tags
    )
    opt = optimizer(bad)
    out = promptopt_run("evoprompt-ga", **RUN, **SMALL, steps=2)
    paraphrases = [f["child"] for f in out.steps[0]["notes"]["filled_templates"]]
    assert paraphrases == list(bad[:2])
    first = out.steps[1]["notes"]["filled_templates"][0]
    assert [o["rejected"] for o in first["outputs"]] == ["no <prompt> tag", None]
    assert first["child"] == first["outputs"][1]["prompt"] and first["child"]
    assert opt.calls[3]["seed"] != opt.calls[2]["seed"]  # the retry is a new request
    assert len(out.steps[1]["candidates"]) == 4


def test_too_small_a_population_fails_before_any_model_loads(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    from promptopt.errors import PromptoptError

    optimizer()
    with pytest.raises(PromptoptError, match="popsize >= 4"):
        promptopt_run("evoprompt-de", **RUN, popsize=3)
    with pytest.raises(PromptoptError, match="best 3 manual prompts, but 2 are given"):
        promptopt_run("evoprompt-ga", **RUN, popsize=6, manual_count=2)


def test_the_roulette_wheel_draws_members_in_proportion_to_their_dev_score() -> None:
    population = [Prompt(f"Prompt number {i}.") for i in range(4)]
    ctx = fake_context(population=population, step=1)
    drawn = [
        p.text for _ in range(500) for p in parent_pool(ctx, population, [0, 1, 0, 3], "wheel")
    ]
    assert set(drawn) == {"Prompt number 1.", "Prompt number 3."}  # score 0: never a parent
    share = drawn.count("Prompt number 3.") / len(drawn)
    assert 0.72 < share < 0.78  # 3 / (1 + 3)
    # every score 0 (the authors' p = fitness / 0 is undefined): uniform
    flat = [p.text for _ in range(500) for p in parent_pool(ctx, population, [0, 0, 0, 0], "wheel")]
    assert {flat.count(p.text) for p in population} and all(
        0.2 < flat.count(p.text) / len(flat) < 0.3 for p in population
    )
    assert parent_pool(ctx, population, [0, 1, 0, 3], "random") == population
