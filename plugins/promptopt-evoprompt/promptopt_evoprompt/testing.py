"""A scripted optimizer model for tests: it reads the filled template and answers like a
well-behaved optimizer (a paraphrase, a crossover of the two parents, a DE child), after first
giving the outputs queued in ``bad`` (malformed ones, for the guard). Deterministic, no model::

    opt = scripted(bad=["1. Crossover Prompt: <prompt1>"])
    promptopt_register(optimizer_plugin(opt), name="evo-script")
    promptopt_run("evoprompt-ga", task="fake/yes-no", backend="fake",
                  optimizer_backend=opt.name, ...)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from promptopt import hookimpl
from promptopt.components import Backend
from promptopt.errors import PromptoptError

if TYPE_CHECKING:
    from promptopt.progress import Progress


def last_field(text: str, label: str) -> str:
    """The value of the last ``label`` line of a filled template ("" if none)."""
    found = re.findall(rf"^{re.escape(label)}(.*)$", text, re.MULTILINE)
    return found[-1].strip() if found else ""


def half(text: str, first: bool) -> list[str]:
    """The first (or second) half of the words of ``text``."""
    words = text.split()
    middle = (len(words) + 1) // 2
    return words[:middle] if first else words[middle:]


def answer(request: str) -> str:
    """What the scripted optimizer writes for one filled template."""
    if request.startswith("Generate a variation"):
        return "Carefully: " + last_field(request, "Input:")
    if "Basic Prompt:" in request or "Prompt 3:" in request:  # DE
        basic = last_field(request, "Basic Prompt:") or last_field(request, "Prompt 3:")
        extra = last_field(request, "Prompt 1:").split()[-1:]
        return f"4. Final Prompt: <prompt>{' '.join([*basic.split()[:12], *extra])}</prompt>"
    a, b = last_field(request, "Prompt 1:"), last_field(request, "Prompt 2:")  # GA
    child = " ".join([*half(a, True), *half(b, False)]) or a
    return f"Crossover Prompt: {a} {b}\n2. <prompt>{child}</prompt>"


class ScriptedOptimizer(Backend):
    """Answers every request with :func:`answer`, after the queued ``bad`` outputs."""

    name = "evoprompt-scripted"
    description = "scripted optimizer outputs for EvoPrompt tests (no model)"
    bad: ClassVar[Sequence[str]] = ()
    #: Every request of every instance: the filled template, seed, temperature, max tokens.
    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, model: str | None, options: Any = None) -> None:
        super().__init__(model, options)
        self.served = 0

    @property
    def model_id(self) -> str:
        return f"scripted:{self.model_ref or 'default'}"

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        return user + assistant_prefix

    def generate(
        self,
        texts: Sequence[str],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        progress: Progress | None = None,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        n: int = 1,
    ) -> list[str]:
        outputs = []
        for text in texts:
            for _ in range(n):
                type(self).calls.append(
                    {"request": text, "seed": seed, "temperature": temperature,
                     "top_p": top_p, "max_new_tokens": max_new_tokens}
                )  # fmt: skip
                if self.served < len(self.bad):
                    outputs.append(self.bad[self.served])
                else:
                    outputs.append(answer(text))
                self.served += 1
        self.usage.record(requests=1, generated_tokens=sum(len(o.split()) for o in outputs))
        return outputs

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        raise PromptoptError(
            "the scripted optimizer only writes text", hint="use it as the optimizer model"
        )


def scripted(bad: Sequence[str] = (), name: str = "evoprompt-scripted") -> type[ScriptedOptimizer]:
    """A ScriptedOptimizer class of its own (own queue and call log)."""
    attrs = {"name": name, "bad": tuple(bad), "calls": []}
    return type("ScriptedOptimizer_" + re.sub(r"\W", "_", name), (ScriptedOptimizer,), attrs)


class _Plugin:
    def __init__(self, cls: type[Backend]) -> None:
        self.cls = cls

    @hookimpl
    def register_backends(self, register: Callable[[type[Backend]], None]) -> None:
        register(self.cls)


def optimizer_plugin(cls: type[Backend]) -> object:
    """A plugin object that registers ``cls`` as a backend (for ``promptopt_register``)."""
    return _Plugin(cls)
