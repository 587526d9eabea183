"""``phrase-edits``: candidates that add, drop or swap one whole sentence of the prompt.

Text space: a candidate is new text (``Prompt.text``), never token ids, so the proposer works
with any backend. Randomness comes from ``ctx.rng`` only (seeded per step, so a resumed run
proposes the same), and prompts the run has already scored are not proposed again.
"""

from __future__ import annotations

import dataclasses
import re

from promptopt.components import ComponentOptions, Proposer, StepContext
from promptopt.types import Candidate, Prompt
from pydantic import Field

#: Sentences the proposer may add; a task-specific list can be given with ``-o phrases=[...]``.
PHRASES = (
    "Think step by step.",
    "Check each step before the next one.",
    "Restate the question in your own words first.",
    "List the facts you are given.",
    "Answer with one of the options only.",
    "Be brief.",
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` (split after ".", "!" or "?")."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


class PhraseEditOptions(ComponentOptions):
    """``-o edits=6``, ``-o phrases='["Think first.", "Be brief."]'``."""

    #: Candidates per step (fewer when fewer edits are possible).
    edits: int = Field(default=4, ge=1)
    phrases: tuple[str, ...] = PHRASES


class PhraseEditProposer(Proposer[PhraseEditOptions]):
    """Every sentence-level edit of the prompt, a random few of them per step."""

    name = "phrase-edits"
    description = "adds, drops or swaps one sentence of the prompt (text space; example plugin)"
    Options = PhraseEditOptions

    def propose(self, ctx: StepContext, prompt: Prompt) -> list[Candidate]:
        edits = [
            (label, text)
            for label, text in self.edits(prompt.text)
            if ctx.history.lookup(dataclasses.replace(prompt, text=text)) is None
        ]
        chosen = ctx.rng.sample(edits, min(self.options.edits, len(edits)))
        ctx.count("edits_possible", len(edits))
        # the candidate keeps what is not text: the separator that joins it to each question
        return [Candidate(dataclasses.replace(prompt, text=text), label) for label, text in chosen]

    def edits(self, text: str) -> list[tuple[str, str]]:
        """(label, new text) of every edit: add a phrase, drop a sentence, swap one for a phrase."""
        have = sentences(text)
        new = [p for p in self.options.phrases if p not in have]
        out = [(f"+ {p}", " ".join([*have, p])) for p in new]
        if len(have) > 1:
            out += [(f"- {s}", " ".join(have[:i] + have[i + 1 :])) for i, s in enumerate(have)]
        out += [
            (f"{s} -> {p}", " ".join(have[:i] + [p] + have[i + 1 :]))
            for i, s in enumerate(have)
            for p in new
        ]
        return out
