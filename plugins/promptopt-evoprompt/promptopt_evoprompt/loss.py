"""``evoprompt-dev``: a prompt's loss is its error rate (1 - its mean score under the task's
metric) on the dev split, where the authors score every prompt. Measured with the task model
through :func:`promptopt.evaluation.evaluate` (greedy reasoning, the task's extractor and
parser; its on-disk cache means a prompt is never generated twice on one model); a prompt the
run scored before reuses its score from the history."""

from __future__ import annotations

from pydantic import Field

from promptopt.devloss import EvaluationLossExtractor, EvaluationLossOptions
from promptopt.types import Split

#: Where EvoPrompt scores prompts (the authors' dev sample).
SCORE_SPLIT: Split = "dev"


class DevLossOptions(EvaluationLossOptions):
    """How a prompt's dev score is measured."""

    #: Reasoning tokens per example (promptopt eval's default; the authors' davinci: 1000).
    max_new_tokens: int = Field(default=512, ge=1)


class DevLossExtractor(EvaluationLossExtractor[DevLossOptions]):
    """Exact dev-split error rate of every candidate (each prompt measured once per split and
    process; repeats reuse the history)."""

    name = "evoprompt-dev"
    description = "dev-split error rate via promptopt's evaluation and its cache (EvoPrompt)"
    Options = DevLossOptions
    score_split = SCORE_SPLIT
