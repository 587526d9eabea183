"""The ``ape`` proposer. Step 0, instruction induction: ``subsamples`` queries, each showing
``demos`` training pairs through the forward template, each sampled ``prompts_per_subsample``
times. Later steps, the iterative Monte-Carlo search: variations of each kept instruction
through the paper's resampling template, as many in all as step 0 proposed."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from promptopt.candidateguards import GuardContext, degenerate
from promptopt.components import Backend, ComponentOptions, Proposer, StepContext
from promptopt.types import Candidate, Prompt
from promptopt_ape.parsing import first_line, rejection
from promptopt_ape.templates import FORWARD_OPENING, forward_query, resample_query


class ApeProposerOptions(ComponentOptions):
    """The authors' generation settings and the local guards."""

    #: Induction queries, each with its own demonstrations (``num_subsamples``).
    subsamples: int = Field(default=3, ge=1)
    #: Demonstrations per query (``num_demos``).
    demos: int = Field(default=5, ge=1)
    #: Samples per query (``num_prompts_per_subsample``).
    prompts_per_subsample: int = Field(default=30, ge=1)
    temperature: float = Field(default=0.9, ge=0.0)
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    #: Tokens per sample (``max_tokens``).
    optimizer_max_tokens: int = Field(default=50, ge=1)
    #: Open the optimizer's answer with "The instruction was to" so a chat model completes the
    #: template's last sentence, as the authors' completion model did.
    open_answer: bool = True
    #: Guards: instructions with fewer or more words are rejected.
    min_words: int = Field(default=2, ge=1)
    max_words: int = Field(default=50, ge=1)


class ApeProposer(Proposer[ApeProposerOptions]):
    """Induces instructions from demonstrations (step 0), then resamples variations of the
    instructions the selector kept (later steps)."""

    name = "ape"
    description = "instruction induction from demonstrations, then variations of the best (APE)"
    Options = ApeProposerOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        #: The instructions kept so far in the current step (its members' calls share them).
        self._kept: tuple[int, set[str]] = (-1, set())

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        optimizer = ctx.optimizer or ctx.backend
        opts = self.options
        queries: list[dict[str, Any]] = []
        if ctx.step == 0:
            ctx.note("stage", "induction")
            for _ in range(opts.subsamples):
                picks = ctx.rng.sample(range(len(ctx.train)), min(opts.demos, len(ctx.train)))
                shown = [ctx.train[i] for i in picks]
                opening = FORWARD_OPENING if opts.open_answer else ""
                chat = optimizer.chat(forward_query(shown), assistant_prefix=opening)
                queries.append({"demos": [e.id for e in shown], "chat": chat,
                                "n": opts.prompts_per_subsample})  # fmt: skip
        else:
            ctx.note("stage", "resample")
            total = opts.subsamples * opts.prompts_per_subsample
            n = math.ceil(total / max(1, len(ctx.population)))
            chat = optimizer.chat(resample_query(prompt.text))
            queries.append({"parent": prompt.text, "chat": chat, "n": n})
        outputs, rejected, kept = self._sample(ctx, optimizer, queries)
        if ctx.step == 0:
            ctx.note("meta_prompts", [q["chat"] for q in queries])
        else:
            ctx.notes.setdefault("meta_prompts", []).append(queries[0]["chat"])
        ctx.notes.setdefault("optimizer_outputs", []).extend(outputs)
        ctx.notes.setdefault("rejected", []).extend(rejected)
        return [
            Candidate(Prompt(text, separator=prompt.separator), text, meta)
            for text, meta in kept.items()
        ]

    def _sample(
        self, ctx: StepContext, optimizer: Backend, queries: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, dict[str, Any]]]:
        """Every query's samples, the rejections and the kept instructions (deduplicated, as
        the authors' ``set``, keeping the first)."""
        opts = self.options
        if self._kept[0] != ctx.step:
            self._kept = (ctx.step, set())
        earlier = self._kept[1]
        outputs: list[dict[str, Any]] = []
        rejected: list[dict[str, Any]] = []
        kept: dict[str, dict[str, Any]] = {}
        for q, query in enumerate(queries):
            seed = ctx.rng.getrandbits(31)
            with ctx.timed("optimizer"):
                texts = optimizer.generate(
                    [query["chat"]],
                    max_new_tokens=opts.optimizer_max_tokens,
                    temperature=opts.temperature,
                    top_p=opts.top_p,
                    seed=seed,
                    n=query["n"],
                )
            for j, raw in enumerate(texts):
                index = len(ctx.notes.get("optimizer_outputs", [])) + len(outputs)
                source = {k: v for k, v in query.items() if k in ("demos", "parent")}
                outputs.append({"query": q, "seed": seed, "sample": j, "text": raw, **source})
                text = first_line(raw)
                reason = rejection(text, min_words=opts.min_words, max_words=opts.max_words)
                guards = GuardContext.of(
                    prompts=[query["parent"]] if "parent" in query else [],
                    questions=[ex.question for ex in ctx.train],
                    min_words=opts.min_words,
                )
                reason = reason or degenerate(text, guards) or ""
                if not reason and (text in kept or text in earlier):
                    reason = "duplicate"
                if reason:
                    rejected.append({"output": index, "text": text, "reason": reason})
                    continue
                kept[text] = {"output": index}
        earlier.update(kept)
        return outputs, rejected, kept
