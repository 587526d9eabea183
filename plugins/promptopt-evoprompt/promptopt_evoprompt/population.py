"""What the proposers, selectors and the method share: the population size, each member's dev
score, the ranking of a population and the initialisation's split into kept manual prompts and
paraphrased ones."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from promptopt.components import ComponentOptions, StepContext
from promptopt.history import prompt_key
from promptopt.types import Prompt, PromptLoss
from promptopt_evoprompt.loss import SCORE_SPLIT

#: The authors' population size (``--popsize 10``, BBH/scripts/run_*_cot.sh).
POPSIZE = 10


class PopulationSettings(ComponentOptions):
    """The population size, shared by the method, its proposer and its selector."""

    popsize: int = Field(default=POPSIZE, ge=2)


def paraphrased_count(popsize: int) -> int:
    """How many of the best manual prompts are paraphrased at the start (``k // 2``)."""
    return popsize // 2


def kept_count(popsize: int) -> int:
    """How many of the best manual prompts the initial population keeps (``k // 2`` for the
    authors' even sizes; one more for an odd size, so the population has ``popsize`` members)."""
    return popsize - popsize // 2


def dev_loss(ctx: StepContext, prompt: Prompt) -> PromptLoss:
    """The prompt's dev evaluation: the history's, else measured now (the authors evaluate a
    member they have no score for)."""
    earlier = ctx.history.lookup(prompt, split=SCORE_SPLIT)
    if earlier is not None:
        return earlier.as_loss()
    return ctx.loss_extractor.evaluate(ctx, [prompt], split=SCORE_SPLIT)[0]


def ranked(losses: Sequence[float]) -> list[int]:
    """Indices from the lowest loss to the highest; ties keep their order (Python's stable sort,
    as the authors' ``sort(reverse=True)`` on scores)."""
    return sorted(range(len(losses)), key=lambda i: losses[i])


def unique(prompts: Sequence[Prompt]) -> list[Prompt]:
    """The prompts without repeats, first occurrence kept."""
    seen: set[object] = set()
    out = []
    for prompt in prompts:
        key = prompt_key(prompt)
        if key not in seen:
            seen.add(key)
            out.append(prompt)
    return out
