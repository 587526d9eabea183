"""The ``greater`` reasoner: greedy chains generated from exact token ids, batched, returned with
their ids so the gradient and the exact check see the very same tokens; the latest call's
chains are kept so the next step reuses them instead of generating again. It is a
:class:`~promptopt_greater.scoring.ChainScorer`: the exact check of its latest chains can run
in the runtime that generated them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from promptopt.components import Backend, ComponentOptions, Reasoner, StepContext
from promptopt.cpus import usable_cpus
from promptopt.types import Chain, Example, Prompt
from promptopt_greater.layout import Context, build_context, prompt_tokens
from promptopt_greater.scoring import ChainScorer
from promptopt_greater.whitebox import WhiteBox, white_box

if TYPE_CHECKING:
    from promptopt_greater.generators import Generator
    from promptopt_greater.layout import Row
    from promptopt_greater.tensors import ExactScore

Key = tuple[str, tuple[int, ...], str]

#: The reference generates reasoning in batches of 9, one prompt at a time.
REFERENCE_GENERATION_BATCH = 9


class GreaterReasonerOptions(ComponentOptions):
    """Reasoning length, batching and where greedy generation runs."""

    max_new_tokens: int = Field(default=1024, ge=1)
    batch_size: int = Field(default=8, ge=1)
    reference_mode: bool = False
    #: Where greedy generation runs: ``auto`` = llama.cpp for a CPU model when installed
    #: (proposals and gradients stay in torch), else torch.
    generator: Literal["auto", "torch", "llamacpp"] = "auto"
    #: Which GGUF llama.cpp runs: the file the model came from (``orig``) or an export.
    generator_weights: Literal["orig", "f32", "f16"] = "f32"
    #: llama.cpp threads; None = every core of this process.
    generator_threads: int | None = Field(default=None, ge=1)
    #: Sequences llama.cpp decodes together.
    generator_parallel: int = Field(default=32, ge=1)
    #: Chains regenerated in torch at the first call to measure how many agree token for
    #: token with llama.cpp's (0 = no check).
    agreement_check: int = Field(default=4, ge=0)


class GreaterReasoner(Reasoner[GreaterReasonerOptions], ChainScorer):
    """Greedy reasoning per (prompt, example), all pairs in one batched generation."""

    name = "greater"
    description = "greedy chains from exact prompt token ids, batched, kept as ids (GReaTer)"
    Options = GreaterReasonerOptions

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        from promptopt_greater.batching import BatchSize

        size = self.options.batch_size
        if self.options.reference_mode:
            size = REFERENCE_GENERATION_BATCH
        self.batch = BatchSize(size)
        # Chains of the latest call, as ids; the next step's first call usually hits them
        # (the chosen prompt was just evaluated), saving one full generation per step.
        self._ids: dict[Key, list[int]] = {}
        self._generator: Generator | None = None
        self._checked = self.options.agreement_check == 0

    def prepare(self, backend: Backend) -> dict[str, Any]:
        """Choose and start the generator (llama.cpp or torch); returns what was chosen."""
        return self.generator(white_box(backend)).describe()

    def generator(self, wb: WhiteBox) -> Generator:
        """The generator of this run, built on first use."""
        if self._generator is None:
            from promptopt_greater.generators import (
                LlamaCppGenerator,
                TorchGenerator,
                choose,
            )

            opts = self.options
            if choose(opts.generator, wb, opts.reference_mode) == "llamacpp":
                self._generator = LlamaCppGenerator(
                    wb,
                    weights=opts.generator_weights,
                    # every usable core: the run owns the machine (llama.cpp and torch take
                    # turns, never run at once)
                    threads=opts.generator_threads or usable_cpus(),
                    n_ctx=_context_size(wb),
                    parallel=opts.generator_parallel,
                )
            else:
                self._generator = TorchGenerator(wb, self.batch)
        return self._generator

    # ----------------------------------------------------------------- ChainScorer

    def score_rows(self, wb: WhiteBox, rows: Sequence[Row]) -> list[ExactScore] | None:
        """The generator's exact check of rows of its latest chains (None: torch scores)."""
        return self.generator(wb).score(rows)

    def prompt_nlls(self, wb: WhiteBox, rows: Sequence[Row]) -> list[float | None]:
        """Prompt NLLs the generator read from its prefill logits (None where it did not)."""
        return self.generator(wb).prompt_nlls(rows)

    # ----------------------------------------------------------------- reasoning

    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        if self.options.reference_mode:
            # the reference: one prompt after another, every chain generated again when it is
            # needed (the current prompt's at every step too), nothing reused
            chains: list[list[Chain]] = []
            for prompt in prompts:
                self._ids = {}
                chains.append(self._reason(ctx, [prompt], examples)[0])
            self._ids = {}
            return chains
        return self._reason(ctx, prompts, examples)

    def _reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        wb = white_box(ctx.backend)
        generator = self.generator(wb)
        pairs = [(p, e) for p in prompts for e in examples]
        keys = [(p.prefix, prompt_tokens(wb, p), e.id) for p, e in pairs]
        contexts: list[Context] = [build_context(wb, ctx.task, e, p) for p, e in pairs]
        todo = [i for i, key in enumerate(keys) if key not in self._ids]
        generated: list[list[int]] = []
        if todo:
            from promptopt_greater.generators import prompt_span

            inputs = [contexts[i].ids for i in todo]
            spans = [prompt_span(contexts[i].head, contexts[i].prompt) for i in todo]
            with ctx.progress.bar(len(todo), "reasoning", unit="chain") as bar:
                generated = generator.generate_ids(
                    inputs,
                    max_new_tokens=self.options.max_new_tokens,
                    on_done=bar.update,
                    spans=spans,
                )
            if not self._checked and ctx.step == 0:  # once, at the run's first generation
                self._check_agreement(ctx, wb, inputs, generated)
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

    def _check_agreement(
        self,
        ctx: StepContext,
        wb: WhiteBox,
        inputs: Sequence[Sequence[int]],
        generated: Sequence[Sequence[int]],
    ) -> None:
        """Once per run (step 0, so a resumed run records the same steps): regenerate a few
        chains in torch and note how many llama.cpp matched token for token (and the first
        differing position of each that did not)."""
        self._checked = True
        if self._generator is None or self._generator.name == "torch":
            return
        from promptopt_greater.generators import TorchGenerator

        n = min(self.options.agreement_check, len(inputs))
        with ctx.timed("agreement_check"):
            reference = TorchGenerator(wb, self.batch).generate_ids(
                inputs[:n], max_new_tokens=self.options.max_new_tokens
            )
        diverged = [_first_difference(a, b) for a, b in zip(generated[:n], reference, strict=True)]
        same = sum(d is None for d in diverged)
        ctx.note(
            "generator_agreement",
            {"chains": n, "identical": same, "first_difference": [d for d in diverged if d]},
        )

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


def _first_difference(a: Sequence[int], b: Sequence[int]) -> int | None:
    """The first position where two id sequences differ (None when identical)."""
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _context_size(wb: WhiteBox) -> int:
    """A sequence context for llama.cpp: the model's own, capped at 8192 tokens."""
    config = wb.model.config
    size = getattr(config, "max_position_embeddings", None) or 4096
    return int(min(size, 8192))
