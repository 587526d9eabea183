"""Answer formats per answer type: normalize gold answers and read final answers out of text.

Each parser collects every answer mention it recognizes and returns the *last* one. Explicit
mentions ("the answer is B", "$B", "#### 72") outrank loose ones (a bare "(B)", the last number)
so that options echoed in the reasoning do not beat a stated answer. Model text is only
matched with regular expressions, never evaluated.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from promptopt.types import AnswerType

#: The format hint inside our own extractors, removed before parsing so that its examples
#: ("'$A' or '$B'") are never read as an answer.
_HINT = re.compile(r"\(use exact(?:ly this)? format:[^()]*\)", re.IGNORECASE)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{([^{}]*)\}")
_LATEX_TEXT = re.compile(r"\\(?:textbf|text|mathrm|mathbf)\s*\{([^{}]*)\}")
#: "the answer is", "Answer:", "final answer would be", "answer =" (case-insensitive).
_MARKER = (
    r"(?i:\banswers?\b)\s*"
    r"(?:(?i:is|was|would\s+be|will\s+be|should\s+be|must\s+be)\b\s*[:=]?|[:=])\s*"
)


def clean(text: str) -> str:
    """Text with extractor hints, markdown emphasis, LaTeX wrappers and odd minus signs
    removed, so that the patterns below see plain answers."""
    text = _HINT.sub(" ", text)
    text = text.replace("\\$", "$").replace("**", "").replace("__", "")
    text = text.replace("\u2212", "-").replace("\u2013", "-")
    text = _LATEX_TEXT.sub(r"\1", text)
    return _BOXED.sub(lambda m: f" answer is {m.group(1)} ", text)


def _latest_first(text: str, patterns: Iterable[re.Pattern[str]]) -> list[str]:
    """Every answer captured by ``patterns`` in ``text``, the last mention first."""
    found = [(m.start("a"), m.group("a")) for p in patterns for m in p.finditer(text)]
    return [answer for _, answer in sorted(found, key=lambda item: item[0], reverse=True)]


class AnswerFormat(ABC):
    """How one answer type is normalized, parsed and continued after the extractor."""

    answer_type: ClassVar[AnswerType]
    #: Pattern tiers, most explicit first; each pattern captures the answer as group "a".
    _tiers: list[list[re.Pattern[str]]]

    def __init__(self, *tiers: Iterable[str]) -> None:
        self._tiers = [[re.compile(p) for p in tier] for tier in tiers]

    @abstractmethod
    def normalize(self, raw: str) -> str | None:
        """The canonical form of a stated answer (gold or predicted), or None if invalid."""

    def parse(self, text: str) -> str | None:
        """The last answer stated in ``text``, normalized, or None."""
        text = clean(text)
        for patterns in self._tiers:
            answer = self._find(text, patterns)
            if answer is not None:
                return answer
        return None

    def _find(self, text: str, patterns: Iterable[re.Pattern[str]]) -> str | None:
        for raw in _latest_first(text, patterns):
            answer = self.normalize(raw)
            if answer is not None:
                return answer
        return None

    def continuation(self, answer: str) -> str:
        """The text following an extractor that ends in "is $"."""
        return self.normalize(answer) or answer


# --------------------------------------------------------------------------- multiple choice


#: Option lists echoed from the question: "(A) ..." on two or more consecutive lines, or
#: several "(X)" on one line ("Options: (A) True (B) False (C) Uncertain").
_OPTION_LISTING = re.compile(
    r"(?m:(?:^[ \t]*\([A-Z]\)[^\n]*(?:\n|\Z)){2,})|\([A-Z]\)[^()\n]*(?:\([A-Z]\)[^()\n]*)+"
)


class MultipleChoice(AnswerFormat):
    """An option letter: gold "(C)" becomes "C"; reads "$C", "(C)", "the answer is C", "C)"."""

    answer_type: ClassVar[AnswerType] = AnswerType.MULTIPLE_CHOICE

    def __init__(self, letters: str = "ABC") -> None:
        self.letters = letters
        letter = f"(?P<a>[{self.letters}])"
        # "I" is also a word: "the answer is I think (C)" must not read as option I.
        end = r"(?![A-Za-z0-9])(?<!I(?=\s+[a-z]))"
        strong = [
            rf"\$\s*\(?{letter}\)?{end}",
            rf"{_MARKER}(?:(?i:option|choice)\s*)?\(?{letter}\)?{end}",
            rf"(?i:\b(?:option|choice))\s*\(?{letter}\)?\s*(?i:is\s+(?:the\s+)?correct)",
        ]
        loose = [
            rf"\({letter}\)",
            rf"(?m:^\s*{letter}[).:](?!\w))",
            rf"\A\s*{letter}\s*(?:\$|\Z)",  # a bare continuation: "C", "C$."
        ]
        super().__init__(strong, loose)

    def normalize(self, raw: str) -> str | None:
        match = re.fullmatch(rf"\s*\(?\s*([{self.letters}])\s*\)?\s*\.?\s*", raw)
        return match.group(1) if match else None

    def parse(self, text: str) -> str | None:
        """A stated answer wins; a loose "(C)" counts only outside echoed option lists."""
        text = clean(text)
        stated, loose = self._tiers
        return self._find(text, stated) or self._find(_OPTION_LISTING.sub(" ", text), loose)


# --------------------------------------------------------------------------- binary words


class Binary(AnswerFormat):
    """One of two words (Yes/No, True/False, valid/invalid), any case in, canonical case out.
    Reads "$ Yes", "the answer is yes", or the word ending the text ("So it is invalid.")."""

    answer_type: ClassVar[AnswerType] = AnswerType.BINARY

    def __init__(self, positive: str = "Yes", negative: str = "No") -> None:
        self.positive, self.negative = positive, negative
        words = sorted((self.positive, self.negative), key=len, reverse=True)
        word = rf"(?P<a>(?i:{'|'.join(re.escape(w) for w in words)}))\b"
        strong = [rf"\$\s*\(?{word}", rf"{_MARKER}['\"(]?{word}"]
        loose = [rf"\b{word}[^A-Za-z0-9]*\Z", rf"\A\s*{word}"]
        super().__init__(strong, loose)

    @property
    def words(self) -> tuple[str, str]:
        return (self.positive, self.negative)

    def normalize(self, raw: str) -> str | None:
        key = raw.strip().strip(".!'\"()$ ").lower()
        return next((w for w in self.words if w.lower() == key), None)

    def continuation(self, answer: str) -> str:
        """A leading space: the reference's "is $ Yes", split as "is $" + " Yes"."""
        return " " + (self.normalize(answer) or answer.strip())


# --------------------------------------------------------------------------- labels


def label_key(text: str) -> str:
    """How a label is matched: case, surrounding punctuation and spacing do not count."""
    return " ".join(text.strip().strip(".!'\"()$ ").split()).lower()


class Labels(AnswerFormat):
    """One of a fixed set of labels (positive/neutral/negative, plausible/implausible): Binary
    generalized to any number of labels, read exactly like it. Any case in, the label's own
    spelling out; where one label contains another ("plausible" in "implausible") the longer
    one is read. Reads "$ neutral", "the answer is neutral", or a label ending the text."""

    # a closed set of answers; the letters of MULTIPLE_CHOICE are one kind of it
    answer_type: ClassVar[AnswerType] = AnswerType.MULTIPLE_CHOICE

    def __init__(self, labels: Iterable[str]) -> None:
        self.labels = tuple(labels)
        keys = [label_key(label) for label in self.labels]
        if len(self.labels) < 2 or not all(keys) or len(set(keys)) != len(keys):
            raise ValueError(f"labels must be two or more distinct texts, not {self.labels!r}")
        self._by_key = dict(zip(keys, self.labels, strict=True))
        ordered = sorted(self.labels, key=len, reverse=True)
        word = rf"(?P<a>(?i:{'|'.join(re.escape(label) for label in ordered)}))(?!\w)"
        strong = [rf"\$\s*\(?{word}", rf"{_MARKER}['\"(]?{word}"]
        loose = [rf"(?<!\w){word}[^A-Za-z0-9]*\Z", rf"\A\s*{word}"]
        super().__init__(strong, loose)

    def normalize(self, raw: str) -> str | None:
        return self._by_key.get(label_key(raw))

    def continuation(self, answer: str) -> str:
        """A leading space, as for :class:`Binary`: "is $" + " neutral"."""
        return " " + (self.normalize(answer) or answer.strip())


# --------------------------------------------------------------------------- integers

_NUMBER = r"(?P<a>(?<![\w.)])[-+]?\d(?:[\d,]*\d)?(?:\.\d+)?)(?![\d])"


def normalize_number(raw: str) -> str | None:
    """Canonical number text ("-1,234.00" -> "-1234", "+5" -> "5", "2.50" -> "2.5"), or None."""
    text = raw.strip().replace(",", "").replace(" ", "").replace("\u2212", "-").rstrip(".")
    text = text.lstrip("$")
    if not re.fullmatch(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)", text):
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern above already excludes these
        return None
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


class Integer(AnswerFormat):
    """A signed integer. Reads "the answer is 72.", "#### 72", "answer is $-1,234$", then a
    dollar amount ("$18"), then the last number; commas, signs, decimals ("72.00") and
    trailing periods are handled."""

    answer_type: ClassVar[AnswerType] = AnswerType.INTEGER

    def __init__(self) -> None:
        stated = [rf"{_MARKER}\$?\s*{_NUMBER}", rf"####\s*\$?\s*{_NUMBER}"]
        super().__init__(stated, [rf"\$\s*{_NUMBER}"], [_NUMBER])

    def normalize(self, raw: str) -> str | None:
        return normalize_number(raw)


class Number(Integer):
    """Any number, integer or decimal ("-3", "2.5", "1,234"): read and normalized exactly like
    :class:`Integer` (which already reads decimals); only the extractor's wording differs."""


# --------------------------------------------------------------------------- free text

_BRACKETS = re.compile(r"[()\[\]{}<>]")
_WORD_EDGE = ".,;:!?\"'`()[]{}"


class FreeText(AnswerFormat):
    """Free text after an answer marker, up to "$" or the end of the line. ``kind`` picks the
    normalization: "brackets" (Dyck: the bracket characters, space-separated), "words" (word
    sorting: lower-case words in order) or "text" (whitespace collapsed)."""

    answer_type: ClassVar[AnswerType] = AnswerType.FREE_TEXT

    def __init__(self, kind: str = "text") -> None:
        if kind not in ("brackets", "words", "text"):
            raise ValueError(f"unknown free-text kind {kind!r}")
        self.kind = kind
        body = r"(?P<a>[^$\n]*[^$\s][^$\n]*?)\s*(?:\$|\n|\Z)"
        # One tier: the last of "answer is $X$", "is $X", "answer: X" or a bare continuation
        # "X$", so that "is $The answer is: X" reads X.
        strong = [
            rf"{_MARKER}\$?\s*{body}",
            rf"(?i:\bis)\s*\$\s*{body}",
            # a bare continuation, but never the extractor's own "... is $" lead-in
            r"\A\s*(?P<a>[^$\n]*[^$\s])(?<!\bis)\s*\$",
        ]
        if kind == "brackets":  # a bare bracket continuation without "$": "]]>"
            strong.append(r"\A\s*(?P<a>[^\n]*\S)\s*\Z")
        # Overlapping search (zero-width lookahead): a body that runs over a later marker
        # must not hide that marker's match.
        super().__init__([f"(?={p})" for p in strong])

    def normalize(self, raw: str) -> str | None:
        if self.kind == "brackets":
            text = " ".join(_BRACKETS.findall(raw))
        elif self.kind == "words":
            words = (w.strip(_WORD_EDGE).lower() for w in re.split(r"[\s,]+", raw))
            text = " ".join(w for w in words if w)
        else:
            text = " ".join(raw.split()).rstrip(".")
        return text or None
