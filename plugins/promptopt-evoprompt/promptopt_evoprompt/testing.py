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
from collections.abc import Sequence
from typing import Any, ClassVar

from promptopt.components import Backend
from promptopt.testing.scripted import ScriptedWriter, backend_plugin


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


class ScriptedOptimizer(ScriptedWriter):
    """Answers every request with :func:`answer`, after the queued ``bad`` outputs."""

    name = "evoprompt-scripted"
    description = "scripted optimizer outputs for EvoPrompt tests (no model)"
    bad: ClassVar[Sequence[str]] = ()

    def __init__(self, model: str | None, options: Any = None) -> None:
        super().__init__(model, options)
        self.served = 0

    @property
    def model_id(self) -> str:
        return f"scripted:{self.model_ref or 'default'}"

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        return user + assistant_prefix

    def describe_call(self, text: str) -> dict[str, Any]:
        return {"request": text}

    def scripted_text(self, text: str) -> str | None:
        self.served += 1
        return self.bad[self.served - 1] if self.served <= len(self.bad) else answer(text)

    def continue_after(self, context: str, written: str) -> str:
        return written  # EvoPrompt prefills nothing


def scripted(bad: Sequence[str] = (), name: str = "evoprompt-scripted") -> type[ScriptedOptimizer]:
    """A ScriptedOptimizer class of its own (own queue and call log)."""
    attrs = {"name": name, "bad": tuple(bad), "calls": []}
    return type("ScriptedOptimizer_" + re.sub(r"\W", "_", name), (ScriptedOptimizer,), attrs)


def optimizer_plugin(cls: type[Backend]) -> object:
    """A plugin object that registers ``cls`` as a backend (for ``promptopt_register``)."""
    return backend_plugin(cls)
