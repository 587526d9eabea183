"""A scripted optimizer model for tests: known outputs (well-formed or not) per current prompt,
so a GPO run is deterministic without a model. Register it with ``optimizer_plugin``::

    opt = scripted({"Let's think step by step.": ["<START>Be careful.<END>", "no tags"]})
    promptopt_register(optimizer_plugin(opt), name="gpo-script")
    promptopt_run("gpo", task="fake/yes-no", backend="fake", optimizer_backend=opt.name, ...)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from promptopt.components import Backend
from promptopt.testing.scripted import ScriptedWriter, backend_plugin

_CURRENT = re.compile(r"The current prompt is:\n(.*)\n")
_SMALL_BEST = re.compile(r"(?:Instruction: (.*)\nScore: [^\n]*\n\n)+Write one new")
_PARAPHRASE = re.compile(r"\n\nInput: (.*)\n\nWrap the variation")
#: The assistant prefix GPO's proposer prefills.
PREFILL = "<START>"


def current_prompt(meta_prompt: str) -> str:
    """The prompt a GPO request works on ("" if none): the reference meta-prompt's current
    prompt, the small one's best (last) prompt, or the prompt a paraphrase request names."""
    for pattern in (_CURRENT, _SMALL_BEST, _PARAPHRASE):
        found = pattern.search(meta_prompt)
        if found:
            return found.group(1)
    return ""


class ScriptedOptimizer(ScriptedWriter):
    """Writes known texts: for a meta-prompt whose current prompt is in ``script``, that entry's
    outputs in order (one per sample, across calls); otherwise an output of ``pool`` chosen by
    the sample's seed (so a resumed run gets the same texts); otherwise "" (no tags). After a
    prefilled ``<START>`` it continues as a model that wrote that text would (what follows
    its own ``<START>``), cut at the stop strings."""

    name = "gpo-scripted"
    description = "scripted optimizer outputs for GPO tests (no model)"
    script: ClassVar[Mapping[str, Sequence[str]]] = {}

    def __init__(self, model: str | None, options: Any = None) -> None:
        super().__init__(model, options)
        self.used: dict[str, int] = {}

    @property
    def model_id(self) -> str:
        return f"scripted:{self.model_ref or 'default'}"

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        return user + assistant_prefix

    def describe_call(self, text: str) -> dict[str, Any]:
        return {"current": current_prompt(text), "meta_prompt": text}

    def scripted_text(self, text: str) -> str | None:
        current = current_prompt(text)
        queue = self.script.get(current, ())
        used = self.used.get(current, 0)
        if used >= len(queue):
            return None
        self.used[current] = used + 1
        return queue[used]

    def continue_after(self, context: str, written: str) -> str:
        """The text after ``written``'s first ``<START>`` when the input ends in the prefill,
        or all of it."""
        if context.endswith(PREFILL) and PREFILL in written:
            return written.split(PREFILL, 1)[1]
        return written


def scripted(
    script: Mapping[str, Sequence[str]] | None = None,
    pool: Sequence[str] = (),
    name: str = "gpo-scripted",
) -> type[ScriptedOptimizer]:
    """A ScriptedOptimizer class of its own (own script, pool and call log)."""
    attrs = {"name": name, "script": dict(script or {}), "pool": tuple(pool), "calls": []}
    return type("ScriptedOptimizer_" + re.sub(r"\W", "_", name), (ScriptedOptimizer,), attrs)


def optimizer_plugin(cls: type[Backend]) -> object:
    """A plugin object that registers ``cls`` as a backend (for ``promptopt_register``)."""
    return backend_plugin(cls)
