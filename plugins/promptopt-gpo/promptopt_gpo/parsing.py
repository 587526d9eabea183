"""From an optimizer output to a candidate prompt: the text between the tags, cleaned, and the
guards a small local optimizer needs (RUCAIBox/GPO has none: it takes the text between the tags,
or the output's start or end where a tag is missing)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from promptopt.types import Example

Leakage = Literal["open", "all", "off"]

_START = re.compile(r"<\s*START\s*>", re.IGNORECASE)
_END = re.compile(r"<\s*/?\s*END\s*>", re.IGNORECASE)
_PROMPT_TAG = re.compile(r"<\s*/?\s*prompt\s*>", re.IGNORECASE)
_EXEMPLAR_LINE = re.compile(r"^\s*(input|output)\s*:", re.IGNORECASE)
#: "Sure! Here is the new prompt:", "Improved prompt:", "New Prompt -" ... at the very start.
_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|okay|ok|certainly|of course)\b[\s,.!]*)?"
    r"(?:here(?:'s| is| are)\b[^:\n]*?\bprompt\b[^:\n]*?|(?:the\s+)?(?:new|improved|updated|"
    r"revised|better|rewritten|final)?\s*prompt(?:\s+is)?)\s*:\s*",
    re.IGNORECASE,
)
_QUOTES = "\"'`“”‘’"
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Parsed:
    """One optimizer output: the cleaned prompt, or None and why it was dropped."""

    text: str | None
    reason: str = ""


def between_tags(output: str, *, require_tags: bool = True) -> Parsed:
    """The text between the first ``<START>`` and the first ``<END>`` after it (tags matched
    case-insensitively). A missing tag drops the output when ``require_tags``; otherwise the
    reference's fallback takes the output's start or end instead. An output that only repeats
    the meta-prompt's last line ("Wrap ... with <START> and <END>.") holds no prompt."""
    start = _START.search(output)
    end = _END.search(output, start.end() if start else 0)
    if start and end:
        inside = output[start.end() : end.start()]
        if inside.strip().lower() == "and":  # "... wrap it with <START> and <END>." echoed
            return Parsed(None, "echoes the instruction 'with <START> and <END>'")
        return Parsed(inside)
    if require_tags:
        missing = " and ".join(
            tag for tag, found in (("<START>", start), ("<END>", end)) if not found
        )
        return Parsed(None, f"missing {missing}")
    return Parsed(output[start.end() if start else 0 : end.start() if end else len(output)])


def clean(text: str) -> str:
    """One line of prompt: ``**`` and ``<Prompt>`` removed, ``Input:``/``Output:`` lines
    dropped, a leading preamble ("Here is the new prompt:") and wrapping quotes stripped,
    newlines joined with spaces, the first letter capitalized (the reference's
    ``polish_sentence``)."""
    text = _PROMPT_TAG.sub(" ", text.replace("**", ""))
    lines = [line for line in text.splitlines() if not _EXEMPLAR_LINE.match(line)]
    text = " ".join(" ".join(lines).split())
    for _ in range(2):  # "Sure! Here is the new prompt: Prompt: ..."
        stripped = _PREAMBLE.sub("", text, count=1).strip()
        if stripped == text:
            break
        text = stripped
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text[:1].upper() + text[1:]


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def _contains_phrase(text: str, phrase: str) -> bool:
    """``phrase`` occurs in ``text`` as whole words (case-insensitive)."""
    phrase = phrase.strip()
    if not phrase:
        return False
    left = r"(?<!\w)" if phrase[0].isalnum() or phrase[0] == "_" else ""
    right = r"(?!\w)" if phrase[-1].isalnum() or phrase[-1] == "_" else ""
    return re.search(left + re.escape(phrase) + right, text, re.IGNORECASE) is not None


def leaked_answer(text: str, exemplars: Sequence[Example], leakage: Leakage = "open") -> str | None:
    """The exemplar answer ``text`` contains, if any. ``open``: only answers that are not one of
    the example's closed options (numbers, sequences: naming "Yes" or "(B)" reveals nothing an
    option list does not); ``all``: every answer; ``off``: none."""
    if leakage == "off":
        return None
    for example in exemplars:
        if leakage == "open" and example.answer in example.options:
            continue
        if _contains_phrase(text, example.answer):
            return example.answer
    return None


def copied_question(text: str, exemplars: Sequence[Example]) -> bool:
    """True when ``text`` repeats an exemplar question's first line (a copied task input)."""
    for example in exemplars:
        first = example.question.strip().splitlines()[0].strip() if example.question else ""
        if len(first) >= 20 and first.lower() in text.lower():
            return True
    return False


def word_edit_distance(a: str, b: str) -> int:
    """Word-level Levenshtein distance: the words changed, inserted or deleted from a to b."""
    x, y = a.split(), b.split()
    row = list(range(len(y) + 1))
    for i, word in enumerate(x, 1):
        prev, row[0] = row[0], i
        for j, other in enumerate(y, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (word != other))
    return row[-1]


def rejection(
    text: str,
    exemplars: Sequence[Example],
    *,
    max_words: int,
    leakage: Leakage = "open",
    current: str | None = None,
    budget: int | None = None,
) -> str:
    """Why a cleaned candidate is rejected ("" when it is kept): empty, over ``max_words``,
    leaking an exemplar's answer, copying an exemplar question, or (with ``current`` and
    ``budget``) changing more words than the budget allows."""
    if not text:
        return "empty after cleaning"
    words = word_count(text)
    if words > max_words:
        return f"{words} words, over the limit of {max_words}"
    answer = leaked_answer(text, exemplars, leakage)
    if answer is not None:
        return f"contains the exemplar answer {answer!r}"
    if copied_question(text, exemplars):
        return "copies an exemplar question"
    if current is not None and budget is not None:
        changed = word_edit_distance(current, text)
        if changed > budget:
            return f"changes {changed} words, over the budget of {budget}"
    return ""
