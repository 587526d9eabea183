"""The ``chat`` reasoner: reasoning chains through any backend's chat template."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field

from promptopt.components import ComponentOptions, Reasoner, StepContext
from promptopt.types import Chain, Example, Prompt


class ChatReasonerOptions(ComponentOptions):
    """Options of the ``chat`` reasoner."""

    max_new_tokens: int = Field(default=1024, ge=1)
    #: Generation ends at the first of these strings (not included in the chain).
    stop: tuple[str, ...] = ()


class ChatReasoner(Reasoner[ChatReasonerOptions]):
    """Greedy reasoning chains through the backend's chat template, all pairs in one batch;
    optional stop strings end a chain early so small models do not ramble to the limit."""

    name = "chat"
    description = "greedy chains via the backend's chat template, with stop strings (any backend)"
    Options = ChatReasonerOptions

    def reason(
        self, ctx: StepContext, prompts: Sequence[Prompt], examples: Sequence[Example]
    ) -> list[list[Chain]]:
        contexts = [
            [ctx.backend.chat(ctx.task.user_turn(example, prompt)) for example in examples]
            for prompt in prompts
        ]
        flat = [text for row in contexts for text in row]
        options = self.options
        outputs = ctx.backend.generate(
            flat, max_new_tokens=options.max_new_tokens, stop=options.stop, progress=ctx.progress
        )
        chains: list[list[Chain]] = []
        for i, row in enumerate(contexts):
            chains.append(
                [
                    Chain(example.id, context, outputs[i * len(examples) + j])
                    for j, (example, context) in enumerate(zip(examples, row, strict=True))
                ]
            )
        return chains
