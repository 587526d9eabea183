"""Which vocabulary tokens may appear in a prompt (the reference's token mask)."""

from __future__ import annotations

import weakref
from typing import Any

from promptopt_greater.whitebox import WhiteBox

#: Punctuation-only tokens allowed besides words.
ALLOWED_SYMBOLS = frozenset({".", ",", " "})


def allowed_text(text: str) -> bool:
    """Printable ASCII made only of letters and spaces (with at least one letter), or exactly
    one of "." "," " "."""
    if text in ALLOWED_SYMBOLS:
        return True
    return (
        bool(text)
        and text.isascii()
        and any(c.isalpha() for c in text)
        and all(c.isalpha() or c == " " for c in text)
    )


def allowed_ids(wb: WhiteBox) -> list[int]:
    """Sorted ids whose decoded text passes :func:`allowed_text`, special tokens excluded."""
    cached = _CACHE.get(wb.tokenizer)
    if cached is not None:
        return cached
    limit = min(wb.vocab_size, len(wb.tokenizer))
    special = wb.special_ids
    ids = [
        i
        for i in range(limit)
        if i not in special and allowed_text(wb.tokenizer.decode([i], skip_special_tokens=False))
    ]
    _CACHE[wb.tokenizer] = ids
    return ids


def allowed_mask(wb: WhiteBox) -> Any:
    """Boolean tensor ``[V]``: True where a token may be proposed."""
    import torch

    mask = torch.zeros(wb.vocab_size, dtype=torch.bool)
    mask[allowed_ids(wb)] = True
    return mask


_CACHE: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()
