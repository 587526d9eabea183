"""``phrase-search``: the method preset. It names its four components (the reasoner is the
core's ``chat``), gives them defaults, says where a run starts, and makes the final choice."""

from __future__ import annotations

from typing import Any, ClassVar

from promptopt.components import Backend, Method, MethodOptions, Selector, StepContext, Task
from promptopt.errors import PromptoptError
from promptopt.types import Prompt
from pydantic import Field

INITIAL_PROMPT = "Let's think step by step."


class PhraseSearchOptions(MethodOptions):
    """Options of the method itself (``steps`` and ``initial_prompt`` come from MethodOptions)."""

    steps: int = Field(default=10, ge=1)
    #: Finalists checked on the dev split at the end (0: the lowest training loss wins).
    finalists: int = Field(default=3, ge=0)


class PhraseSearchMethod(Method[PhraseSearchOptions]):
    """Sentence-level hill climbing on the gold answer's log-probability; any backend."""

    name = "phrase-search"
    description = "adds, drops and swaps instruction sentences by answer log-prob (example plugin)"
    Options = PhraseSearchOptions
    proposer = "phrase-edits"
    reasoner = "chat"  # the core's: greedy chains through the backend's chat template
    loss_extractor = "answer-logprob"
    selector = "climb"
    backend = "llamacpp"  # the default; --backend NAME picks any other
    #: Per component kind; each applies only while the method's own choice of that kind runs.
    defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "reasoner": {"max_new_tokens": 128, "stop": ["\n\n"]},
        "selector": {"shortlist": 2},
    }

    def check_options(self, task: Task) -> None:
        """Before any model loads: a start that is not empty."""
        if self.options.initial_prompt is not None and not self.options.initial_prompt.strip():
            raise PromptoptError(
                "initial_prompt is empty",
                hint="give a sentence, e.g. -o initial_prompt='Be brief.'",
            )

    def initial_prompt(self, task: Task, backend: Backend) -> Prompt:
        return Prompt(self.options.initial_prompt or INITIAL_PROMPT)

    def finalize(self, ctx: StepContext, initial: Prompt, selector: Selector) -> dict[str, Any]:
        """The initial prompt and the selector's best finalists, evaluated on the dev split;
        the highest dev accuracy wins (ties: the lower dev loss, then the earlier)."""
        finalists = [s.prompt for s in selector.finalists(ctx.history)[: self.options.finalists]]
        if not finalists:
            best = ctx.history.best(1)
            return {"best_prompt": best[0].prompt.text if best else initial.text}
        ctx.train = ctx.task.examples("dev")  # this context is the final choice's own
        scored = ctx.loss_extractor.evaluate(ctx, [initial, *finalists])
        winner = min(scored, key=lambda e: (e.error_rate, e.loss))
        return {
            "best_prompt": winner.prompt.text,
            "dev_accuracy_initial": scored[0].accuracy,
            "dev_accuracy_final": winner.accuracy,
            "dev_size": len(ctx.train),
        }

    def describe(self, task: Task) -> dict[str, Any]:
        """What ``promptopt run phrase-search --task T --dry-run`` adds to the plan."""
        return {"initial_prompt": self.options.initial_prompt or INITIAL_PROMPT}
