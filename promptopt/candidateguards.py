"""Guards against degenerate candidate prompts that small optimizer models write: too short,
leftover format tags, copied exemplar blocks, text copied from the meta-prompt or a training
question, or the current prompt with only an answer label appended. Any method whose
optimizer model writes prompts can screen them with :func:`degenerate` and count the reasons
with :class:`RejectionCounter`."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

#: Reasons :func:`degenerate` gives (fixed texts, so they count and compare).
TOO_SHORT = "fewer than {n} words"
LEFTOVER_TAG = "leftover <START>/<END> tag"
COPIED_BLOCK = "copies an Input:/Output: block"
COPIES_META_PROMPT = "a substring of the meta-prompt"
COPIES_QUESTION = "a substring of a training question"
APPENDS_LABEL = "only appends a label to the current prompt"

_TAG = re.compile(r"<\s*/?\s*(START|END)\b\s*/?\s*>?", re.IGNORECASE)
_BLOCK = re.compile(r"^\s*(input|output)\s*:", re.IGNORECASE | re.MULTILINE)
_WORD = re.compile(r"\S+")
#: Words a label suffix may carry around the label itself ("Answer: (B)", "The answer is Yes").
_LABEL_FILLER = {"answer", "the", "is", "output", "label", "final", "correct"}
#: A bare option letter or number: a label even when no example lists it.
_BARE_LABEL = re.compile(r"^(?:\(?[a-z]\)?|-?\d+(?:[.,]\d+)?)$")


def normalized(text: str) -> str:
    """Lower case, runs of white space as one space, no surrounding punctuation or spaces."""
    return " ".join(text.lower().split()).strip(" .,;:!?\"'`")


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class GuardContext:
    """What a candidate is checked against: the prompts it rewrites (the current one, those
    shown), the text the optimizer read, the training questions and the task's labels."""

    prompts: tuple[str, ...] = ()
    meta_prompt: str = ""
    questions: tuple[str, ...] = ()
    labels: frozenset[str] = frozenset()
    min_words: int = 3
    _questions: tuple[str, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_questions", tuple(normalized(q) for q in self.questions))

    @classmethod
    def of(
        cls,
        *,
        prompts: Iterable[str] = (),
        meta_prompt: str = "",
        questions: Iterable[str] = (),
        labels: Iterable[str] = (),
        min_words: int = 3,
    ) -> GuardContext:
        """A context with the labels normalized (``"(B)"`` and ``"B"`` both count)."""
        forms = {normalized(label) for label in labels if normalized(label)}
        forms |= {f.strip("()") for f in forms}
        return cls(tuple(prompts), meta_prompt, tuple(questions), frozenset(forms), min_words)


def degenerate(text: str, ctx: GuardContext, *, raw: str | None = None) -> str | None:
    """Why the candidate ``text`` is degenerate, or None when it passes every guard. ``raw``:
    the optimizer's text before any cleaning (tags and copied blocks are looked for there
    too)."""
    seen = f"{raw}\n{text}" if raw is not None else text
    if _TAG.search(seen):
        return LEFTOVER_TAG
    if _BLOCK.search(seen):
        return COPIED_BLOCK
    if word_count(text) < ctx.min_words:
        return TOO_SHORT.format(n=ctx.min_words)
    if any(appends_label(text, prompt, ctx.labels) for prompt in ctx.prompts):
        return APPENDS_LABEL
    norm = normalized(text)
    if norm and _contains(normalized(ctx.meta_prompt), norm):
        return COPIES_META_PROMPT
    if norm and any(_contains(q, norm) for q in ctx._questions):
        return COPIES_QUESTION
    return None


def _contains(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` on word boundaries."""
    at = haystack.find(needle)
    while at != -1:
        before = haystack[at - 1] if at else " "
        end = at + len(needle)
        after = haystack[end] if end < len(haystack) else " "
        if not (before.isalnum() or after.isalnum()):
            return True
        at = haystack.find(needle, at + 1)
    return False


def appends_label(text: str, current: str, labels: Collection[str]) -> bool:
    """True when ``text`` is ``current`` followed only by an answer label (an option letter, a
    number, one of ``labels``), possibly with "Answer:"-like words around it."""
    base, cand = normalized(current), normalized(text)
    if not base or not cand.startswith(base) or cand == base:
        return False
    words = [w.strip(".,;:!?\"'`") for w in cand[len(base) :].split()]
    rest = " ".join(w for w in words if w and w not in _LABEL_FILLER)
    if not rest:
        return False
    return rest in labels or rest.strip("()") in labels or _BARE_LABEL.match(rest) is not None


class RejectionCounter:
    """Rejections counted by reason (digits in a reason count as one, "105 words" = "N
    words"), for a step's notes."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, reason: str) -> None:
        self.counts[re.sub(r"\d+", "N", reason)] += 1

    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """Reason -> count, most frequent first (ties by reason)."""
        return dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        """``"3 x reason; 1 x other"`` (``"none"`` without rejections)."""
        return "; ".join(f"{n} x {r}" for r, n in self.as_dict().items()) or "none"
