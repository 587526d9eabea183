"""The proposers: the optimizer model fills the authors' templates. Step 0 paraphrases the best
manual prompts (the initialisation); every later step is one generation, one child per member
of the population: GA crosses two roulette-wheel parents and mutates the result, DE mutates the
difference of two donors and crosses it with the best prompt and the member."""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, Literal, TypeVar

from pydantic import Field

from promptopt.candidateguards import GuardContext, degenerate
from promptopt.components import Proposer, StepContext
from promptopt.types import Candidate, Prompt
from promptopt_evoprompt.parsing import parse
from promptopt_evoprompt.population import PopulationSettings, dev_loss, paraphrased_count, ranked
from promptopt_evoprompt.templates import (
    DeTemplate,
    de_template,
    fill,
    ga_template,
    paraphrase_template,
)

#: The note that lists every filled template of a step with the outputs it got.
FILLED = "filled_templates"


class EvolutionOptions(PopulationSettings):
    """Sampling of the optimizer model (the authors': temperature 0.5, top-p 1, 1000 tokens,
    one sample per request) and the local guard."""

    temperature: float = Field(default=0.5, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    optimizer_max_tokens: int = Field(default=1000, ge=1)
    #: Guard: an evolution output without ``<prompt>`` is rejected (False: the authors' fallback
    #: to the whole output).
    require_tags: bool = True
    #: Guard: extra requests (each with its own seed) after a rejected output.
    retries: int = Field(default=2, ge=0)
    #: Guard: shorter outputs are rejected (too short to be an instruction).
    min_words: int = Field(default=3, ge=1)
    #: Guard: longer outputs are rejected (the whole answer, not a prompt).
    max_words: int = Field(default=150, ge=1)


class GaOptions(EvolutionOptions):
    """``sel_mode``: how parents are chosen (the authors' default: the roulette wheel)."""

    sel_mode: Literal["wheel", "random", "tour"] = "wheel"


class DeOptions(EvolutionOptions):
    """``template``: the DE template (v1, the authors' default, uses the best prompt as Prompt
    3); ``donor_random``: Prompt 3 a random donor instead of the best."""

    template: DeTemplate = "v1"
    donor_random: bool = False


OptionsT = TypeVar("OptionsT", bound=EvolutionOptions)


@dataclasses.dataclass
class _StepState:
    """What one step's proposer calls share: the member index of the next call, and what the
    operator drew once per step (GA's parent pool) or tracks through the step (DE's best)."""

    calls: int = 0
    scores: list[float] | None = None
    parents: list[Prompt] | None = None
    best: tuple[Prompt, float] | None = None
    children: list[tuple[int, Prompt]] = dataclasses.field(default_factory=list)
    seen_children: int = 0


class EvolutionProposer(Proposer[OptionsT], Generic[OptionsT]):
    """One candidate per member call: a paraphrase at step 0, a child afterwards."""

    operator: str = ""

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._ctx: StepContext | None = None
        self._state = _StepState()

    def _step_state(self, ctx: StepContext) -> _StepState:
        """The state of ``ctx``'s step (fresh for a new context: the loop makes one per step)."""
        if ctx is not self._ctx:
            self._ctx, self._state = ctx, _StepState()
        return self._state

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        state = self._step_state(ctx)
        index = _member_index(ctx.population, prompt, state.calls)
        state.calls += 1
        if state.scores is None:
            state.scores = [1.0 - dev_loss(ctx, p).loss for p in ctx.population]
        if ctx.step == 0:
            return self._paraphrase(ctx, state, index, prompt)
        return self._evolve(ctx, state, index, prompt)

    # ----------------------------------------------------------------- initialisation

    def _paraphrase(
        self, ctx: StepContext, state: _StepState, index: int, prompt: Prompt
    ) -> list[Candidate]:
        """A paraphrase of ``prompt`` when it is one of the ``popsize // 2`` best members."""
        assert state.scores is not None
        order = ranked([-s for s in state.scores])
        if index not in order[: paraphrased_count(self.options.popsize)]:
            return []
        filled = fill(paraphrase_template(), {"<input>": prompt.text})
        return self._ask(ctx, filled, prompt, index, "paraphrase", [prompt], tagged=False)

    # ----------------------------------------------------------------- generations

    @abstractmethod
    def _evolve(
        self, ctx: StepContext, state: _StepState, index: int, prompt: Prompt
    ) -> list[Candidate]:
        """The child of member ``index`` (or none when every output failed the guard)."""

    def _ask(
        self,
        ctx: StepContext,
        filled: str,
        member: Prompt,
        index: int,
        operator: str,
        parents: Sequence[Prompt],
        *,
        tagged: bool,
    ) -> list[Candidate]:
        """Send ``filled`` to the optimizer model (one sample per request, a new seed per
        retry) until an output passes the guard; note the template, outputs and verdicts."""
        opts = self.options
        optimizer = ctx.optimizer or ctx.backend
        chat = optimizer.chat(filled)
        outputs: list[dict[str, Any]] = []
        child: str | None = None
        for attempt in range(opts.retries + 1):
            seed = ctx.rng.getrandbits(31)
            with ctx.timed("optimizer"):
                (raw,) = optimizer.generate(
                    [chat],
                    max_new_tokens=opts.optimizer_max_tokens,
                    temperature=opts.temperature,
                    top_p=opts.top_p,
                    seed=seed,
                    n=1,
                )
            parsed = parse(
                raw,
                tagged=tagged,
                min_words=opts.min_words,
                max_words=opts.max_words,
                require_tags=opts.require_tags,
            )
            outputs.append(
                {"attempt": attempt, "seed": seed, "text": raw, "prompt": parsed.text,
                 "rejected": parsed.reason or None}
            )  # fmt: skip
            reason = parsed.reason or None
            if parsed.text is not None:
                guards = GuardContext.of(
                    prompts=[member.text],
                    questions=[ex.question for ex in ctx.train],
                    min_words=opts.min_words,
                )
                reason = degenerate(parsed.text, guards)
            outputs[-1]["rejected"] = reason
            if parsed.text is not None and reason is None:
                child = parsed.text
                break
        entry = {
            "member": index,
            "operator": operator,
            "parents": [p.text for p in parents],
            "meta_prompt": filled,
            "outputs": outputs,
            "child": child,
        }
        ctx.note(FILLED, [*ctx.notes.get(FILLED, []), entry])
        if child is None:
            ctx.count("children_rejected")
            return []
        candidate = dataclasses.replace(member, text=child)
        return [Candidate(candidate, child, {"member": index, "operator": operator})]


class GaProposer(EvolutionProposer[GaOptions]):
    """GA: parents drawn from a roulette wheel over the dev scores (once per generation), the
    optimizer crosses and mutates them with the authors' GA template."""

    name = "evoprompt-ga"
    description = "optimizer model crosses and mutates roulette-wheel parents (EvoPrompt GA)"
    Options = GaOptions
    operator = "ga"

    def _evolve(
        self, ctx: StepContext, state: _StepState, index: int, prompt: Prompt
    ) -> list[Candidate]:
        population = list(ctx.population)
        assert state.scores is not None
        if len(population) < 2:
            return []
        if state.parents is None:
            state.parents = parent_pool(ctx, population, state.scores, self.options.sel_mode)
        pool = state.parents
        if self.options.sel_mode == "tour":
            score = dict(zip((p.text for p in population), state.scores, strict=True))
            a = max(ctx.rng.sample(pool, 2), key=lambda p: score[p.text])
            b = max(ctx.rng.sample(pool, 2), key=lambda p: score[p.text])
        else:
            a, b = ctx.rng.sample(pool, 2)
        filled = fill(ga_template(), {"<prompt1>": a.text, "<prompt2>": b.text})
        return self._ask(ctx, filled, prompt, index, "ga", [a, b], tagged=True)


def parent_pool(
    ctx: StepContext, population: Sequence[Prompt], scores: Sequence[float], sel_mode: str
) -> list[Prompt]:
    """GA's parent pool for one generation: ``wheel`` draws ``len(population)`` members with
    replacement, each with probability score / total (uniform when every score is 0, where the
    authors' ``p=fitness/fitness.sum()`` is undefined); ``random`` and ``tour`` use the
    population itself."""
    if sel_mode != "wheel":
        return list(population)
    total = sum(scores)
    weights = list(scores) if total > 0 else None
    drawn = ctx.rng.choices(range(len(population)), weights=weights, k=len(population))
    ctx.note("wheel", drawn)
    return [population[i] for i in drawn]


class DeProposer(EvolutionProposer[DeOptions]):
    """DE: for member j, three donors from the other members (the third replaced by the best
    prompt so far, unless ``donor_random``); the optimizer mutates the donors' difference and
    crosses it with the best prompt and member j (the authors' DE template)."""

    name = "evoprompt-de"
    description = "optimizer model mutates donor differences, crosses with the best (EvoPrompt DE)"
    Options = DeOptions
    operator = "de"

    def _evolve(
        self, ctx: StepContext, state: _StepState, index: int, prompt: Prompt
    ) -> list[Candidate]:
        population = list(ctx.population)
        assert state.scores is not None
        others = [p for k, p in enumerate(population) if k != index]
        if len(others) < 2:
            return []
        best = self._best_so_far(ctx, state, population)
        donors = ctx.rng.sample(others, min(3, len(others)))
        a, b = donors[0], donors[1]
        c = donors[2] if len(donors) == 3 and self.options.donor_random else best
        values = {"<prompt0>": prompt.text, "<prompt1>": a.text, "<prompt2>": b.text}
        values["<prompt3>"] = c.text
        filled = fill(de_template(self.options.template), values)
        candidates = self._ask(ctx, filled, prompt, index, "de", [a, b, c], tagged=True)
        state.children += [(index, cand.prompt) for cand in candidates]
        return candidates

    def _best_so_far(
        self, ctx: StepContext, state: _StepState, population: Sequence[Prompt]
    ) -> Prompt:
        """The best prompt so far: the population's best at the step's start (ties: the earlier
        member), replaced by any child of this step that scored strictly higher (the authors
        update ``cur_best_prompt`` after each member)."""
        assert state.scores is not None
        if state.best is None:
            first = ranked([-s for s in state.scores])[0]
            state.best = (population[first], state.scores[first])
        for _, child in state.children[state.seen_children :]:
            score = 1.0 - dev_loss(ctx, child).loss
            if score > state.best[1]:
                state.best = (child, score)
        state.seen_children = len(state.children)
        return state.best[0]


def _member_index(population: Sequence[Prompt], prompt: Prompt, calls: int) -> int:
    """The index of ``prompt`` in the population: the loop asks members in order, so the n-th
    call of a step is member n (this tells repeated texts apart); else its first position."""
    if calls < len(population) and population[calls] == prompt:
        return calls
    for k, member in enumerate(population):
        if member == prompt:
            return k
    return 0
