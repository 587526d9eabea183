"""The ``evoprompt-ga`` and ``evoprompt-de`` presets: the authors' manual prompts scored on dev
before the first step; step 0 builds the population (the best manual prompts and paraphrases of
them); steps 1.. are the generations; the final prompt is the final population's best on dev."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from promptopt.components import Backend, Method, MethodOptions, Selector, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.types import Prompt, PromptLoss
from promptopt_evoprompt.loss import SCORE_SPLIT
from promptopt_evoprompt.population import (
    PopulationSettings,
    dev_loss,
    kept_count,
    paraphrased_count,
)
from promptopt_evoprompt.templates import de_template, ga_template, manual_prompts

#: The authors' budget: 10 generations (``--budget 10``), plus our step 0, the initialisation.
GENERATIONS = 10
#: EvoPrompt puts the prompt after the question on its own line (BBH: ``Q: ...\nA: <prompt>``).
SEPARATOR = "\n"


class EvoPromptOptions(MethodOptions, PopulationSettings):
    """The step budget, the population size (shared with the proposer and selector) and the
    manual prompts the population starts from."""

    #: Step 0 builds the population, steps 1..N are the N generations (the authors: N = 10).
    steps: int | None = Field(default=GENERATIONS + 1, ge=1)
    #: The manual prompts; None: the authors' 20 BBH prompts (``BBH/prompts.txt``).
    manual_prompts: tuple[str, ...] | None = None
    #: Use only the first N manual prompts (None: all of them).
    manual_count: int | None = Field(default=None, ge=1)


class EvoPromptMethod(Method[EvoPromptOptions]):
    """EvoPrompt (Guo et al., ICLR 2024): a population of prompts evolved by an optimizer
    model that performs the evolutionary operators; black-box, so any backend."""

    Options = EvoPromptOptions
    loss_extractor = "evoprompt-dev"
    backend = "llamacpp"
    uses_optimizer = True
    #: The smallest population the operator can work with.
    min_popsize: ClassVar[int] = 2
    shared_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "popsize": ("method", "proposer", "selector")
    }

    def manual(self) -> list[str]:
        """The manual prompts of this run, one line each, without repeats (``initial_prompt``,
        when given, first)."""
        opts = self.options
        texts = list(manual_prompts() if opts.manual_prompts is None else opts.manual_prompts)
        if opts.manual_count is not None:
            texts = texts[: opts.manual_count]
        if opts.initial_prompt is not None:
            texts = [opts.initial_prompt, *texts]
        out: list[str] = []
        for text in (" ".join(t.split()) for t in texts):
            if text and text not in out:
                out.append(text)
        return out

    def check_options(self, task: Task) -> None:
        """A population the operator can evolve, and enough manual prompts to start it."""
        opts = self.options
        if opts.popsize < self.min_popsize:
            raise PromptoptError(
                f"{self.name} needs popsize >= {self.min_popsize}, got {opts.popsize}",
                hint=f"pass -o popsize={max(self.min_popsize, 10)} (the authors use 10)",
            )
        if any(not t.strip() for t in opts.manual_prompts or ()):
            raise PromptoptError(
                "manual_prompts holds an empty prompt", hint="give one instruction per entry"
            )
        need = kept_count(opts.popsize)
        have = len(self.manual())
        if have < need:
            raise PromptoptError(
                f"popsize={opts.popsize} starts from the best {need} manual prompts, but "
                f"{have} are given",
                hint="give more manual_prompts (or a larger manual_count)"
                + (f", or pass -o popsize={2 * have}" if have else ""),
            )

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        return self.initial_population(task, backend)[0]

    def initial_population(self, task: Task, backend: Backend) -> list[Prompt]:
        """Every manual prompt, on a line after the question; step 0 keeps the best."""
        return [Prompt(text, separator=SEPARATOR) for text in self.manual()]

    def start(self, ctx: StepContext) -> list[PromptLoss]:
        """Score every manual prompt on dev (the authors evaluate them all to rank them)."""
        scored = ctx.loss_extractor.evaluate(ctx, list(ctx.population), split=SCORE_SPLIT)
        ctx.note("manual", [{"prompt": s.prompt.text, "dev_accuracy": s.accuracy} for s in scored])
        return list(scored)

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """The final population's best on dev (ties: the earlier member)."""
        population = list(ctx.population)
        losses = [dev_loss(ctx, p) for p in population]
        best = min(range(len(population)), key=lambda i: (losses[i].loss, i))
        start = ctx.history.lookup(initial, split=SCORE_SPLIT)
        return {
            "best_prompt": population[best].text,
            "initial_prompt": initial.text,
            "prompt_separator": initial.separator,
            "dev_accuracy_initial": start.accuracy if start else None,
            "dev_accuracy_final": losses[best].accuracy,
            "dev_size": len(ctx.task.examples(SCORE_SPLIT)),
            "dev_metric": f"mean {ctx.task.metric_name} score of the greedy answer "
            "(promptopt.evaluation, generate)",
            "popsize": self.options.popsize,
            "generations": max(0, ctx.step - 1),
            "final_population": [
                {"prompt": p.text, "dev_accuracy": loss.accuracy}
                for p, loss in zip(population, losses, strict=True)
            ],
            "prompts_scored": len(
                {e.prompt.text for e in ctx.history.entries if e.split == SCORE_SPLIT}
            ),
        }

    def describe(self, task: Task) -> dict[str, Any]:
        """The population plan and the operator's template (unfilled)."""
        opts = self.options
        return {
            "popsize": opts.popsize,
            "generations": self.steps - 1,
            "manual_prompts": self.manual(),
            "initialisation": f"the best {kept_count(opts.popsize)} manual prompts on dev plus "
            f"paraphrases of the best {paraphrased_count(opts.popsize)}",
            "template": self.template().splitlines(),
        }

    def template(self) -> str:
        """The operator's evolution template."""
        raise NotImplementedError


class EvoPromptGa(EvoPromptMethod):
    """EvoPrompt's genetic algorithm: roulette-wheel parents, LLM crossover and mutation, the
    best popsize of parents and children survive."""

    name = "evoprompt-ga"
    description = "EvoPrompt GA: an optimizer model crosses and mutates roulette-wheel parents"
    proposer = "evoprompt-ga"
    selector = "evoprompt-ga"

    def template(self) -> str:
        return ga_template()


class EvoPromptDe(EvoPromptMethod):
    """EvoPrompt's differential evolution: each member against a child built from the
    difference of two donors and the best prompt; the better stays."""

    name = "evoprompt-de"
    description = "EvoPrompt DE: an optimizer model mutates donor differences and crosses them"
    proposer = "evoprompt-de"
    selector = "evoprompt-de"
    #: j plus three distinct donors (the authors' ``np.random.choice(candidates, 3)``).
    min_popsize: ClassVar[int] = 4

    def template(self) -> str:
        return de_template("v1")
