"""Word diff of two prompts, for highlighting what a step changed."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

#: Words with their trailing white space, so that joining the pieces gives the text back.
_PIECE = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class Segment:
    """A run of text in the new prompt (``kind`` ``same`` or ``added``) or of the old one that
    the new prompt dropped (``removed``)."""

    kind: str
    text: str


def pieces(text: str) -> list[str]:
    """``text`` split into words, punctuation marks and white space (joined, they give it)."""
    return _PIECE.findall(text)


def word_diff(old: str | None, new: str) -> list[Segment]:
    """What changed from ``old`` to ``new``, word by word (all ``same`` without ``old``)."""
    if old is None:
        return [Segment("same", new)] if new else []
    before, after = pieces(old), pieces(new)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    segments: list[Segment] = []
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            segments.append(Segment("same", "".join(after[b0:b1])))
            continue
        if a1 > a0:
            segments.append(Segment("removed", "".join(before[a0:a1])))
        if b1 > b0:
            segments.append(Segment("added", "".join(after[b0:b1])))
    return segments
