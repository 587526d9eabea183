"""``answer-logprob``: how likely the model finds the gold answer after a prompt.

Two measures, as every loss extractor has:

* ``score_candidates``, cheap and run for every candidate: the gold answer's negative
  log-probability right after the question, the prompt and the task's extractor, with no
  reasoning in between (one scoring call per example);
* ``evaluate``, exact and run for the few prompts the selector asks about: the model reasons
  first (``ctx.chains``: the run's reasoner, at most once per prompt and step), then the
  same negative log-probability after its reasoning, and the share of examples whose most
  likely option is not the gold one.

Only ``chat``, ``generate`` (through the reasoner) and ``continuation_logprobs`` are used, so
any backend serves.
"""

from __future__ import annotations

from collections.abc import Sequence

from promptopt.components import ComponentOptions, LossExtractor, StepContext
from promptopt.types import Candidate, Chain, Example, Prompt, PromptLoss
from pydantic import Field


class AnswerLogprobOptions(ComponentOptions):
    """``-o score_examples=8``."""

    #: Training examples the cheap score reads (the first ones; every one: a large number).
    score_examples: int = Field(default=4, ge=1)


class AnswerLogprobLoss(LossExtractor[AnswerLogprobOptions]):
    """Gold-answer negative log-probability: without reasoning as the cheap score, after the
    model's reasoning as the exact loss."""

    name = "answer-logprob"
    description = "gold answer log-probability, without then with reasoning (example plugin)"
    Options = AnswerLogprobOptions

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        examples = list(ctx.train[: self.options.score_examples])
        scores = []
        for candidate in candidates:
            prefixes = [self.no_reasoning(ctx, ex, candidate.prompt) for ex in examples]
            nll = [
                -self.answer_logprob(ctx, ex, p) for ex, p in zip(examples, prefixes, strict=True)
            ]
            scores.append(sum(nll) / max(1, len(nll)))
        ctx.count("scored_without_reasoning", len(candidates) * len(examples))
        return scores

    def evaluate(self, ctx: StepContext, prompts: Sequence[Prompt]) -> list[PromptLoss]:
        return [self.exact(ctx, prompt) for prompt in prompts]

    def exact(self, ctx: StepContext, prompt: Prompt) -> PromptLoss:
        """Loss and error rate (1 - the task's mean score: a graded metric gives partial
        credit) of ``prompt`` on ``ctx.train``, after the model's reasoning."""
        chains = ctx.chains(prompt)  # generated once per step, shared with other components
        nll, wrong = 0.0, 0.0
        for example, chain in zip(ctx.train, chains, strict=True):
            before_answer = self.after_reasoning(ctx, example, chain)
            nll -= self.answer_logprob(ctx, example, before_answer)
            predicted = self.predict(ctx, example, chain, before_answer)
            wrong += 1.0 - ctx.task.score(predicted, chain.reasoning, example)
        count = max(1, len(ctx.train))
        return PromptLoss(prompt, nll / count, wrong / count, details={"answer_nll": nll / count})

    # ------------------------------------------------------------------ the text rules

    @staticmethod
    def no_reasoning(ctx: StepContext, example: Example, prompt: Prompt) -> str:
        """The model input with the answer due at once: the user turn (question and prompt, as
        the task lays them out) in the chat template, then the task's extractor."""
        return ctx.backend.chat(ctx.task.user_turn(example, prompt)) + ctx.task.extractor(example)

    @staticmethod
    def after_reasoning(ctx: StepContext, example: Example, chain: Chain) -> str:
        """The model input after its reasoning, ready for the answer (as ``promptopt eval``)."""
        return f"{chain.context}{chain.reasoning.rstrip()} {ctx.task.extractor(example)}"

    @staticmethod
    def answer_logprob(ctx: StepContext, example: Example, prefix: str) -> float:
        """Log-probability of the gold answer's text (``task.target``) after ``prefix``."""
        return ctx.backend.continuation_logprobs(prefix, [ctx.task.target(example)])[0]

    @staticmethod
    def predict(ctx: StepContext, example: Example, chain: Chain, prefix: str) -> str | None:
        """The most likely option after ``prefix``, or for open answers the reasoning's parse."""
        if not example.options:
            return ctx.task.parse(chain.reasoning)
        texts = [ctx.task.continuation(option) for option in example.options]
        logprobs = ctx.backend.continuation_logprobs(prefix, texts)
        return example.options[max(range(len(texts)), key=lambda i: logprobs[i])]
