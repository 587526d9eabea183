"""A scripted optimizer model for tests: known outputs (well-formed or not) per current prompt,
so a GPO run is deterministic without a model. Register it with ``optimizer_plugin``::

    opt = scripted({"Let's think step by step.": ["<START>Be careful.<END>", "no tags"]})
    promptopt_register(optimizer_plugin(opt), name="gpo-script")
    promptopt_run("gpo", task="fake/yes-no", backend="fake", optimizer_backend=opt.name, ...)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from promptopt import hookimpl
from promptopt.components import Backend
from promptopt.errors import PromptoptError
from promptopt.sampling import sample_seed
from promptopt.stops import cut_at_stop

if TYPE_CHECKING:
    from promptopt.progress import Progress

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


class ScriptedOptimizer(Backend):
    """Writes known texts: for a meta-prompt whose current prompt is in ``script``, that entry's
    outputs in order (one per sample, across calls); otherwise an output of ``pool`` chosen by
    the sample's seed (so a resumed run gets the same texts); otherwise "" (no tags). After a
    prefilled ``<START>`` it continues as a model that wrote that text would (what follows
    its own ``<START>``), cut at the stop strings."""

    name = "gpo-scripted"
    description = "scripted optimizer outputs for GPO tests (no model)"
    script: ClassVar[Mapping[str, Sequence[str]]] = {}
    pool: ClassVar[Sequence[str]] = ()
    #: Every generate call of every instance: current prompt, n, seed, temperature, max tokens.
    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, model: str | None, options: Any = None) -> None:
        super().__init__(model, options)
        self.used: dict[str, int] = {}

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
        for i, text in enumerate(texts):
            current = current_prompt(text)
            type(self).calls.append(
                {"current": current, "n": n, "seed": seed, "temperature": temperature,
                 "max_new_tokens": max_new_tokens, "meta_prompt": text}
            )  # fmt: skip
            for j in range(n):
                queue = self.script.get(current, ())
                used = self.used.get(current, 0)
                if used < len(queue):
                    self.used[current] = used + 1
                    written = queue[used]
                elif self.pool:
                    written = self.pool[sample_seed(seed or 0, i, j) % len(self.pool)]
                else:
                    written = ""
                outputs.append(cut_at_stop(_after_prefix(text, written), stop))
        self.usage.record(requests=1, generated_tokens=sum(len(o.split()) for o in outputs))
        return outputs

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        raise PromptoptError(
            "the scripted optimizer only writes text", hint="use it as the optimizer model"
        )


def _after_prefix(text: str, written: str) -> str:
    """What a model that wrote ``written`` continues with after an input ending in a prefill
    (GPO's ``<START>``): the text after its first ``<START>``, or all of it without one."""
    if text.endswith(PREFILL) and PREFILL in written:
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


class _Plugin:
    def __init__(self, cls: type[Backend]) -> None:
        self.cls = cls

    @hookimpl
    def register_backends(self, register: Callable[[type[Backend]], None]) -> None:
        register(self.cls)


def optimizer_plugin(cls: type[Backend]) -> object:
    """A plugin object that registers ``cls`` as a backend (for ``promptopt_register``)."""
    return _Plugin(cls)
