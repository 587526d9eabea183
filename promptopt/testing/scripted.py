"""Scripted optimizer models for tests of methods that have a model write prompts (GPO, APE,
OPRO, EvoPrompt, a third party's): known outputs, well-formed or not, instead of a model, every
call recorded, registered as an ordinary backend plugin (:func:`backend_plugin`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from promptopt import hookimpl
from promptopt.components import Backend
from promptopt.errors import PromptoptError
from promptopt.sampling import sample_seed
from promptopt.stops import cut_at_stop

if TYPE_CHECKING:
    from promptopt.progress import Progress


class ScriptedWriter(Backend):
    """Writes, for each sample, :meth:`scripted_text` of its input; where that is None, an entry
    of ``pool`` chosen by the sample's seed (a resumed run gets the same texts), else "". The
    text is continued after the input as a model would (:meth:`continue_after`) and cut at the
    stop strings. ``calls`` logs every generate call (:meth:`describe_call` plus sampling)."""

    name = "scripted-writer"
    description = "scripted optimizer outputs for tests (no model)"
    pool: ClassVar[Sequence[str]] = ()
    calls: ClassVar[list[dict[str, Any]]] = []

    @property
    def model_id(self) -> str:
        return f"scripted:{self.model_ref or 'optimizer'}"

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        return f"<user>{user}</user>{assistant_prefix}"

    def scripted_text(self, text: str) -> str | None:
        """The next scripted output for input ``text``; None: take one from ``pool``."""
        return None

    def describe_call(self, text: str) -> dict[str, Any]:
        """What ``calls`` records of a generate call's input."""
        return {"input": text}

    def continue_after(self, context: str, written: str) -> str:
        """``written`` as a model continuing ``context`` returns it (see :func:`drop_overlap`)."""
        return drop_overlap(context, written)

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
            sampling = {"n": n, "seed": seed, "temperature": temperature, "top_p": top_p}
            type(self).calls.append(
                {**self.describe_call(text), **sampling, "max_new_tokens": max_new_tokens}
            )
            for j in range(n):
                written = self.scripted_text(text)
                if written is None:
                    pool = self.pool
                    written = pool[sample_seed(seed or 0, i, j) % len(pool)] if pool else ""
                outputs.append(cut_at_stop(self.continue_after(text, written), stop))
        words = sum(len(o.split()) for o in outputs)
        self.usage.record(requests=len(texts), generated_tokens=words)
        return outputs

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        raise PromptoptError(
            "the scripted optimizer only writes text", hint="use it as the optimizer model"
        )


def drop_overlap(context: str, written: str) -> str:
    """``written`` without what ``context`` already ends with (a prefilled ``<INS>`` or
    ``<START>`` that the scripted text repeats), up to 20 characters."""
    longest = min(len(context), len(written), 20)
    overlap = next((k for k in range(longest, 0, -1) if context.endswith(written[:k])), 0)
    return written[overlap:]


class _BackendPlugin:
    def __init__(self, cls: type[Backend]) -> None:
        self.cls = cls

    @hookimpl
    def register_backends(self, register: Callable[[type[Backend]], None]) -> None:
        register(self.cls)


def backend_plugin(cls: type[Backend]) -> object:
    """A plugin object that registers ``cls`` as a backend (for ``promptopt_register``)."""
    return _BackendPlugin(cls)
