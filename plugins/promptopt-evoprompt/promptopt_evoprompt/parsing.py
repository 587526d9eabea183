"""From an optimizer output to a candidate prompt: the authors' ``get_final_prompt`` (the text
between the last ``<prompt>`` and the next ``</prompt>``, else the whole output without
wrapping quotes) and a small local guard against what a small optimizer model writes instead
of a prompt: too short, too long, or leftover tags and template text."""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Text of the evolution templates that never belongs in a prompt (case-insensitive).
_TEMPLATE_TEXT = re.compile(
    r"<\s*/?\s*prompt\s*\d?\s*>|<input>"
    r"|please follow the instruction|crossover the following prompts|crossover prompt\s*:"
    r"|mutate the prompt generated|identify the different parts|randomly mutate"
    r"|different parts\s*:|(?:basic|final|new|mutated|new combined|crossover final) prompt\s*:"
    r"|\bprompt\s*[0-3]\s*:|generate a variation of the following instruction"
    r"|^\s*(?:input|output)\s*:",
    re.IGNORECASE | re.MULTILINE,
)
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Parsed:
    """One optimizer output: the prompt it yields, or None and why it was rejected."""

    text: str | None
    reason: str = ""


def final_prompt(output: str) -> str:
    """The authors' ``get_final_prompt``: the text after the last ``<prompt>`` up to the next
    ``</prompt>``, stripped; without the tag, the output with one pair of wrapping double quotes
    removed."""
    parts = output.split("<prompt>")
    if len(parts) > 1:
        return parts[-1].split("</prompt>")[0].strip()
    if output.startswith('"') and output.endswith('"'):
        return output[1:-1]
    return output


def screen(text: str, *, min_words: int, max_words: int) -> Parsed:
    """The guard: ``text`` (already extracted) as a one-line prompt, or why it is rejected."""
    found = _TEMPLATE_TEXT.search(text)
    if found:
        return Parsed(None, f"leftover template text {found.group(0).strip()!r}")
    line = " ".join(text.split())
    words = len(_WORD.findall(line))
    if words < min_words:
        return Parsed(None, f"{words} words, under the minimum of {min_words}")
    if words > max_words:
        return Parsed(None, f"{words} words, over the limit of {max_words}")
    return Parsed(line)


def parse(
    output: str, *, tagged: bool, min_words: int, max_words: int, require_tags: bool = True
) -> Parsed:
    """An evolution output (``tagged``: through :func:`final_prompt`; with ``require_tags`` an
    output without ``<prompt>`` is rejected, where the authors take the whole output) or a
    paraphrase (the whole output, stripped, as the authors take it) through the guard."""
    if tagged and require_tags and "<prompt>" not in output:
        return Parsed(None, "no <prompt> tag")
    text = final_prompt(output.strip()) if tagged else output.strip()
    return screen(text, min_words=min_words, max_words=max_words)
