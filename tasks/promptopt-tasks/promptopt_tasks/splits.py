"""Deterministic split sizing: trim fixed splits, or carve train/dev/test out of one pool."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from promptopt.errors import PromptoptError

T = TypeVar("T")


def take(
    items: Sequence[T], size: int | None, seed: int | None, *, split: str, source: str
) -> list[T]:
    """``size`` items of a fixed split: all when None, the first ``size`` when ``seed`` is
    None, else a seeded sample kept in file order."""
    if size is None:
        return list(items)
    if not items:
        raise PromptoptError(
            f"the {split} split is empty: {source} has no examples",
            hint="check that the file holds data rows",
        )
    if size > len(items):
        raise PromptoptError(
            f"{split}_size={size} exceeds the {len(items)} examples of {source}",
            hint=f"use {split}_size={len(items)} or less",
        )
    if seed is None:
        return list(items[:size])
    chosen = sorted(random.Random(seed).sample(range(len(items)), size))
    return [items[i] for i in chosen]


def carve(pool: Sequence[T], sizes: Sequence[int], seed: int, *, source: str) -> list[list[T]]:
    """Disjoint consecutive chunks of ``sizes`` from a seeded shuffle of ``pool``."""
    if sum(sizes) > len(pool):
        raise PromptoptError(
            f"{' + '.join(map(str, sizes))} examples requested but {source} has {len(pool)}",
            hint="lower train_size/dev_size/test_size",
        )
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    chunks: list[list[T]] = []
    start = 0
    for size in sizes:
        chunks.append([pool[i] for i in order[start : start + size]])
        start += size
    return chunks


def fit_sizes(
    total: int, requested: Sequence[int | None], defaults: Sequence[int], *, source: str
) -> list[int]:
    """Sizes (train, dev, test) within ``total`` examples. Sizes the user set are kept (an error
    if they do not fit); defaulted dev/test sizes shrink in proportion to share what is left
    (e.g. BBH penguins_in_a_table, 146 examples: 50/48/48)."""
    sizes = [r if r is not None else d for r, d in zip(requested, defaults, strict=True)]
    if sum(sizes) <= total:
        return sizes
    flexible = [i for i in (1, 2) if requested[i] is None]
    fixed = sum(s for i, s in enumerate(sizes) if i not in flexible)
    left = total - fixed
    if not flexible or left < len(flexible):
        raise PromptoptError(
            f"{' + '.join(map(str, sizes))} examples requested but {source} has {total}",
            hint="lower train_size/dev_size/test_size",
        )
    weight = sum(sizes[i] for i in flexible)
    shares = [left * sizes[i] // weight for i in flexible]
    shares[-1] = left - sum(shares[:-1])
    for i, share in zip(flexible, shares, strict=True):
        sizes[i] = share
    return sizes
