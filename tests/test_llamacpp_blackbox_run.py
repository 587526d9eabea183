"""A reasoning-only method (generation and log-probabilities, no gradients) runs end to end on
the llamacpp backend through the real ``promptopt run`` loop, and its run feeds ``transfer``."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python

from promptopt import hookimpl
from promptopt.components import (
    Backend,
    Component,
    LossExtractor,
    Method,
    Proposer,
    Selector,
    StepContext,
    Task,
)
from promptopt.types import Candidate, Chain, Prompt, PromptLoss, Selection

SUFFIXES = (" Answer carefully.", " Be brief.", " Check each step.")


class AppendProposer(Proposer):
    """Candidates: the prompt with one fixed sentence appended."""

    name = "lc-append"

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        return [Candidate(Prompt(prompt.text + s), s.strip()) for s in SUFFIXES]


class TargetLogprobLoss(LossExtractor):
    """Loss: mean negative log-probability of the gold continuation after the prompt's context,
    the chain's reasoning and the task's extractor (only ``chat`` and ``continuation_logprobs``)."""

    name = "lc-target-logprob"

    def _losses(self, ctx: StepContext, prompt: Prompt, chains: Sequence[Chain]) -> PromptLoss:
        nll, wrong = [], 0
        for example, chain in zip(ctx.train, chains, strict=True):
            context = ctx.backend.chat(ctx.task.user_turn(example, prompt))
            prefix = f"{context}{chain.reasoning} {ctx.task.extractor(example)}"
            options = list(example.options) or [example.answer]
            scores = ctx.backend.continuation_logprobs(
                prefix, [ctx.task.continuation(o) for o in options]
            )
            nll.append(-scores[options.index(example.answer)])
            wrong += options[scores.index(max(scores))] != example.answer
        return PromptLoss(prompt, sum(nll) / len(nll), wrong / len(nll))

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        chains = ctx.chains(prompt)
        return [self._losses(ctx, c.prompt, chains).loss for c in candidates]

    def evaluate(self, ctx: StepContext, prompts: Sequence[Prompt]) -> list[PromptLoss]:
        chains = ctx.reasoner.reason(ctx, prompts, ctx.train)
        return [self._losses(ctx, p, c) for p, c in zip(prompts, chains, strict=True)]


class BestSelector(Selector):
    """Takes the best-scored candidate after an exact evaluation (the run's history keeps it)."""

    name = "lc-best"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        chosen = candidates[min(range(len(scores)), key=scores.__getitem__)].prompt
        evaluated = ctx.loss_extractor.evaluate(ctx, [chosen])
        return Selection(chosen, evaluated[0].loss, evaluated=tuple(evaluated))


class BlackBoxSearch(Method):
    name = "lc-blackbox"
    proposer = "lc-append"
    reasoner = "chat"
    loss_extractor = "lc-target-logprob"
    selector = "lc-best"
    backend = "llamacpp"

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        return Prompt("Think step by step.")


class BlackBoxPlugin:
    @hookimpl
    def register_methods(self, register: Callable[[type[Component]], None]) -> None:
        register(BlackBoxSearch)

    @hookimpl
    def register_proposers(self, register: Callable[[type[Component]], None]) -> None:
        register(AppendProposer)

    @hookimpl
    def register_loss_extractors(self, register: Callable[[type[Component]], None]) -> None:
        register(TargetLogprobLoss)

    @hookimpl
    def register_selectors(self, register: Callable[[type[Component]], None]) -> None:
        register(BestSelector)


def run_cli(args: list[str]) -> None:
    from promptopt.cli import main

    try:
        main(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


def test_blackbox_method_runs_on_llamacpp_and_transfers(
    tiny_model_dir: Path,
    shared_data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    promptopt_register: Callable[..., Any],
) -> None:
    from promptopt_llamacpp.gguf_export import export_hf_llama

    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    promptopt_register(BlackBoxPlugin(), name="lc-blackbox-test")
    gguf = export_hf_llama(tiny_model_dir, tmp_path / "tiny.gguf")
    run_dir = tmp_path / "run"
    common = ["--task", "bbh/boolean_expressions", "--data-dir", str(shared_data_dir)]
    run_cli(
        ["run", "lc-blackbox", *common, "--model", str(gguf), "--out", str(run_dir),
         "-o", "steps=2", "-o", "train_size=2", "-o", "max_new_tokens=6", "--no-progress",
         "-o", "accept=best"]  # the method's own choice, to transfer an optimized prompt
    )  # fmt: skip
    result = json.loads((run_dir / "result.json").read_text())
    assert result["backend"] == "llamacpp" and result["steps_run"] == 2
    assert result["best_prompt"].startswith("Think step by step.")
    assert len(result["best_prompt"]) > len(result["initial_prompt"])
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    for step in steps:
        assert len(step["scores"]) == len(SUFFIXES)
        assert all(math.isfinite(s) and s > 0 for s in step["scores"])
        assert len(set(step["scores"])) > 1  # the model's log-probabilities, not constants

    out = tmp_path / "transfer"
    run_cli(
        ["transfer", "--run", str(run_dir), "--models", str(gguf), "--quants", "orig,q8_0",
         *common, "--limit", "2", "--max-new-tokens", "4", "--out", str(out),
         "--no-progress"]
    )  # fmt: skip
    matrix = json.loads((out / "transfer.json").read_text())
    assert matrix["prompts"]["optimized"] == result["best_prompt"]
    assert [row["quant"] for row in matrix["rows"]] == ["orig", "q8_0"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
