"""The ``gpo`` method preset: the reference's initial prompt after the question on a new line,
scored on the dev split before the first step; T steps from the train size; the final prompt is
the best on the dev split among every prompt the run scored."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from promptopt.components import Backend, Method, MethodOptions, Selector, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.types import Prompt, PromptLoss
from promptopt_gpo.metaprompt import UNKNOWN_SCORE, Entry
from promptopt_gpo.proposer import run_logger, steps_of
from promptopt_gpo.retrieval import SCORE_SPLIT, accuracy_of, trajectory
from promptopt_gpo.schedule import budget_schedule, edit_budget
from promptopt_gpo.settings import SHARED_KEYS, TrajectorySettings
from promptopt_gpo.smallmeta import compose

#: The reference's first prompt (zero-shot chain of thought).
INITIAL_PROMPT = "Let's think step by step."
#: GPO puts the prompt after the question, on its own line (``question + "\n" + prompt``).
SEPARATOR = "\n"


class GpoMethodOptions(MethodOptions, TrajectorySettings):
    """The method's options: the trajectory settings it shares with the proposer (T, budget,
    exemplars, score scale), the initial prompt and the seed."""

    #: None: T from the train size (3 epochs of ceil-ish n/8 steps, shared/GPO.md).
    steps: int | None = Field(default=None, ge=1)
    #: The run's seed (``--seed``): it draws the exemplars the dry run shows.
    seed: int = 0


class GpoMethod(Method[GpoMethodOptions]):
    """GPO (Tang et al., AAAI 2025): an optimizer model reads the scored trajectory of earlier
    prompts and writes whole new prompts; black-box, so it runs on any backend. It names no
    reasoner: candidates are scored through promptopt.evaluation, which generates their
    reasoning."""

    name = "gpo"
    description = "GPO: an optimizer model rewrites the prompt from its scored trajectory"
    Options = GpoMethodOptions
    proposer = "gpo"
    loss_extractor = "gpo"
    selector = "gpo"
    backend = "llamacpp"
    uses_optimizer = True
    #: The hyperparameters of the authors' final configuration (RUCAIBox/GPO: GPO.sh and
    #: src/optimization/optimize.py), per component.
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "proposer": {
            "k": 3,
            "retrieval": "relevance",
            "samples": 8,
            "temperature": 1.0,
            "optimizer_max_tokens": 512,
        },
        "loss_extractor": {"max_new_tokens": 256},
    }
    shared_options: ClassVar[dict[str, tuple[str, ...]]] = {
        key: ("method", "proposer") for key in SHARED_KEYS
    }

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._total: int | None = None

    @property
    def steps(self) -> int:
        """The ``steps`` option, else T from the train size (counted by ``check_options``)."""
        if self.options.steps is not None:
            return self.options.steps
        if self._total is None:
            raise PromptoptError(
                "the gpo method counts its steps from the task's train split",
                hint="call check_options(task) first, or pass -o steps=N",
            )
        return self._total

    def _initial_text(self) -> str:
        text = self.options.initial_prompt
        return INITIAL_PROMPT if text is None else " ".join(text.split())

    def check_options(self, task: Task) -> None:
        """T from the train size; a consistent budget."""
        opts = self.options
        if opts.budget_min > opts.budget_max:
            raise PromptoptError(
                f"budget_min={opts.budget_min} is larger than budget_max={opts.budget_max}",
                hint="the edit budget decays from budget_max to budget_min",
            )
        self._total = steps_of(opts, len(task.examples("train")))

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        """The reference's zero-shot CoT (or ``initial_prompt``) on a line after the question."""
        return Prompt(self._initial_text(), separator=SEPARATOR)

    def start(self, ctx: StepContext) -> list[PromptLoss]:
        """Score the initial prompt on the dev split: it opens the trajectory."""
        log = run_logger(ctx)
        log.info("gpo: %d steps, initial prompt scored on %d dev examples", self.steps,
                 len(ctx.task.examples(SCORE_SPLIT)))  # fmt: skip
        scored = ctx.loss_extractor.evaluate(ctx, [ctx.population[0]], split=SCORE_SPLIT)
        log.info("gpo: initial prompt %r: dev accuracy %.4f", scored[0].prompt.text,
                 1.0 - scored[0].error_rate)  # fmt: skip
        return list(scored)

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """The history's best prompt on the dev split (the initial prompt included)."""
        finalists = selector.finalists(ctx.history)
        best = finalists[0] if finalists else None
        start = ctx.history.lookup(initial, split=SCORE_SPLIT)
        points = trajectory(ctx.history)
        return {
            "best_prompt": best.prompt.text if best else initial.text,
            "initial_prompt": initial.text,
            "prompt_separator": initial.separator,
            "dev_accuracy_initial": accuracy_of(start) if start else None,
            "dev_accuracy_final": accuracy_of(best) if best else None,
            "dev_size": len(ctx.task.examples(SCORE_SPLIT)),
            "dev_metric": (
                "accuracy of the greedy answer (promptopt.evaluation, generate)"
                if ctx.task.metric_name == "exact"
                else f"mean {ctx.task.metric_name} score of the greedy answer "
                "(promptopt.evaluation, generate)"
            ),
            "best_found_at_step": best.step if best else None,
            "steps_planned": self.steps,
            "prompts_scored": len(finalists),
            "trajectory": [
                {"step": p.step, "prompt": p.prompt.text, "dev_accuracy": p.accuracy}
                for p in points
            ],
            # what the proposer's retrieval used, from the steps' reports (None: no step ran)
            "embedding": ctx.last_note("embedding"),
            "score_scale": self.options.score_scale,
        }

    def describe(self, task: Task) -> dict[str, Any]:
        """T, the budget schedule, the exemplars and the first meta-prompt (the initial prompt's
        score is unknown before a model runs)."""
        opts = self.options
        train = task.examples("train")
        total = steps_of(opts, len(train))
        initial = Entry(self._initial_text(), None)
        budget = edit_budget(1, total, opts.budget_max, opts.budget_min)
        meta, exemplars = compose(
            opts.meta_prompt,
            [initial],
            initial,
            train,
            count=opts.exemplars,
            seed=opts.seed,
            budget=budget,
            scale=opts.score_scale,
        )
        return {
            "initial_prompt": initial.text,
            "prompt_layout": "question, new line, prompt",
            "steps_T": total,
            "budget_schedule": budget_schedule(total, opts.budget_max, opts.budget_min),
            "exemplars": [e.id for e in exemplars],
            "initial_score": UNKNOWN_SCORE,
            "first_meta_prompt": meta.splitlines(),
        }


class GpoSmallMethod(GpoMethod):
    """GPO for small optimizer models: the short meta-prompt (at most one short exemplar, a
    worked format example, the best prompt last), the answer prefilled with <START> and cut at
    <END>, and short optimizer answers."""

    name = "gpo-small"
    description = "GPO with a short meta-prompt and a prefilled answer, for small optimizer models"
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "method": {"meta_prompt": "small", "exemplars": 1},
        "proposer": {
            **GpoMethod.defaults["proposer"],
            "meta_prompt": "small",
            "exemplars": 1,
            "prefill": True,
            "optimizer_max_tokens": 96,
        },
        "loss_extractor": dict(GpoMethod.defaults["loss_extractor"]),
    }
