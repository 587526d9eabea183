"""The selectors: the population update. Step 0 builds the initial population (the best manual
prompts and their paraphrases); afterwards GA keeps the best ``popsize`` of the population and
its children (``ga_mode=topk``, the authors' default) and DE replaces a member by its child only
when the child scores strictly higher on dev. The next population is listed best first."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, Literal, TypeVar

from promptopt.components import Selector, StepContext
from promptopt.history import History, Scored, prompt_key
from promptopt.types import Candidate, Prompt, PromptLoss, Selection
from promptopt_evoprompt.loss import SCORE_SPLIT
from promptopt_evoprompt.population import (
    PopulationSettings,
    dev_loss,
    kept_count,
    ranked,
    unique,
)


class GaSelectorOptions(PopulationSettings):
    """``ga_mode``: ``topk`` (the best popsize of parents and children) or ``std`` (children
    replace their slots)."""

    ga_mode: Literal["topk", "std"] = "topk"


SelectorOptionsT = TypeVar("SelectorOptionsT", bound=PopulationSettings)


class EvolutionSelector(Selector[SelectorOptionsT], Generic[SelectorOptionsT]):
    """Shared by GA and DE: the initialisation at step 0, the bookkeeping afterwards."""

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        population = list(ctx.population)
        scored = ctx.history.lookup
        unscored = [m for m in unique(population) if scored(m, split=SCORE_SPLIT) is None]
        evaluated: list[PromptLoss] = [dev_loss(ctx, m) for m in unscored]
        member_loss = [dev_loss(ctx, member).loss for member in population]
        new = [c.prompt for c in candidates if scored(c.prompt, split=SCORE_SPLIT) is None]
        fresh = unique(new)
        evaluated += ctx.loss_extractor.evaluate(ctx, fresh, split=SCORE_SPLIT) if fresh else []
        losses = {prompt_key(p): loss for p, loss in zip(population, member_loss, strict=True)}
        for candidate, score in zip(candidates, scores, strict=True):
            losses.setdefault(prompt_key(candidate.prompt), float(score))
        ctx.note(
            "scored",
            [
                {"prompt": c.prompt.text, "member": c.meta.get("member", c.meta.get("parent")),
                 "operator": c.meta.get("operator"), "dev_accuracy": 1.0 - float(s)}
                for c, s in zip(candidates, scores, strict=True)
            ],
        )  # fmt: skip
        if ctx.step == 0:
            chosen = initial_population(population, member_loss, candidates, self.options.popsize)
        else:
            chosen = self.update(ctx, population, member_loss, candidates, scores)
        order = ranked([losses[prompt_key(p)] for p in chosen])
        nxt = tuple(chosen[i] for i in order)
        ctx.note(
            "population",
            [{"prompt": p.text, "dev_accuracy": 1.0 - losses[prompt_key(p)]} for p in nxt],
        )
        return Selection(
            prompt=nxt[0],
            loss=losses[prompt_key(nxt[0])],
            evaluated=tuple(evaluated),
            population=nxt,
        )

    def update(
        self,
        ctx: StepContext,
        population: Sequence[Prompt],
        losses: Sequence[float],
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> list[Prompt]:
        """The next population of a generation (any order)."""
        raise NotImplementedError

    def finalists(self, history: History) -> list[Scored]:
        """Every prompt scored on dev, best first (ties: the earlier)."""
        return history.best(len(history), split=SCORE_SPLIT)


def initial_population(
    manual: Sequence[Prompt],
    losses: Sequence[float],
    paraphrases: Sequence[Candidate],
    popsize: int,
) -> list[Prompt]:
    """The authors' ``para_topk`` start: the best ``popsize - popsize // 2`` manual prompts and
    the paraphrases of the best ``popsize // 2``; a paraphrase the guard rejected (or a repeat)
    leaves its place to the next-best manual prompt."""
    order = [manual[i] for i in ranked(losses)]
    chosen = unique([*order[: kept_count(popsize)], *(c.prompt for c in paraphrases)])
    for spare in order[kept_count(popsize) :]:
        if len(chosen) >= popsize:
            break
        chosen = unique([*chosen, spare])
    return chosen[:popsize]


def child_of(candidates: Sequence[Candidate], index: int) -> int | None:
    """The position in ``candidates`` of member ``index``'s child, if it has one."""
    for k, candidate in enumerate(candidates):
        if candidate.meta.get("member", candidate.meta.get("parent")) == index:
            return k
    return None


class GaSelector(EvolutionSelector[GaSelectorOptions]):
    """GA's update: ``topk`` keeps the ``popsize`` best of the population and its children
    (ties: members before children, each in order); ``std`` puts each child in its slot."""

    name = "evoprompt-ga"
    description = "keeps the best popsize of parents and children on dev (EvoPrompt GA)"
    Options = GaSelectorOptions

    def update(
        self,
        ctx: StepContext,
        population: Sequence[Prompt],
        losses: Sequence[float],
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> list[Prompt]:
        opts = self.options
        if opts.ga_mode == "std":
            nxt = list(population)
            for k in range(len(nxt)):
                child = child_of(candidates, k)
                if child is not None:
                    nxt[k] = candidates[child].prompt
            return nxt
        pool = [*population, *(c.prompt for c in candidates)]
        pool_losses = [*losses, *(float(s) for s in scores)]
        merged: dict[object, int] = {}
        for i, p in enumerate(pool):
            merged.setdefault(prompt_key(p), i)
        keep = sorted(merged.values(), key=lambda i: pool_losses[i])[: opts.popsize]
        return [pool[i] for i in keep]


class DeSelector(EvolutionSelector[PopulationSettings]):
    """DE's update: member j's child takes its place only when it scores strictly higher on dev
    (a tie keeps the member, as the authors' ``max`` over the member first)."""

    name = "evoprompt-de"
    description = "a child replaces its member when it scores higher on dev (EvoPrompt DE)"
    Options = PopulationSettings

    def update(
        self,
        ctx: StepContext,
        population: Sequence[Prompt],
        losses: Sequence[float],
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> list[Prompt]:
        nxt = list(population)
        replaced = []
        for k in range(len(nxt)):
            child = child_of(candidates, k)
            if child is not None and float(scores[child]) < losses[k]:
                nxt[k] = candidates[child].prompt
                replaced.append(k)
        ctx.note("replaced", replaced)
        return nxt
