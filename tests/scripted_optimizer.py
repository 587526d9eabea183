"""A scripted optimizer model for the APE and OPRO tests: known outputs (well-formed or not) in
order, then outputs of a pool chosen by each sample's seed (so a resumed run gets the same
texts); every call is recorded. Register it with ``plugin(cls)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from promptopt import hookimpl
from promptopt.components import Backend
from promptopt.errors import PromptoptError
from promptopt.sampling import sample_seed

if TYPE_CHECKING:
    from promptopt.progress import Progress


class ScriptedOptimizer(Backend):
    """Writes ``queue`` in order (one text per sample, across calls), then ``pool`` entries
    picked by the sample's seed, then "" ."""

    name = "scripted-optimizer"
    description = "scripted optimizer outputs for tests (no model)"
    queue: ClassVar[list[str]] = []
    pool: ClassVar[Sequence[str]] = ()
    calls: ClassVar[list[dict[str, Any]]] = []

    @property
    def model_id(self) -> str:
        return "scripted:optimizer"

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        return f"<user>{user}</user>{assistant_prefix}"

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
            call = {"input": text, "n": n, "seed": seed, "temperature": temperature}
            type(self).calls.append({**call, "top_p": top_p, "max_new_tokens": max_new_tokens})
            for j in range(n):
                if self.queue:
                    written = self.queue.pop(0)
                elif self.pool:
                    written = self.pool[sample_seed(seed or 0, i, j) % len(self.pool)]
                else:
                    written = ""
                outputs.append(as_continuation(text, written, stop))
        self.usage.record(requests=len(texts), generated_tokens=len(outputs))
        return outputs

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        raise PromptoptError("the scripted optimizer only writes text", hint="use it as optimizer")


def as_continuation(context: str, written: str, stop: Sequence[str]) -> str:
    """``written`` as a model continuing ``context`` returns it: what the context already ends
    with (a prefilled ``<INS>``) is not repeated, and the text ends before the first stop."""
    overlap = next(
        (k for k in range(min(len(context), len(written), 20), 0, -1)
         if context.endswith(written[:k])),
        0,
    )  # fmt: skip
    text = written[overlap:]
    cuts = [text.index(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


def scripted(queue: Sequence[str] = (), pool: Sequence[str] = ()) -> type[ScriptedOptimizer]:
    """A ScriptedOptimizer class of its own (own queue, pool and call log)."""
    attrs = {"queue": list(queue), "pool": tuple(pool), "calls": []}
    return type("ScriptedOptimizerForTest", (ScriptedOptimizer,), attrs)


class _Plugin:
    def __init__(self, cls: type[Backend]) -> None:
        self.cls = cls

    @hookimpl
    def register_backends(self, register: Callable[[type[Backend]], None]) -> None:
        register(self.cls)


def plugin(cls: type[Backend]) -> object:
    """A plugin object registering ``cls`` as a backend (for ``promptopt_register``)."""
    return _Plugin(cls)
