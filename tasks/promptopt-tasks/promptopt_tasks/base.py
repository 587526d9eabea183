"""The shared base of all benchmark tasks: options, split loading and caching, and the answer
format that gives the extractor, the parser and the scorer."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from promptopt.components import ComponentOptions, Task
from promptopt.errors import DataError, PromptoptError
from promptopt.metrics import DEFAULT_METRIC, Metric, resolve_metric
from promptopt.types import SPLITS, Example, Split
from promptopt_tasks.answers import AnswerFormat
from promptopt_tasks.extractors import extractor_text
from promptopt_tasks.sources import data_root
from promptopt_tasks.splits import carve, take

#: Examples per split name ("train", "dev", "test").
Splits = dict[str, list[Example]]


class TaskOptions(ComponentOptions):
    """Options of every benchmark task. Sizes and seed left at None mean the paper's splits;
    the same keys may also reach other components through the flat option dict."""

    data_dir: Path | None = None
    train_size: int | None = Field(default=None, ge=1)
    dev_size: int | None = Field(default=None, ge=1)
    #: An int, None (the paper's size), or "max": every example train and dev leave.
    test_size: int | Literal["max"] | None = Field(default=None)

    @field_validator("test_size")
    @classmethod
    def _positive(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 1:
            raise ValueError("test_size must be at least 1, or max")
        return value

    split_seed: int | None = None
    skip_bad_rows: bool = False
    #: How an answer scores (``exact``, ``contains``, ``f1``, ``numeric``, a plugin's metric or
    #: ``python:FILE.py:FUNCTION``); see ``promptopt.metrics``.
    metric: str = DEFAULT_METRIC
    #: The ``numeric`` metric's relative tolerance (0: the same number).
    tolerance: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _known_metric(self) -> TaskOptions:
        """An unknown metric (or a tolerance it does not take) fails here, before any model."""
        if self.metric != DEFAULT_METRIC or self.tolerance:
            self.chosen_metric()
        return self

    def chosen_metric(self) -> Metric:
        """The metric these options choose, with their tolerance when one is set."""
        return resolve_metric(self.metric, tolerance=self.tolerance or None)


class BenchmarkTask(Task[TaskOptions]):
    """A task whose splits come from local files or the hub; loaded once, then cached."""

    Options = TaskOptions
    #: How answers look: normalization, parsing, continuation and the extractor wording.
    answers: ClassVar[AnswerFormat]
    #: The hub dataset used when no data directory is given.
    hub_id: ClassVar[str] = ""
    #: The paper's (train, dev, test) sizes.
    paper_sizes: ClassVar[tuple[int, int, int]] = (100, 100, 100)

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self._splits: Splits | None = None
        default = self.options.metric == DEFAULT_METRIC
        self._metric: Metric | None = None if default else self.options.chosen_metric()

    # ------------------------------------------------------------------ data

    def examples(self, split: Split) -> list[Example]:
        if split not in SPLITS:
            raise PromptoptError(f"unknown split {split!r}", hint=f"use one of {', '.join(SPLITS)}")
        if self._splits is None:
            self._splits = self.load_splits()
        examples = self._splits[split]
        if not examples:
            raise DataError(
                f"task {self.name!r}: the {split} split is empty",
                hint="check the data files, or raise the split's size",
            )
        return list(examples)

    def load_splits(self) -> Splits:
        """All three splits: from the data directory when one is set, else from the hub."""
        root = data_root(self.options.data_dir)
        return self.load_local(root) if root is not None else self.load_hub()

    @abstractmethod
    def load_local(self, root: Path) -> Splits:
        """All three splits from the data directory ``root`` (already sized)."""

    @abstractmethod
    def load_hub(self) -> Splits:
        """All three splits from the hub (already sized)."""

    def trim(self, splits: Splits, sources: dict[str, str]) -> Splits:
        """Apply ``train_size``/``dev_size``/``test_size`` to fixed splits (see ``take``)."""
        test = self.options.test_size
        sizes = {
            "train": self.options.train_size,
            "dev": self.options.dev_size,
            "test": None if test == "max" else test,  # fixed test files: "max" is all of it
        }
        return {
            split: take(
                splits[split],
                sizes[split],
                self.options.split_seed,
                split=split,
                source=sources[split],
            )
            for split in SPLITS
        }

    def carve(
        self, pool: list[Example], test: list[Example], pool_name: str, test_name: str
    ) -> Splits:
        """Train and dev drawn without overlap from a training ``pool`` (seeded by
        ``split_seed``, default 0; paper sizes by default); test as given, then trimmed."""
        opts = self.options
        sizes = [opts.train_size or self.paper_sizes[0], opts.dev_size or self.paper_sizes[1]]
        seed = opts.split_seed if opts.split_seed is not None else 0
        train, dev = carve(pool, sizes, seed, source=pool_name)
        names = {"train": pool_name, "dev": pool_name, "test": test_name}
        return self.trim({"train": train, "dev": dev, "test": test}, names)

    # ------------------------------------------------------------------ answers

    def extractor(self, example: Example) -> str:
        return extractor_text(self.answers, example.options)

    def parse(self, text: str) -> str | None:
        return self.answers.parse(text)

    def continuation(self, answer: str) -> str:
        return self.answers.continuation(answer)

    def is_correct(self, predicted: str | None, example: Example) -> bool:
        """Exact match after normalizing the prediction like the gold answer."""
        if predicted is None:
            return False
        return self.answers.normalize(predicted) == example.answer

    def score(self, predicted: str | None, output: str, example: Example) -> float:
        """The chosen metric's score; ``exact`` is :meth:`is_correct`."""
        if self._metric is None:
            return super().score(predicted, output, example)
        return self._metric(predicted, output, example)

    @property
    def metric_name(self) -> str:
        return self.options.metric
