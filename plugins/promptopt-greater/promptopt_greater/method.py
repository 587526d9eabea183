"""The ``greater`` method preset: the four ``greater`` components with the reference's defaults,
the reference's initial prompt, and the final choice among the kept prompts on the dev split."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar, cast

from pydantic import Field

from promptopt.components import Backend, Method, MethodOptions, Selector, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.types import Prompt, PromptLoss
from promptopt_greater.layout import make_prompt, round_trips
from promptopt_greater.whitebox import white_box

#: The reference's starting instruction (after the fixed "Use").
INITIAL_SUFFIX = (
    " proper logical reasoning and think step by step. Finally give the actual correct answer."
)


class GreaterMethod(Method):
    """GReaTer (Das et al., ICLR 2025): token-level prompt edits guided by gradients over
    reasoning."""

    name = "greater"
    description = "GReaTer: gradients over reasoning, one prompt token per step (white-box)"
    proposer = "greater"
    reasoner = "greater"
    loss_extractor = "greater"
    selector = "greater"
    backend = "hf"
    needs_white_box = True
    defaults: ClassVar[dict[str, Any]] = {
        "train_size": 50,
        "dev_size": 100,
        "topk": 40,
        "topq": 6,
        "subset": 5,
        "min_candidates": 6,
        "shortlist": 3,
        "max_new_tokens": 1024,
        "temperature": 0.2,
        "fluency_weight": 0.2,
        "eval_fluency_weight": 0.02,
        "keep": 10,
        "loss_threshold": 0.12,
        "patience": 150,
    }

    class Options(MethodOptions):
        steps: int = Field(default=100, ge=1)
        prefix: str = "Use"
        final_selection: bool = True

    @property
    def opts(self) -> GreaterMethod.Options:
        """The options, typed."""
        return cast(GreaterMethod.Options, self.options)

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        """``prefix`` + the reference's initial instruction (or ``initial_prompt``), as ids."""
        wb = white_box(backend)
        prefix = self.opts.prefix
        text = self.opts.initial_prompt or INITIAL_SUFFIX
        if text.startswith(prefix):
            text = text[len(prefix) :]
        if not text.strip():
            raise PromptoptError(
                "the initial prompt is empty after the prefix", hint="set -o initial_prompt=..."
            )
        head = wb.encode(prefix) if prefix else []
        full = wb.encode(prefix + text)
        tokens = full[len(head) :] if full[: len(head)] == head else wb.encode(text)
        if not round_trips(wb, prefix, tokens):
            tokens = wb.encode(wb.decode(tokens))
        if not round_trips(wb, prefix, tokens):
            raise PromptoptError(
                f"the initial prompt {prefix + text!r} changes when this tokenizer decodes and "
                "re-encodes it, so its tokens cannot be edited one by one",
                hint="set -o initial_prompt= to plain words and punctuation",
            )
        return make_prompt(wb, prefix, tokens, 0)

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """Evaluate the initial and the kept prompts on the dev split (one batched generation)
        with the exact answer-slot check; the best dev accuracy wins (ties: lower train loss)."""
        kept = selector.best_prompts()
        if not self.opts.final_selection or not kept:
            chosen = kept[0].prompt if kept else initial
            return {
                "best_prompt": chosen.text,
                "initial_prompt": initial.text,
                "kept_prompts": [_kept_row(k, None) for k in kept],
            }
        start = time.perf_counter()
        dev = ctx.task.examples("dev")
        dev_ctx = dataclasses.replace(ctx, train=dev, timings={}, info={})
        prompts = [initial, *(k.prompt for k in kept)]
        reports = ctx.loss_extractor.evaluate(dev_ctx, prompts)
        accuracies = [1.0 - r.error_rate for r in reports]
        order = sorted(range(len(kept)), key=lambda i: (-accuracies[i + 1], kept[i].loss, i))
        best = kept[order[0]]
        return {
            "best_prompt": best.prompt.text,
            "best_tokens": list(best.prompt.tokens or ()),
            "initial_prompt": initial.text,
            "dev_accuracy_initial": accuracies[0],
            "dev_accuracy_final": accuracies[order[0] + 1],
            "dev_size": len(dev),
            "dev_metric": "exact answer-slot argmax after the extractor",
            "kept_prompts": [_kept_row(kept[i], accuracies[i + 1]) for i in order],
            "finalize_seconds": time.perf_counter() - start,
        }


def _kept_row(item: PromptLoss, dev_accuracy: float | None) -> dict[str, Any]:
    return {
        "text": item.prompt.text,
        "tokens": list(item.prompt.tokens or ()),
        "train_loss": item.loss,
        "train_error_rate": item.error_rate,
        "dev_accuracy": dev_accuracy,
    }
