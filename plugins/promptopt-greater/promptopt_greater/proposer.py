"""The ``greater`` proposer: candidate tokens for the edited prompt position from the model's own
next-token distribution, agreed on by random subsets of training examples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from promptopt.components import ComponentOptions, Proposer, StepContext
from promptopt.errors import PromptoptError
from promptopt.types import Candidate, Prompt
from promptopt_greater.candidates import intersect_union, ordered_candidates
from promptopt_greater.layout import build_context, prompt_tokens, round_trips, with_token
from promptopt_greater.whitebox import WhiteBox, eval_mode, prefix_cache, white_box


class GreaterProposerOptions(ComponentOptions):
    """Top-k, subset sampling and batching of the proposal."""

    topk: int = Field(default=40, ge=1)
    topq: int = Field(default=6, ge=1)
    subset: int = Field(default=5, ge=1)
    min_candidates: int = Field(default=6, ge=1)
    batch_size: int = Field(default=8, ge=1)
    prefix_cache: bool = True
    reference_mode: bool = False


class GreaterProposer(Proposer[GreaterProposerOptions]):
    """Top-k next tokens per example at ``prompt.position``, intersected over ``topq`` random
    subsets of ``subset`` examples, unioned, plus the current token; k grows by 2 while fewer
    than ``min_candidates`` survive."""

    name = "greater"
    description = "per-example top-k next tokens, intersected over random example subsets"
    Options = GreaterProposerOptions

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        wb = white_box(ctx.backend)
        tokens = prompt_tokens(wb, prompt)
        pos = prompt.position
        if not 0 <= pos < len(tokens):
            raise PromptoptError(
                f"prompt position {pos} is outside the prompt's {len(tokens)} tokens",
                hint="start from a prompt whose position indexes one of its tokens",
            )
        logprobs = self._logprobs(ctx, wb, prompt, pos)
        prefix_ids = wb.encode(prompt.prefix)
        previous = tokens[pos - 1] if pos > 0 else (prefix_ids[-1] if prefix_ids else None)
        ids = self._candidate_ids(ctx, wb, prompt, logprobs, tokens[pos], previous)
        candidates = [
            Candidate(
                prompt=with_token(prompt, wb, pos, token),
                label=wb.decode([token]),
                meta={"token_id": token, "position": pos, "current": token == tokens[pos]},
            )
            for token in ids
        ]
        return candidates

    def _logprobs(self, ctx: StepContext, wb: WhiteBox, prompt: Prompt, pos: int) -> Any:
        """``[N, V]``: log p(token at ``pos`` | template, question, prefix, prompt[:pos])."""
        import torch

        from promptopt_greater.batching import BatchSize, run_batched
        from promptopt_greater.prefix import supports_prefix_cache
        from promptopt_greater.tensors import next_token_logprobs

        contexts = [build_context(wb, ctx.task, example, prompt) for example in ctx.train]
        seqs = [[*c.head, *c.prompt[:pos]] for c in contexts]
        cache = None
        if (
            self.options.prefix_cache
            and not self.options.reference_mode
            and supports_prefix_cache(wb.model)
        ):
            cache = prefix_cache(wb)
        size = 1 if self.options.reference_mode else self.options.batch_size

        def run(chunk: Sequence[int]) -> list[Any]:
            wb.usage.record(forward_passes=1, prompt_tokens=sum(len(seqs[i]) for i in chunk))
            out = next_token_logprobs(
                wb.model,
                [seqs[i] for i in chunk],
                pad_id=wb.pad_id,
                device=wb.device,
                heads=[contexts[i].head for i in chunk] if cache is not None else None,
                cache=cache,
            )
            return list(out.cpu())

        with eval_mode(wb.model):
            return torch.stack(run_batched(run, range(len(seqs)), BatchSize(size)))

    def _candidate_ids(
        self,
        ctx: StepContext,
        wb: WhiteBox,
        prompt: Prompt,
        logprobs: Any,
        current: int,
        previous: int | None,
    ) -> list[int]:
        import torch

        from promptopt_greater.vocab import allowed_mask

        opts = self.options
        mask = allowed_mask(wb)
        if previous is not None:
            mask[previous] = False  # no immediate repeat
        masked = logprobs.masked_fill(~mask, float("-inf"))
        available = int(mask.sum())
        tokens = prompt_tokens(wb, prompt)
        k = min(opts.topk, available)
        checked: dict[int, bool] = {}
        while True:
            top = torch.topk(masked, k, dim=-1).indices.tolist()
            sets = [frozenset(int(t) for t in row) for row in top]
            union = intersect_union(sets, ctx.rng, topq=opts.topq, subset=opts.subset)
            survivors = set()
            for token in union:
                if token not in checked:
                    trial = list(tokens)
                    trial[prompt.position] = token
                    checked[token] = round_trips(wb, prompt.prefix, trial)
                if checked[token]:
                    survivors.add(token)
            # as the reference: count the union before the current token is added to it
            if len(survivors) >= opts.min_candidates or k >= available:
                break
            k = min(k + 2, available)
        ctx.note("proposal_k", k)
        return ordered_candidates(survivors, current)
