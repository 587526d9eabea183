"""The ``gpo`` loss extractor: a prompt's loss is its error rate (1 - its mean score under the
task's metric) on the dev split, measured with the task model through
:func:`promptopt.evaluation.evaluate` (its on-disk cache means a prompt is never generated again
on the same model); repeats reuse the run history's score."""

from __future__ import annotations

from pydantic import Field

from promptopt.devloss import EvaluationLossExtractor, EvaluationLossOptions
from promptopt_gpo.retrieval import SCORE_SPLIT


class GpoLossOptions(EvaluationLossOptions):
    """How a prompt's dev accuracy is measured."""

    #: Reasoning tokens per example (the reference's task model: 256, greedy).
    max_new_tokens: int = Field(default=256, ge=1)


class GpoLossExtractor(EvaluationLossExtractor[GpoLossOptions]):
    """Exact dev-split accuracy of each new candidate (one greedy reasoning chain per example,
    then the task's extractor and answer)."""

    name = "gpo"
    description = "dev-split error rate via promptopt's evaluation and its cache (GPO)"
    Options = GpoLossOptions
    score_split = SCORE_SPLIT
