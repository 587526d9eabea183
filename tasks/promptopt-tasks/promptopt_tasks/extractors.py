"""Answer extractor wording per answer type, after the authors' GReaTer code (psunlpgroup/GreaTer).

The extractor is appended after the reasoning; every variant ends in "is $" so that the answer
comes next. The reference's yes/no extractor ends in "is $ " followed by "Yes"; here the space
belongs to the continuation (" Yes"), which gives the same text and a natural token split.
"""

from __future__ import annotations

from collections.abc import Sequence

from promptopt_tasks.answers import (
    AnswerFormat,
    Binary,
    FreeText,
    Integer,
    Labels,
    MultipleChoice,
    Number,
)

_LEAD = "Therefore, the final answer"

#: What the answer of each free-text kind looks like, for the format hint.
_FREE_TEXT_HINTS = {
    "brackets": "$SEQUENCE$, where SEQUENCE is the closing brackets separated by spaces",
    "words": "$WORDS$, where WORDS are the sorted words separated by spaces",
    "text": "$ANSWER$, where ANSWER is the answer text",
}


def extractor_text(answers: AnswerFormat, options: Sequence[str] = ()) -> str:
    """The extractor for ``answers``; ``options`` are the example's normalized options
    (the letters of a multiple-choice question, listed in the format hint)."""
    if isinstance(answers, MultipleChoice):
        letters = options or tuple(answers.letters)
        choices = " or ".join(f"'${letter}'" for letter in letters)
        return f"{_LEAD} (use exact format: {choices}) is $"
    if isinstance(answers, Binary):
        return f"{_LEAD} (use exact format: '$ {answers.positive}' or '$ {answers.negative}') is $"
    if isinstance(answers, Labels):
        shown = [f"'$ {label}'" for label in answers.labels]
        choices = ", ".join(shown[:-1]) + f" or {shown[-1]}"
        return f"{_LEAD} (use exact format: {choices}) is $"
    if isinstance(answers, Number):
        return f"{_LEAD} (use exactly this format: $NUMBER$, where NUMBER is a number) is $"
    if isinstance(answers, Integer):
        return (
            f"{_LEAD} (use exactly this format: $NUMBER$, where NUMBER is a positive or "
            "negative integer) is $"
        )
    if isinstance(answers, FreeText):
        return f"{_LEAD} (use exactly this format: {_FREE_TEXT_HINTS[answers.kind]}) is $"
    raise TypeError(f"no extractor for {type(answers).__name__}")
