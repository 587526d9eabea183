"""A scripted optimizer model for the APE and OPRO tests: known outputs (well-formed or not) in
order, then outputs of a pool chosen by each sample's seed (so a resumed run gets the same
texts); every call is recorded. Register it with ``plugin(cls)``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from promptopt.testing.scripted import ScriptedWriter
from promptopt.testing.scripted import backend_plugin as plugin

__all__ = ["ScriptedOptimizer", "plugin", "scripted"]


class ScriptedOptimizer(ScriptedWriter):
    """Writes ``queue`` in order (one text per sample, across calls), then ``pool`` entries
    picked by the sample's seed, then "" ."""

    name = "scripted-optimizer"
    queue: ClassVar[list[str]] = []

    def scripted_text(self, text: str) -> str | None:
        return self.queue.pop(0) if self.queue else None


def scripted(queue: Sequence[str] = (), pool: Sequence[str] = ()) -> type[ScriptedOptimizer]:
    """A ScriptedOptimizer class of its own (own queue, pool and call log)."""
    attrs = {"queue": list(queue), "pool": tuple(pool), "calls": []}
    return type("ScriptedOptimizerForTest", (ScriptedOptimizer,), attrs)
