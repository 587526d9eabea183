"""The ``ape`` loss extractor: a prompt's loss is its error rate (1 - its mean score under the
task's metric) on the scoring split (dev), measured with the task model through
:func:`promptopt.evaluation.evaluate` (the instruction on a line after the question); a prompt
scored before reuses the history's score."""

from __future__ import annotations

from pydantic import Field

from promptopt.devloss import EvaluationLossExtractor, EvaluationLossOptions
from promptopt.types import Split

#: The split APE scores instructions on (the authors' held-out ``eval_data``).
SCORE_SPLIT: Split = "dev"


class ApeLossOptions(EvaluationLossOptions):
    """How an instruction's accuracy is measured."""

    #: Reasoning tokens per example (greedy).
    max_new_tokens: int = Field(default=256, ge=1)


class ApeLossExtractor(EvaluationLossExtractor[ApeLossOptions]):
    """Exact dev-split accuracy of each new instruction (a greedy chain per example, then the
    task's extractor and answer: execution accuracy, the authors' score for reasoning tasks)."""

    name = "ape"
    description = "dev-split error rate of each instruction (APE)"
    Options = ApeLossOptions
    score_split = SCORE_SPLIT
