"""The ``opro`` loss extractor: a prompt's loss is its error rate (1 - its mean score under the
task's metric) on the scoring split (dev), measured with the task model through
:func:`promptopt.evaluation.evaluate` with the instruction at its position; a prompt scored
before reuses the history's score."""

from __future__ import annotations

from pydantic import Field

from promptopt.components import Backend, StepContext, Task
from promptopt.devloss import EvaluationLossExtractor, EvaluationLossOptions
from promptopt.types import Prompt, Split
from promptopt_opro.layout import placed
from promptopt_opro.metaprompt import InstructionPos

#: The split OPRO scores instructions on (the reference's optimization set).
SCORE_SPLIT: Split = "dev"


class OproLossOptions(EvaluationLossOptions):
    """How an instruction's accuracy is measured."""

    #: Where the task model sees the instruction (shared with the method and the proposer).
    instruction_pos: InstructionPos = "Q_end"
    #: Reasoning tokens per example (greedy, as the reference's scorer at temperature 0).
    max_new_tokens: int = Field(default=256, ge=1)


class OproLossExtractor(EvaluationLossExtractor[OproLossOptions]):
    """Exact scoring-split accuracy of each new instruction (a greedy chain per example, then
    the task's extractor and answer)."""

    name = "opro"
    description = "dev-split error rate with the instruction at its position (OPRO)"
    Options = OproLossOptions
    score_split = SCORE_SPLIT

    def placed(self, ctx: StepContext, prompt: Prompt) -> tuple[Task, Backend]:
        """The instruction at ``instruction_pos`` (Q_begin, Q_end or A_begin)."""
        return placed(ctx.task, ctx.backend, prompt, self.options.instruction_pos)
