"""GPO through the real loop: a scripted optimizer model (known outputs, malformed ones included)
and the fake task model drive ``promptopt run gpo`` deterministically."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from promptopt_gpo.selector import best_new
from promptopt_gpo.testing import ScriptedOptimizer, optimizer_plugin, scripted

from promptopt import hookimpl
from promptopt.testing.fakes import ListTask
from promptopt.types import Example

INITIAL = "Let's think step by step."
RUN = {"task": "fake/yes-no", "backend": "fake", "optimizer_backend": "gpo-scripted"}


@pytest.fixture
def optimizer(
    promptopt_fakes: Any,
    promptopt_register: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Callable[..., type[ScriptedOptimizer]]:
    """``optimizer(script=..., pool=...)`` registers a scripted optimizer model for this test
    (the fake task model and task are registered too; the evaluation cache is the test's own)."""
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))

    def register(script: dict[str, list[str]] | None = None, pool: tuple[str, ...] = ()) -> Any:
        cls = scripted(script, pool)
        promptopt_register(optimizer_plugin(cls), name="gpo-scripted-optimizer")
        return cls

    return register


def checkpoint(path: Path) -> dict[str, Any]:
    return json.loads((path / "checkpoint.json").read_text())


def test_a_step_records_its_meta_prompt_outputs_rejections_scores_pick_and_budget(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    too_long = " ".join(["word"] * 105)
    opt = optimizer(
        {
            INITIAL: [
                "Sure! Here is the new prompt: <START>Think about each number.<END>",
                "<START>**Compare** the two numbers.\n<Prompt><END> and more text",
                f"I think <START>{too_long}<END>",
                "no tags at all",
                "<START><Prompt><END>",  # the resampled fourth output: empty after cleaning
            ]
        }
    )
    # the reference's free answer (no prefill): the tags are parsed out of whatever it wrote
    out = promptopt_run("gpo", **RUN, steps=2, samples=4, retries=2, prefill=False)
    first, second = out.steps
    notes = first["notes"]
    assert notes["t"] == 1 and notes["T"] == 2 and notes["budget"] == 30
    assert "You are allowed to change up to 30 words in the current prompt." in notes["meta_prompt"]
    assert "Prompt: Let's think step by step.\nScore: " in notes["meta_prompt"]
    assert [o["text"][:9] for o in notes["optimizer_outputs"]] == [
        "Sure! Her", "<START>**", "I think <", "no tags a", "<START><P",
    ]  # fmt: skip
    assert [(r["output"], r["reason"]) for r in notes["rejected"]] == [
        (2, "105 words, over the limit of 100"),
        (3, "missing <START> and <END>"),
        (4, "empty after cleaning"),
    ]
    assert notes["parsed"] == ["Think about each number.", "Compare the two numbers."]
    assert first["candidates"] == notes["parsed"]
    # the optimizer: one user message, temperature 1.0, 512 tokens; a new seed for the resample
    calls = [(c["current"], c["n"], c["temperature"], c["max_new_tokens"]) for c in opt.calls]
    assert calls[:2] == [(INITIAL, 4, 1.0, 512), (INITIAL, 1, 1.0, 512)]
    assert opt.calls[0]["seed"] != opt.calls[1]["seed"]
    assert opt.calls[0]["meta_prompt"] == notes["meta_prompt"]
    # scores are dev error rates measured on the task model; the pick is the lowest
    assert [e["prompt"] for e in first["evaluated"]] == notes["parsed"]
    assert [e["n"] for e in first["evaluated"]] == [3.0, 3.0]
    scores = first["scores"]
    pick = min(range(len(scores)), key=lambda i: (scores[i], i))  # lowest error, then earliest
    assert first["chosen_prompt"] == notes["parsed"][pick] == notes["pick"]
    # the second step gets nothing usable: no made-up score, the current prompt stays
    assert second["candidates"] == [] and second["evaluated"] == []
    assert second["chosen_prompt"] == first["chosen_prompt"]
    assert second["loss"] == first["loss"]
    assert second["reason"] == "kept the current prompt: no valid candidate"
    assert second["notes"]["no_candidate_reason"].startswith("no valid candidate among 12")
    assert second["notes"]["sampling_rounds"] == 3
    result = out.result
    assert result["initial_prompt"] == INITIAL and result["prompt_separator"] == "\n"
    scored = {INITIAL: result["dev_accuracy_initial"]}
    scored.update({e["prompt"]: 1 - e["error_rate"] for e in first["evaluated"]})
    best = max(scored, key=lambda t: (scored[t], -list(scored).index(t)))
    assert result["candidate_prompt"] == best != INITIAL  # the method's choice
    assert result["candidate_dev_accuracy"] == pytest.approx(scored[best])
    # paired with the initial prompt on the run's own dev scores, no evaluation again; three
    # dev examples can never make a difference significant: the run keeps its initial prompt
    assert result["accept_scores_from"] == "history" and result["accept_dev_n"] == 3
    assert result["accepted"] is False and result["best_prompt"] == INITIAL
    assert result["dev_accuracy_final"] == result["dev_accuracy_initial"]
    assert [p["prompt"] for p in result["trajectory"]] == [INITIAL, first["chosen_prompt"]]


def _c(text: str) -> Any:
    from promptopt.types import Candidate, Prompt

    return Candidate(Prompt(text, separator="\n"), text)


def test_resampling_is_bounded_and_a_step_without_candidates_keeps_its_prompt(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    opt = optimizer()  # every output is "" (no tags)
    out = promptopt_run("gpo", **RUN, steps=1, samples=3, retries=2)
    assert [c["n"] for c in opt.calls] == [3, 3, 3]
    assert len({c["seed"] for c in opt.calls}) == 3
    (step,) = out.steps
    # the answer is prefilled with <START>: an empty one is an empty prompt, not a missing tag
    assert step["notes"]["rejected"][0]["reason"] == "empty after cleaning"
    assert step["notes"]["valid_candidates"] == 0 and len(step["notes"]["optimizer_outputs"]) == 9
    assert step["notes"]["rejections"] == {"empty after cleaning": 9}
    assert step["chosen_prompt"] == INITIAL and step["candidates"] == []
    history = checkpoint(out.path)["history"]
    assert [e["step"] for e in history["entries"]] == [-1]  # only the initial prompt's score
    assert step["loss"] == history["entries"][0]["loss"]
    assert out.result["best_prompt"] == INITIAL


def test_the_initial_prompt_is_scored_on_dev_before_the_first_step(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    optimizer()
    out = promptopt_run("gpo", **RUN, samples=1, retries=0)
    assert out.result["steps_run"] == out.result["steps_planned"] == 3  # T for 4 train examples
    (entry,) = checkpoint(out.path)["history"]["entries"]
    assert entry["step"] == -1 and entry["split"] == "dev"
    assert entry["prompt"]["text"] == INITIAL and entry["prompt"]["separator"] == "\n"
    assert entry["details"]["n"] == len(ListTask.data["dev"])
    example = ListTask.data["dev"][0]
    from promptopt.types import Prompt

    layout = ListTask().user_turn(example, Prompt(INITIAL, separator="\n"))
    assert layout == f"{example.question}\n{INITIAL}"


def test_repeats_reuse_their_score_and_are_never_evaluated_again(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    a, b, c = "Compare both numbers.", "Look at the larger number.", "Subtract and check the sign."
    later = [f"<START>{b}<END>", f"<START>{c}<END>", f"<START>{a}<END>"]
    optimizer({INITIAL: [f"<START>{a}<END>", f"<START>{b}<END>"], a: later, b: later})
    out = promptopt_run("gpo", **RUN, steps=2, samples=3, retries=0)
    first, second = out.steps
    picked = first["chosen_prompt"]
    assert second["prompt_before"] == picked
    repeats = second["notes"]["repeats"]
    assert repeats and set(repeats) == {a, b} & set(second["candidates"])
    assert [e["prompt"] for e in second["evaluated"]] == [c]
    assert second["notes"]["scores_reused"] == len(repeats)
    assert second["notes"]["examples_generated"] == 3  # the dev split, for the new prompt only
    for text, score in zip(second["candidates"], second["scores"], strict=True):
        if text in repeats:
            assert score == first["scores"][first["candidates"].index(text)]
    assert second["chosen_prompt"] != picked  # a previous pick is never picked again


def test_the_evaluation_cache_means_a_prompt_is_never_generated_twice_on_a_model(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    optimizer(pool=("<START>Compare both numbers.<END>", "<START>Look closely.<END>"))
    settings = {**RUN, "steps": 2, "samples": 2, "retries": 0}
    first = promptopt_run("gpo", **settings)
    again = promptopt_run("gpo", **settings)
    assert first.result["compute"]["models"]["task"]["generated_tokens"] > 0
    assert again.result["compute"]["models"]["task"]["generated_tokens"] == 0
    assert sum(s["notes"].get("examples_from_cache", 0) for s in again.steps) > 0
    assert again.result["best_prompt"] == first.result["best_prompt"]


POOL = (
    "<START>Compare both numbers.<END>",
    "<START>Look at the larger number.<END>",
    "Here: <START>Subtract and check the sign.<END>",
    "<START>Is the first one bigger? Answer.<END>",
    "no tags",
    "<START>Think about the number line.<END>",
    "<START>Count up from the smaller number.<END>",
)


def test_a_resumed_run_ends_like_an_uninterrupted_one(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    opt = optimizer(pool=POOL)
    settings = {**RUN, "steps": 4, "samples": 3}
    straight = promptopt_run("gpo", **settings)
    seeds = [c["seed"] for c in opt.calls]
    stopped = promptopt_run("gpo", **settings, interrupt_after=2)
    assert stopped.result == {} and len(stopped.steps) == 2
    resumed = promptopt_run.resume(stopped.path)
    for key in ("best_prompt", "trajectory", "losses", "dev_accuracy_final"):
        assert resumed.result[key] == straight.result[key]
    assert checkpoint(resumed.path)["history"] == checkpoint(straight.path)["history"]
    assert (resumed.path / "run.log").read_text().count("gpo retrieval embeddings: ") == 2
    for a, b in zip(straight.steps, resumed.steps, strict=True):
        assert a["notes"]["optimizer_outputs"] == b["notes"]["optimizer_outputs"]
        assert a["notes"]["meta_prompt"] == b["notes"]["meta_prompt"]
        assert (a["candidates"], a["scores"], a["chosen_prompt"]) == (
            b["candidates"],
            b["scores"],
            b["chosen_prompt"],
        )
    # the samples follow the seed: another seed asks the optimizer with other seeds
    opt.calls.clear()
    promptopt_run("gpo", **settings, seed=1)
    assert [c["seed"] for c in opt.calls] != seeds


def test_ties_go_to_the_earliest_candidate() -> None:
    candidates = [_c(t) for t in ("a", "b", "c", "d")]
    assert best_new(candidates, [0.5, 0.25, 0.25, 0.25], set()) == 1
    taken = {candidates[1].prompt.__class__("b", separator="\n")}
    from promptopt.history import prompt_key

    assert best_new(candidates, [0.5, 0.25, 0.25, 0.25], {prompt_key(p) for p in taken}) == 2
    assert best_new(candidates[:1], [0.1], {prompt_key(candidates[0].prompt)}) is None


NUMBERS = (
    Example("n0", "What is 40 + 2?", "42"),
    Example("n1", "What is 10 + 7?", "17"),
    Example("n2", "What is 4 + 4?", "8"),
)


class NumbersPlugin:
    @hookimpl
    def register_tasks(self, register: Callable[[type[Any]], None]) -> None:
        register(ListTask.with_examples("gpo/numbers", NUMBERS, NUMBERS[:2], NUMBERS[:1]))


def test_candidates_leaking_an_exemplar_answer_are_rejected(
    optimizer: Callable[..., type[ScriptedOptimizer]],
    promptopt_register: Callable[..., Any],
    promptopt_run: Any,
) -> None:
    promptopt_register(NumbersPlugin(), name="gpo-numbers")
    optimizer({INITIAL: ["<START>The answer is 42.<END>", "<START>Add the two numbers.<END>"]})
    out = promptopt_run("gpo", **{**RUN, "task": "gpo/numbers"}, steps=1, samples=2, retries=0)
    (step,) = out.steps
    assert step["notes"]["rejected"] == [
        {"output": 0, "text": "The answer is 42.", "reason": "contains the exemplar answer '42'"}
    ]
    assert step["candidates"] == ["Add the two numbers."]


def test_the_embedding_a_run_used_is_recorded(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    optimizer(pool=POOL)
    out = promptopt_run("gpo", **RUN, steps=3, samples=2, embedding="tfidf")
    assert out.result["embedding"].startswith("tfidf")
    assert "gpo retrieval embeddings: tfidf" in (out.path / "run.log").read_text()
    assert checkpoint(out.path)["components"]["proposer"] == {"embedding": "tfidf"}
    third = out.steps[2]["notes"]
    assert (
        len(third["shown"]) == 3 and third["shown"][-1]["prompt"] == out.steps[2]["prompt_before"]
    )
    similarities = [s["similarity"] for s in third["shown"]]
    assert similarities[-1] == 1.0 and similarities[0] <= similarities[1]


def test_bad_budget_options_fail_before_any_model(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    from promptopt.errors import PromptoptError

    optimizer()
    with pytest.raises(PromptoptError, match="budget_min=60 is larger than budget_max=50"):
        promptopt_run("gpo", **RUN, budget_min=60)


def test_cached_outcomes_of_another_layout_are_never_served(
    optimizer: Callable[..., type[ScriptedOptimizer]], promptopt_run: Any
) -> None:
    from promptopt.evalcache import EvalCache
    from promptopt.evaluation import evaluate
    from promptopt.testing.fakes import FakeBackend
    from promptopt.types import Prompt

    task = ListTask()
    sentence_layout = evaluate(  # the same text and settings as GPO's, in GReaTer's layout
        FakeBackend(None),
        task,
        Prompt(INITIAL),
        task.examples("dev"),
        max_new_tokens=256,
        cache=EvalCache.default(),
    )
    assert sentence_layout.n == 3 and sentence_layout.cache_hits == 0
    optimizer()  # no candidates: the task model only scores the initial prompt
    first = promptopt_run("gpo", **RUN, steps=1, samples=1, retries=0)
    assert first.result["compute"]["models"]["task"]["generated_tokens"] > 0
    again = promptopt_run("gpo", **RUN, steps=1, samples=1, retries=0)
    assert again.result["compute"]["models"]["task"]["generated_tokens"] == 0


def test_eval_of_a_gpo_run_uses_its_layout(
    optimizer: Callable[..., type[ScriptedOptimizer]],
    promptopt_run: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from promptopt.cli import main
    from promptopt.testing.fakes import FakeBackend
    from promptopt.types import Prompt

    optimizer(pool=POOL)
    run = promptopt_run("gpo", **RUN, steps=1, samples=2)
    best = run.result["best_prompt"]
    out = tmp_path / "eval"
    try:
        main(["eval", "--run", str(run.path), "--backend", "fake", "--split", "dev",
              "--out", str(out), "--no-progress"])  # fmt: skip
    except SystemExit as exc:
        assert exc.code in (0, None)
    rows = [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]
    fake = FakeBackend(None)
    for example, row in zip(ListTask().examples("dev"), rows, strict=True):
        context = fake.chat(ListTask().user_turn(example, Prompt(best, separator="\n")))
        assert row["reasoning"] == fake.generate([context], max_new_tokens=512)[0]
    summary = json.loads(capsys.readouterr().out)
    assert summary["accuracy"] == pytest.approx(run.result["dev_accuracy_final"])


def test_the_final_choice_prefers_the_initial_prompt_on_a_tie() -> None:
    from promptopt_gpo.selector import GpoSelector

    from promptopt.history import History
    from promptopt.types import Prompt, PromptLoss

    history = History()
    history.record([PromptLoss(Prompt(INITIAL, separator="\n"), 0.5, 0.5, split="dev")], step=-1)
    history.record([PromptLoss(Prompt("Other.", separator="\n"), 0.5, 0.5, split="dev")], step=0)
    history.record([PromptLoss(Prompt("Train only.", separator="\n"), 0.0, 0.0)], step=0)
    finalists = GpoSelector().finalists(history)
    assert [f.prompt.text for f in finalists] == [INITIAL, "Other."]


def test_the_selector_keeps_the_selector_contract() -> None:
    from promptopt_gpo.selector import GpoSelector

    from promptopt.testing.contracts import check_selector

    check_selector(GpoSelector)
