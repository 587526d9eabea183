"""Which parts of a model input are the chat template's own markup, so that backends tokenize
only those with control-token parsing and everything else as plain text.

A backend's input is ``before + user + after + continuation``: ``before``/``after`` come from
the template (``<|im_start|>user\\n`` ... ``<|im_end|>\\n<|im_start|>assistant\\n``), while the
user content (question and prompt) and whatever follows (model output, the task's extractor,
answers) is text a user or a model wrote. Spelling ``<|im_end|>`` inside a question must not
close the user turn; it is seven plain characters. Backends record every rendering of
:meth:`TemplateMarkup.remember` so the boundary between user content and template is exact
even when the user content itself contains the template's text.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable

#: Pieces of a model input: ``(text, is_markup)``; markup is tokenized with control tokens.
Segments = list[tuple[str, bool]]
#: Input format for models without a chat template: the user text, then a newline; the default
#: of every backend, so prompts transfer unchanged.
PLAIN_TEMPLATE = "{user}\n"
#: Stand-in user content rendered through a template to find the template's own text around it.
USER_SENTINEL = "PROMPTOPTUSERCONTENT7319"


def check_plain_template(value: str) -> str:
    """``value`` when it is a usable plain template (``{user}`` exactly once, no other field);
    a ValueError otherwise (the backends' option validator)."""
    try:
        rendered = value.format(user=USER_SENTINEL)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"plain_template must only use {{user}}: {exc}") from None
    if rendered.count(USER_SENTINEL) != 1:
        raise ValueError("plain_template must contain {user} exactly once")
    return value


class TemplateMarkup:
    """The text a chat template puts before and after the user content, and the renderings a
    backend produced, to split model inputs into markup and plain text."""

    def __init__(
        self,
        before: str | None,
        after: str | None,
        controls: Iterable[str],
        *,
        capacity: int = 65536,
    ) -> None:
        #: False for a template whose user content cannot be located (it rewrites the text):
        #: then every input is tokenized whole, control tokens parsed.
        self.known = before is not None and after is not None
        self.before = before or ""
        self.after = after or ""
        texts = sorted({c for c in controls if c}, key=len, reverse=True)
        #: Matches the text of any token the tokenizer would parse as a control token.
        self.control = re.compile("|".join(map(re.escape, texts))) if texts else None
        self._capacity = capacity
        self._seen: OrderedDict[int, None] = OrderedDict()

    def has_control(self, text: str) -> bool:
        """True when ``text`` spells a control token (``<|im_end|>``, ``<s>``, ...)."""
        return self.control is not None and self.control.search(text) is not None

    def first_control(self, text: str) -> str:
        """The first control-token spelling in ``text`` (empty if none)."""
        found = self.control.search(text) if self.control is not None else None
        return found.group(0) if found else ""

    def segments(self, text: str) -> Segments:
        """How to tokenize ``text``: whole, with control tokens parsed, when only template
        markup spells control tokens (the usual case: exactly the tokenization of the text as
        one piece); else split by :meth:`split`, so that control-token text written by users or
        models stays plain."""
        if not self.known or not self.has_control(text):
            return [(text, True)]
        pieces = self.split(text)
        if not any(not markup and self.has_control(piece) for piece, markup in pieces):
            return [(text, True)]
        return pieces

    def remember(self, rendered: str) -> None:
        """Record one output of the backend's ``chat`` (by hash; the most recent
        ``capacity`` are kept)."""
        key = hash(rendered)
        self._seen[key] = None
        self._seen.move_to_end(key)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def split(self, text: str) -> Segments:
        """``text`` as markup and plain pieces (empty pieces left out).

        * A text starting with ``before`` whose prefix up to an occurrence of ``after`` is a
          recorded rendering (the latest such occurrence wins): template, user content, template,
          then the rest as plain text (a chat output with a continuation).
        * Not recorded: ``before`` is markup, and ``after`` is markup where the text ends with
          it (pieces that token methods splice), else at its last occurrence.
        * A text not starting with ``before`` is plain, except an ``after`` it ends with.
        """
        before, after = self.before, self.after
        if not text.startswith(before):
            if after and text.endswith(after) and len(text) >= len(after):
                return _pieces([(text[: -len(after)], False), (after, True)])
            return _pieces([(text, False)])
        start = len(before)
        ends = _ends_of(after, text, start) if after else []
        recorded = [end for end in ends if hash(text[:end]) in self._seen]
        if recorded:
            end = recorded[-1]
        elif ends and ends[-1] == len(text):
            end = len(text)
        elif ends:
            end = ends[-1]
        else:
            return _pieces([(before, True), (text[start:], False)])
        return _pieces(
            [
                (before, True),
                (text[start : end - len(after)], False),
                (after, True),
                (text[end:], False),
            ]
        )


def _ends_of(after: str, text: str, start: int) -> list[int]:
    """End positions of every occurrence of ``after`` in ``text`` at or after ``start``."""
    ends: list[int] = []
    at = text.find(after, start)
    while at != -1:
        ends.append(at + len(after))
        at = text.find(after, at + 1)
    return ends


def _pieces(segments: Segments) -> Segments:
    return [(piece, markup) for piece, markup in segments if piece]
