"""The ``greater`` reasoner: greedy chains generated from exact token ids, batched, returned with
their ids so the gradient and the exact check see the very same tokens; the latest call's
chains are kept so the next step reuses them instead of generating again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from pydantic import Field

from promptopt.components import ComponentOptions, Reasoner, StepContext
from promptopt.types import Chain, Example, Prompt
from promptopt_greater.layout import Context, build_context, prompt_tokens
from promptopt_greater.whitebox import white_box

Key = tuple[str, tuple[int, ...], str]

#: The reference generates reasoning in batches of 9, one prompt at a time.
REFERENCE_GENERATION_BATCH = 9


class GreaterReasoner(Reasoner):
    """Greedy reasoning per (prompt, example), all pairs in one batched generation."""

    name = "greater"
    description = "greedy chains from exact prompt token ids, batched, kept as ids (GReaTer)"

    class Options(ComponentOptions):
        max_new_tokens: int = Field(default=1024, ge=1)
        batch_size: int = Field(default=8, ge=1)
        reference_mode: bool = False

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        from promptopt_greater.batching import BatchSize

        size = self.opts.batch_size
        if self.opts.reference_mode:
            size = REFERENCE_GENERATION_BATCH
        self.batch = BatchSize(size)
        # Chains of the latest call, as ids; the next step's first call usually hits them
        # (the chosen prompt was just evaluated), saving one full generation per step.
        self._ids: dict[Key, list[int]] = {}

    @property
    def opts(self) -> GreaterReasoner.Options:
        """The options, typed."""
        return cast(GreaterReasoner.Options, self.options)

    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        if self.opts.reference_mode:  # the reference: one prompt after another, nothing reused
            chains: list[list[Chain]] = []
            latest: dict[Key, list[int]] = {}
            for prompt in prompts:
                self._ids = {}
                chains.append(self._reason(ctx, [prompt], examples)[0])
                latest.update(self._ids)  # keep every prompt's ids, as the fast mode does
            self._ids = latest
            return chains
        return self._reason(ctx, prompts, examples)

    def _reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        from promptopt_greater.generation import greedy_generate

        wb = white_box(ctx.backend)
        pairs = [(p, e) for p in prompts for e in examples]
        keys = [(p.prefix, prompt_tokens(wb, p), e.id) for p, e in pairs]
        contexts: list[Context] = [build_context(wb, ctx.task, e, p) for p, e in pairs]
        todo = [i for i, key in enumerate(keys) if key not in self._ids]
        generated: list[list[int]] = []
        if todo:
            with ctx.progress.bar(len(todo), "reasoning", unit="chain") as bar:
                generated = greedy_generate(
                    wb,
                    [contexts[i].ids for i in todo],
                    max_new_tokens=self.opts.max_new_tokens,
                    batch=self.batch,
                    on_done=bar.update,
                )
        fresh = dict(zip((keys[i] for i in todo), generated, strict=True))
        ids = {key: fresh[key] if key in fresh else self._ids[key] for key in keys}
        self._ids = ids  # keep only the latest call's chains (bounded memory, small checkpoints)
        ctx.count("generated_tokens", sum(len(g) for g in generated))
        ctx.count("chains_reused", len(keys) - len(todo))
        chains = [
            Chain(
                example.id,
                wb.decode(context.ids),
                wb.decode(ids[key], skip_special_tokens=True),
                tuple(ids[key]),
            )
            for (_, example), context, key in zip(pairs, contexts, keys, strict=True)
        ]
        n = len(examples)
        return [chains[i * n : (i + 1) * n] for i in range(len(prompts))]

    # ----------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, Any]:
        """The latest chains as ids, so a resumed run reuses exactly the same reasoning."""
        return {
            "chains": [
                {"prefix": k[0], "tokens": list(k[1]), "example": k[2], "ids": v}
                for k, v in self._ids.items()
            ]
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._ids = {
            (c["prefix"], tuple(c["tokens"]), c["example"]): list(c["ids"])
            for c in state.get("chains", [])
        }
