"""How a table's examples become train, dev and test: a split column or the source's own splits
(dev drawn from train when there is none), else a seeded shuffle of every row; sized like the
built-in tasks (``train_size``/``dev_size``/``test_size``, defaults 50/100/100, dev and test
shrinking in proportion for smaller data). Each split keeps the source's row order."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from promptopt.errors import quote
from promptopt.types import SPLITS, Example
from promptopt_tasks.base import Splits, TaskOptions
from promptopt_tasks.splits import carve, fit_sizes, take

#: Default (train, dev, test) sizes, as for BIG-Bench Hard.
DEFAULT_SIZES = (50, 100, 100)

#: Split-column values (lower case) and the split each names.
SPLIT_VALUES = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "validation": "dev",
    "valid": "dev",
    "val": "dev",
    "test": "test",
    "testing": "test",
}


class RepeatedQuestions(UserWarning):
    """The same question is in more than one split, so dev or test scores see it in training."""


def split_of(value: str) -> str | None:
    """The split a split-column value (or a hub split name) names, or None."""
    return SPLIT_VALUES.get(value.strip().lower())


def _in_order(chunk: Sequence[Example], order: dict[str, int]) -> list[Example]:
    return sorted(chunk, key=lambda ex: order[ex.id])


def _seed(options: TaskOptions) -> int:
    return options.split_seed if options.split_seed is not None else 0


def carve_all(examples: list[Example], options: TaskOptions, source: str) -> Splits:
    """Train, dev and test drawn without overlap from a seeded shuffle of ``examples``
    (``split_seed``, default 0); ``test_size=max`` takes every example train and dev leave."""
    requested = (options.train_size, options.dev_size, options.test_size)
    if requested[2] == "max":
        train, dev, _ = fit_sizes(
            len(examples), (requested[0], requested[1], None), DEFAULT_SIZES, source=source
        )
        sizes = [train, dev, len(examples) - train - dev]
    else:
        test = requested[2] if isinstance(requested[2], int) else None
        sizes = fit_sizes(
            len(examples), (requested[0], requested[1], test), DEFAULT_SIZES, source=source
        )
    order = {ex.id: i for i, ex in enumerate(examples)}
    chunks = carve(examples, sizes, _seed(options), source=source)
    return {split: _in_order(chunk, order) for split, chunk in zip(SPLITS, chunks, strict=True)}


def from_parts(parts: dict[str, list[Example]], options: TaskOptions, source: str) -> Splits:
    """Fixed train and test (and dev) parts, each a seeded sample of its default size or the
    size asked; with no dev part, dev is drawn from the train part."""
    seed = _seed(options)
    train, dev, test = parts.get("train", []), parts.get("dev", []), parts.get("test", [])
    if dev:
        train = take(train, options.train_size or min(DEFAULT_SIZES[0], len(train)), seed,
                     split="train", source=source)  # fmt: skip
        dev = take(dev, options.dev_size or min(DEFAULT_SIZES[1], len(dev)), seed,
                   split="dev", source=source)  # fmt: skip
    else:
        size = options.train_size or DEFAULT_SIZES[0]
        dev_size = options.dev_size or max(1, min(DEFAULT_SIZES[1], len(train) - size))
        order = {ex.id: i for i, ex in enumerate(train)}
        chunks = carve(train, [size, dev_size], seed, source=f"the train rows of {source}")
        train, dev = (_in_order(chunk, order) for chunk in chunks)
    asked = options.test_size
    test_size = len(test) if asked == "max" else asked or min(DEFAULT_SIZES[2], len(test))
    test = take(test, test_size, seed, split="test", source=source)
    return {"train": train, "dev": dev, "test": test}


def warn_repeated_questions(splits: Splits, source: str) -> None:
    """Warn (one line) when questions repeat across splits: a model seeing a test question in
    training makes its score look better than it is."""
    seen: dict[str, set[str]] = {}
    for split, examples in splits.items():
        for example in examples:
            seen.setdefault(" ".join(example.question.split()), set()).add(split)
    repeated = [question for question, where in seen.items() if len(where) > 1]
    if repeated:
        warnings.warn(
            RepeatedQuestions(
                f"{source}: {len(repeated)} question(s) appear in more than one split, e.g. "
                f"{quote(repeated[0], 60)}; remove the duplicates for honest dev and test scores"
            ),
            stacklevel=2,
        )
