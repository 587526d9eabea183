"""From a model completion to a candidate instruction, and the local guards that reject
malformed ones (the authors' code keeps every completion as it is)."""

from __future__ import annotations

import re

#: Template text a clean instruction never holds (placeholders, demonstration labels, the
#: templates' own sentences).
TEMPLATE_TEXT = (
    "[APE]",
    "[full_DEMO]",
    "[INSTRUCTION]",
    "[INPUT]",
    "[OUTPUT]",
    "Input:",
    "Output:",
    "I gave a friend",
    "input-output pairs",
    "The instruction was to",
    "Generate a variation",
    "keeping the semantic meaning",
)
_TAG = re.compile(r"<\s*/?\s*[A-Za-z_|]+\s*>")
_QUOTES = "\"'`“”‘’"


def first_line(completion: str) -> str:
    """The completion's first non-empty line, stripped of wrapping quotes and spaces (the
    instruction; what follows is the model continuing the demonstrations)."""
    for line in completion.splitlines():
        line = line.strip()
        while len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
        if line:
            return line
    return ""


def rejection(text: str, *, min_words: int, max_words: int) -> str:
    """Why an instruction is rejected ("" when kept): empty, fewer than ``min_words`` or more
    than ``max_words`` words, a leftover tag, or template text."""
    if not text:
        return "empty"
    words = len(text.split())
    if words < min_words:
        return f"too short: {words} word(s), fewer than {min_words}"
    if words > max_words:
        return f"too long: {words} words, over {max_words}"
    tag = _TAG.search(text)
    if tag is not None:
        return f"leftover tag {tag.group(0)!r}"
    lowered = text.lower()
    for phrase in TEMPLATE_TEXT:
        if phrase.lower() in lowered:
            return f"template text {phrase!r}"
    return ""
