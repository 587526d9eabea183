"""The ``ape`` method preset: no starting instruction (the run's baseline is the bare
question), one step of instruction induction by default (the authors' code), more steps of
Monte-Carlo resampling with ``-o steps=N``, and the best instruction on the dev split as the
result."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from promptopt.components import Backend, Method, MethodOptions, Selector, StepContext, Task
from promptopt.types import Prompt
from promptopt_ape.loss import SCORE_SPLIT
from promptopt_ape.templates import forward_query

#: APE's instructions go after the question on a new line (``question + "\n" + instruction``).
SEPARATOR = "\n"


class ApeMethodOptions(MethodOptions):
    """Steps: 1 is the authors' single induction pass; each further step is one round of the
    iterative Monte-Carlo search."""

    steps: int | None = Field(default=1, ge=1)


class ApeMethod(Method[ApeMethodOptions]):
    """APE (Zhou et al., ICLR 2023): an optimizer model infers the instruction from
    demonstration pairs, the task model scores every candidate on held-out examples, the best
    wins; optional rounds resample variations of the best. Black-box: any backend."""

    name = "ape"
    description = "APE: instructions induced from demonstrations, scored, resampled"
    Options = ApeMethodOptions
    proposer = "ape"
    loss_extractor = "ape"
    selector = "ape"
    backend = "llamacpp"
    uses_optimizer = True
    #: The authors' instruction-induction settings (experiments/run_instruction_induction.py
    #: and experiments/configs/instruction_induction.yaml).
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "proposer": {"subsamples": 3, "demos": 5, "prompts_per_subsample": 30,
                     "temperature": 0.9, "top_p": 0.9, "optimizer_max_tokens": 50},
    }  # fmt: skip

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        """The run's baseline: ``initial_prompt`` if given, else the bare question (APE starts
        from demonstrations, not from an instruction)."""
        return Prompt(" ".join((self.options.initial_prompt or "").split()), separator=SEPARATOR)

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """The best instruction on the dev split among every one scored (ties: the earlier)."""
        finalists = selector.finalists(ctx.history)
        best = finalists[0] if finalists else None
        return {
            "best_prompt": best.prompt.text if best else initial.text,
            "dev_accuracy_final": best.accuracy if best else None,
            "dev_size": len(ctx.task.examples(SCORE_SPLIT)),
            "best_found_at_step": best.step if best else None,
            "instructions_scored": len(finalists),
        }

    def describe(self, task: Task) -> dict[str, Any]:
        """An induction query over the first training examples (the run draws its own)."""
        train = task.examples("train")
        return {"induction_query_example": forward_query(train[:5]).splitlines()}
