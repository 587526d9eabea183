"""The ``llamacpp`` reasoner: greedy chains through the backend's chat template that end at
stop strings (e.g. the extractor's wording), so short local models do not ramble to the limit."""

from __future__ import annotations

from collections.abc import Sequence

from promptopt.components import ComponentOptions, Reasoner, StepContext
from promptopt.types import Chain, Example, Prompt


class StopReasonerOptions(ComponentOptions):
    max_new_tokens: int = 512
    #: Generation ends at the first of these strings (not included in the chain).
    stop: tuple[str, ...] = ()


class StopReasoner(Reasoner):
    """One greedy chain per (prompt, example), in order, with stop strings; any backend."""

    name = "llamacpp"
    description = "greedy chains via the chat template with stop strings (llama.cpp or any backend)"
    Options = StopReasonerOptions
    options: StopReasonerOptions

    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        contexts = [
            [ctx.backend.chat(ctx.task.user_turn(example, prompt)) for example in examples]
            for prompt in prompts
        ]
        flat = [text for row in contexts for text in row]
        outputs = ctx.backend.generate(
            flat,
            max_new_tokens=self.options.max_new_tokens,
            stop=self.options.stop,
            progress=ctx.progress,
        )
        width = len(examples)
        return [
            [
                Chain(example.id, context, outputs[i * width + j])
                for j, (example, context) in enumerate(zip(examples, row, strict=True))
            ]
            for i, row in enumerate(contexts)
        ]
