"""From an optimizer output to an instruction (the reference's extraction and
``polish_sentence``) and the local guards that reject malformed ones: too short, too long,
leftover tags or meta-prompt text, and the reference's own skips ("INS", digits on GSM8K)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptopt_opro.metaprompt import InstructionPos, Style, tags

#: Markers of the meta-prompt a clean instruction never contains.
_LEFTOVER_TAG = re.compile(r"<\s*/?\s*(?:INS|Start|TEXT)\s*>", re.IGNORECASE)
#: Phrases of the meta-prompt an instruction copied from it would contain.
TEMPLATE_PHRASES = (
    "Your task is to generate",
    "Below are some previous",
    "Below are some problems",
    "The score ranges from",
    "Ground truth answer",
    "Generate an instruction that",
    "Generate a starting sentence",
    "I have some texts along with",
    "Write your new text",
    "text:\n",
    "score:\n",
)
#: The reference skips longer instructions (characters).
MAX_CHARS = 500


@dataclass(frozen=True)
class Parsed:
    """One output's instruction (None when its tags are missing and required) and why not."""

    text: str | None
    reason: str = ""


def polish(sentence: str) -> str:
    """The reference's ``polish_sentence``: stripped, ``**`` removed, first letter capitalized
    (a one-character text is left as it is)."""
    sentence = sentence.strip()
    if sentence:
        sentence = sentence.replace("**", "")
        if len(sentence) > 1:
            sentence = sentence[0].upper() + sentence[1:]
    return sentence


def extract(output: str, style: Style, pos: InstructionPos, *, require_tags: bool) -> Parsed:
    """The instruction in one output. ``gpt``: between the first start tag and the first end
    tag, the output's start or end standing in for a missing tag (the reference); ``palm``: the
    first text in square brackets (the reference: "" when there is none). With
    ``require_tags`` an output without both markers is dropped instead."""
    start, end = tags(style, pos)
    if style == "palm":
        found = re.search(r"\[(.*?)\]", output)
        if found is None:
            return Parsed(None, "no text in square brackets") if require_tags else Parsed("")
        return Parsed(polish(found.group(1)))
    has_start, has_end = start in output, end in output
    if require_tags and not (has_start and has_end):
        missing = " and ".join(t for t, ok in ((start, has_start), (end, has_end)) if not ok)
        return Parsed(None, f"missing {missing}")
    begin = output.index(start) + len(start) if has_start else 0
    stop = output.index(end) if has_end else len(output)
    return Parsed(polish(output[begin:stop]))


def one_line(text: str) -> str:
    """The instruction on one line (newlines and runs of spaces become one space): it goes on
    a single line beside the question."""
    return " ".join(text.split())


def repeated_sentence(text: str) -> str | None:
    """A sentence of three or more words that occurs twice in ``text`` (a looping sample)."""
    seen: set[str] = set()
    for sentence in re.split(r"(?<=[.!?:])\s+", text):
        key = " ".join(sentence.lower().split())
        if len(key.split()) >= 3 and key in seen:
            return sentence
        seen.add(key)
    return None


def rejection(text: str, *, min_words: int, task_name: str = "") -> str:
    """Why an instruction is rejected ("" when kept): empty or shorter than ``min_words``
    words, longer than the reference's 500 characters, holding "INS" (the reference), a
    leftover tag or meta-prompt phrase, a sentence twice, or digits on GSM8K (the
    reference)."""
    if not text.strip():
        return "empty"
    words = len(text.split())
    if words < min_words:
        return f"too short: {words} word(s), fewer than {min_words}"
    if len(text) > MAX_CHARS:
        return f"too long: {len(text)} characters, over {MAX_CHARS}"
    tag = _LEFTOVER_TAG.search(text)
    if tag is not None:
        return f"leftover tag {tag.group(0)!r}"
    if "INS" in text:
        return "contains 'INS'"
    repeated = repeated_sentence(text)
    if repeated is not None:
        return f"repeats {repeated!r}"
    lowered = text.lower()
    for phrase in TEMPLATE_PHRASES:
        if phrase.lower() in lowered:
            return f"copies meta-prompt text {phrase.strip()!r}"
    if task_name.startswith("gsm8k") and any(c.isdigit() for c in text):
        return "contains numbers (GSM8K)"
    return ""
