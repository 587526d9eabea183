"""Stop strings: where a generated text ends when the model runs past one, the same on every
backend that cuts its own output."""

from __future__ import annotations

from collections.abc import Sequence


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the earliest occurrence of any stop string (empty stop strings are
    ignored; ``text`` whole when none occurs)."""
    found = (text.find(s) for s in stops if s)
    return text[: min((at for at in found if at != -1), default=len(text))]
