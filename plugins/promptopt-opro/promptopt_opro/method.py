"""The ``opro`` method preset: the reference's initial instruction "Let's solve the problem."
scored on the dev split before the first step, 200 steps of 8 instructions, and the best
instruction on the dev split as the result."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from promptopt.components import Backend, Method, MethodOptions, Selector, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.types import Prompt, PromptLoss
from promptopt_opro.layout import SEPARATOR
from promptopt_opro.loss import SCORE_SPLIT
from promptopt_opro.metaprompt import InstructionPos, Scored, render

#: The reference's initial instruction (``initial_instructions``).
INITIAL_PROMPT = "Let's solve the problem."


class OproMethodOptions(MethodOptions):
    """Steps (the reference's ``num_search_steps``), the initial instruction and its position."""

    steps: int | None = Field(default=200, ge=1)
    instruction_pos: InstructionPos = "Q_end"


class OproMethod(Method[OproMethodOptions]):
    """OPRO (Yang et al., ICLR 2024): an optimizer model reads the best instructions so far with
    their scores and a few exemplar problems, and writes new instructions; black-box, so it runs
    on any backend."""

    name = "opro"
    description = "OPRO: an optimizer model writes instructions from the top scored ones"
    Options = OproMethodOptions
    proposer = "opro"
    loss_extractor = "opro"
    selector = "opro"
    backend = "llamacpp"
    uses_optimizer = True
    #: The reference's settings (google-deepmind/opro, optimize_instructions.py), per component.
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "proposer": {"samples": 8, "temperature": 1.0, "max_instructions": 20,
                     "score_buckets": 100, "exemplars": 3},
    }  # fmt: skip
    shared_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "instruction_pos": ("method", "proposer", "loss_extractor"),
    }

    def _initial_text(self) -> str:
        text = self.options.initial_prompt
        return INITIAL_PROMPT if text is None else " ".join(text.split())

    def check_options(self, task: Task) -> None:
        if not self._initial_text():
            raise PromptoptError(
                "initial_prompt is empty",
                hint="give OPRO an instruction to start from, e.g. "
                '-o initial_prompt="Let\'s solve the problem."',
            )

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        """The reference's initial instruction, on a line after the question."""
        return Prompt(self._initial_text(), separator=SEPARATOR)

    def start(self, ctx: StepContext) -> list[PromptLoss]:
        """Score the initial instruction on the dev split: the first entry of the meta-prompt."""
        return list(ctx.loss_extractor.evaluate(ctx, [ctx.population[0]], split=SCORE_SPLIT))

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """The best instruction on the dev split among every one scored (ties: the earlier)."""
        finalists = selector.finalists(ctx.history)
        best = finalists[0] if finalists else None
        start = ctx.history.lookup(initial, split=SCORE_SPLIT)
        return {
            "best_prompt": best.prompt.text if best else initial.text,
            "instruction_pos": self.options.instruction_pos,
            "dev_accuracy_initial": start.accuracy if start else None,
            "dev_accuracy_final": best.accuracy if best else None,
            "dev_size": len(ctx.task.examples(SCORE_SPLIT)),
            "best_found_at_step": best.step if best else None,
            "instructions_scored": len(finalists),
        }

    def describe(self, task: Task) -> dict[str, Any]:
        """The initial instruction, its position and the first meta-prompt (no score yet)."""
        initial = self._initial_text()
        first = render([Scored(initial, 0.0, -1)], [], pos=self.options.instruction_pos)
        return {
            "initial_prompt": initial,
            "instruction_pos": self.options.instruction_pos,
            "first_meta_prompt_without_exemplars": first.replace("score:\n0\n", "score:\n?\n"),
        }
