"""What a completions answer must look like before anything reads, counts or caches it.

A server (or a proxy in front of it) can answer 200 with anything. Text that is not a string,
or token counts that are not numbers, must be an error naming the server, never an empty
output that the evaluation cache then keeps after the server is fixed.
"""

from __future__ import annotations

from typing import Any

#: JSON type names for messages.
_JSON_KINDS: tuple[tuple[type, str], ...] = (
    (bool, "a boolean"),
    (dict, "an object"),
    (list, "a list"),
    (str, "a string"),
    (int, "a number"),
    (float, "a number"),
)


def json_kind(value: Any) -> str:
    """``value``'s JSON type, for messages (``a list``, ``null`` ...)."""
    if value is None:
        return "null"
    for cls, name in _JSON_KINDS:
        if isinstance(value, cls):
            return name
    return type(value).__name__


def is_count(value: Any) -> bool:
    """True for a non-negative whole number (``12`` or ``12.0``; not ``True``, not ``"12"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value >= 0 and float(value).is_integer()


def usage_problem(usage: Any) -> str | None:
    """What is wrong with an answer's ``usage`` (None when it is absent or an object whose
    token counts, where given, are whole numbers)."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        return f"'usage' is {json_kind(usage)}, not an object"
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if value is not None and not is_count(value):
            return f"'usage.{key}' is {_short(value)}, not a token count"
    return None


def completion_problem(data: Any) -> str | None:
    """What is wrong with a completions answer (None when it has the shape promptopt reads):
    an object whose ``choices`` is a non-empty list of objects, the first with a string
    ``text``, and whose ``usage`` passes :func:`usage_problem`."""
    if not isinstance(data, dict):
        return f"the answer is {json_kind(data)}, not an object"
    choices = data.get("choices")
    if choices is None:
        return "no 'choices'"
    if not isinstance(choices, list):
        return f"'choices' is {json_kind(choices)}, not a list"
    if not choices:
        return "'choices' is empty"
    first = choices[0]
    if not isinstance(first, dict):
        return f"'choices[0]' is {json_kind(first)}, not an object"
    text = first.get("text")
    if not isinstance(text, str):
        return f"'choices[0].text' is {_short(text)}, not a string"
    return usage_problem(data.get("usage"))


def token_counts(answer: dict[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) of a checked answer; 0 where a count is absent."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _count(value: Any) -> int:
    return int(value) if is_count(value) else 0


def _short(value: Any) -> str:
    """``value`` as a short repr for a message (its JSON type when it is a container)."""
    if isinstance(value, (dict, list)) or value is None:
        return json_kind(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
