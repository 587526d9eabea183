"""The ``greater`` method preset: the four ``greater`` components with the reference's settings,
the reference's initial prompt, and the final choice among the best prompts on the dev split."""

from __future__ import annotations

import time
from typing import Any, ClassVar

from pydantic import Field

from promptopt.components import Backend, Method, MethodOptions, Selector, StepContext, Task
from promptopt.errors import PromptoptError, quote
from promptopt.history import Scored
from promptopt.types import Prompt
from promptopt_greater.layout import make_prompt, round_trips
from promptopt_greater.whitebox import white_box

#: The reference's starting instruction (after the fixed "Use").
INITIAL_SUFFIX = (
    " proper logical reasoning and think step by step. Finally give the actual correct answer."
)
#: Longest initial prompt accepted (characters): GReaTer edits one token per step.
MAX_INITIAL_CHARS = 2000


class GreaterMethodOptions(MethodOptions):
    """The step budget, the fixed prefix and whether the final choice is made on dev."""

    #: The paper's runs used 125 steps (run_gemma2_mcq.sh).
    steps: int = Field(default=125, ge=1)
    prefix: str = "Use"
    final_selection: bool = True


class GreaterMethod(Method[GreaterMethodOptions]):
    """GReaTer (Das et al., ICLR 2025): token-level prompt edits guided by gradients over
    reasoning."""

    name = "greater"
    description = "GReaTer: gradients over reasoning, one prompt token per step (white-box)"
    Options = GreaterMethodOptions
    proposer = "greater"
    reasoner = "greater"
    loss_extractor = "greater"
    selector = "greater"
    backend = "hf"
    needs_white_box = True
    #: The hyperparameters of the authors' code (psunlpgroup/GreaTer), per component. Split
    #: sizes are the task's own (the paper's splits), never pushed from here.
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "proposer": {"topk": 40, "topq": 6, "subset": 5, "min_candidates": 6},
        "reasoner": {"max_new_tokens": 1024},
        "loss_extractor": {"temperature": 0.2, "fluency_weight": 0.2, "eval_fluency_weight": 0.02},
        "selector": {
            "shortlist": 3,
            "keep": 10,
            "loss_threshold": 0.12,
            "patience": 150,
            "filler": "_",
        },
    }
    shared_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "reference_mode": ("reasoner", "proposer", "loss_extractor"),
        "prefix_cache": ("proposer", "loss_extractor"),
    }

    def _initial_text(self) -> str:
        """The editable text after the prefix, joined with a space ("Use" + " think ...")."""
        given = self.options.initial_prompt
        text = given if given is not None else INITIAL_SUFFIX
        prefix = self.options.prefix
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
        if not text.strip():
            raise PromptoptError(
                f"initial_prompt={quote(self.options.initial_prompt or '')} leaves nothing to edit "
                f"after the prefix {prefix!r}",
                hint="GReaTer edits the prompt's tokens: give at least one word",
            )
        if prefix and not text[0].isspace():
            text = " " + text
        return text

    def check_options(self, task: Task) -> None:
        """The initial prompt is checked before any model loads."""
        text = self._initial_text()
        if len(text) > MAX_INITIAL_CHARS:
            raise PromptoptError(
                f"initial_prompt={quote(text.strip())} is longer than {MAX_INITIAL_CHARS} "
                "characters",
                hint="GReaTer edits one token per step: start from a short instruction",
            )

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        """``prefix`` + the reference's initial instruction (or ``initial_prompt``), as ids."""
        wb = white_box(backend)
        prefix = self.options.prefix
        text = self._initial_text()
        head = wb.encode(prefix) if prefix else []
        full = wb.encode(prefix + text)
        tokens = full[len(head) :] if full[: len(head)] == head else wb.encode(text)
        if not round_trips(wb, prefix, tokens):
            tokens = wb.encode(wb.decode(tokens))
        if not round_trips(wb, prefix, tokens):
            raise PromptoptError(
                f"the initial prompt {quote(prefix + text)} changes when this tokenizer decodes "
                "and re-encodes it, so its tokens cannot be edited one by one",
                hint="set -o initial_prompt= to plain words and punctuation",
            )
        return make_prompt(wb, prefix, tokens, 0)

    def describe(self, task: Task) -> dict[str, Any]:
        return {"initial_prompt": self.options.prefix + self._initial_text()}

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """Evaluate the initial prompt and the selector's finalists (the ``keep`` lowest-loss
        prompts of the run) on the dev split (one batched generation) with the exact
        answer-slot check; the best dev accuracy wins (ties: lower train loss). The loop's
        acceptance rule then tests it against the initial prompt on these same outcomes."""
        kept = selector.finalists(ctx.history)
        if not self.options.final_selection or not kept:
            chosen = kept[0].prompt if kept else initial
            return {
                "best_prompt": chosen.text,
                "initial_prompt": initial.text,
                **_perplexities(ctx, chosen, initial),
                "kept_prompts": [_kept_row(k, None) for k in kept],
            }
        start = time.perf_counter()
        dev = ctx.examples("dev")
        prompts = [initial, *(k.prompt for k in kept)]
        losses = ctx.loss_extractor.evaluate(ctx, prompts, split="dev")
        ctx.history.record(losses, step=ctx.step)  # the acceptance rule pairs these outcomes
        accuracies = [1.0 - r.error_rate for r in losses]
        order = sorted(range(len(kept)), key=lambda i: (-accuracies[i + 1], kept[i].loss, i))
        best = kept[order[0]]
        over = (
            " over the valid answers"
            if getattr(ctx.loss_extractor.options, "exact_loss", "").startswith("option_")
            else ""
        )
        return {
            "best_prompt": best.prompt.text,
            "best_tokens": list(best.prompt.tokens or ()),
            "initial_prompt": initial.text,
            **_perplexities(ctx, best.prompt, initial),
            "dev_accuracy_initial": accuracies[0],
            "dev_accuracy_final": accuracies[order[0] + 1],
            "dev_size": len(dev),
            "dev_metric": f"exact answer-slot argmax{over} after the extractor"
            + ("" if ctx.task.metric_name == "exact" else f", scored by {ctx.task.metric_name}"),
            "kept_prompts": [_kept_row(kept[i], accuracies[i + 1]) for i in order],
            "finalize_seconds": time.perf_counter() - start,
        }


class GreaterAnswerCEMethod(GreaterMethod):
    """GReaTer whose exact check ranks prompts by the gold answer's cross-entropy instead of the
    error rate: on a small model whose answer slot is almost never exactly right, the error rate
    is the same for every candidate and only the fluency term would decide."""

    name = "greater-ce"
    description = "GReaTer ranking the exact check by answer cross-entropy (small-model variant)"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        **GreaterMethod.defaults,
        "loss_extractor": {**GreaterMethod.defaults["loss_extractor"], "exact_loss": "answer_ce"},
    }


class GreaterSmallMethod(GreaterMethod):
    """GReaTer for small models: the exact check takes the argmax and cross-entropy over the
    task's valid answers only, and weighs the prompt's fluency enough to keep it readable
    (the values chosen by the fluency sweep, ``sweeps/fluency.py``)."""

    name = "greater-small"
    description = "GReaTer for small models: exact check over the valid answers, readable prompts"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        **GreaterMethod.defaults,
        "loss_extractor": {
            **GreaterMethod.defaults["loss_extractor"],
            "exact_loss": "option_error",
            "eval_fluency_weight": 0.2,
        },
    }


def _perplexities(ctx: StepContext, best: Prompt, initial: Prompt) -> dict[str, float | None]:
    """The final and the initial prompt's perplexity under the task model (read on their own)."""
    from promptopt_greater.perplexity import prompt_perplexity

    wb = white_box(ctx.backend)
    return {
        "best_prompt_perplexity": prompt_perplexity(wb, best),
        "initial_prompt_perplexity": prompt_perplexity(wb, initial),
    }


def _kept_row(item: Scored, dev_accuracy: float | None) -> dict[str, Any]:
    return {
        "text": item.prompt.text,
        "tokens": list(item.prompt.tokens or ()),
        "train_loss": item.loss,
        "train_error_rate": item.error_rate,
        "found_at_step": item.step,
        "dev_accuracy": dev_accuracy,
    }
