"""Tasks over the user's own data: ``--task reviews.csv`` (also .tsv, .jsonl, .json, .parquet)
or ``--task hf:ORG/NAME[:CONFIG]``. Each reference resolves to a task class made for it, whose
identity is the data's SHA-256; its options name the question (a column or a template over
columns), the answer column, the answer type (detected from the data when not given) and the
split column (how rows become examples: :mod:`promptopt_tasks.tableload`). User guide:
``docs/write-a-task-plugin.md``, "Your own data"."""

from __future__ import annotations

import hashlib
import re
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from pydantic import field_validator, model_validator

from promptopt.components import ComponentOptions
from promptopt.errors import DataError, PromptoptError
from promptopt.filehash import file_sha256
from promptopt.rundir import task_folder_name
from promptopt.types import DATA_FILE_SUFFIXES, AnswerType, Example
from promptopt_tasks.answerdetect import AnswerKind
from promptopt_tasks.answers import label_key
from promptopt_tasks.base import BenchmarkTask, Splits, TaskOptions
from promptopt_tasks.extractors import extractor_text
from promptopt_tasks.tableload import Loaded, load_table
from promptopt_tasks.tables import Table, read_file, read_hub


class DataFileOptions(TaskOptions):
    """Options of a task over a data file or a hub dataset (besides the sizes and seed of
    every task): which columns hold the question and the answer, the answer type, the split."""

    #: A column, or a template over columns such as ``"{premise}\nQuestion: {hypothesis}"``.
    question: str | None = None
    #: The answer column.
    answer: str | None = None
    #: choice, yesno, number or text; None: detected from the answers.
    answer_type: AnswerKind | None = None
    #: The labels of a ``choice`` answer, comma-separated ("a,b,c") or a list.
    options: tuple[str, ...] | None = None
    #: A column holding train/dev/test (dev also as validation or val) for each row.
    split: str | None = None
    #: The answer extractor's text, instead of the answer type's own.
    extractor: str | None = None

    @field_validator("options", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")
        if isinstance(value, (list, tuple)):
            labels = tuple(str(v).strip() for v in value if str(v).strip())
            keys = [label_key(label) for label in labels]
            if len(labels) < 2 or len(set(keys)) != len(keys):
                raise ValueError("options must name two or more different labels, e.g. a,b,c")
            return labels
        return value

    @model_validator(mode="after")
    def _options_are_choices(self) -> DataFileOptions:
        if self.options is not None and self.answer_type not in (None, "choice"):
            raise ValueError(f"options are labels of answer_type=choice, not {self.answer_type}")
        return self


class TableTask(BenchmarkTask):
    """A task over the rows of a table (a data file or a hub dataset); subclasses made by
    :func:`resolve` say where the table is and what its content hash is."""

    Options = DataFileOptions
    options: DataFileOptions
    answer_type: ClassVar[AnswerType] = AnswerType.FREE_TEXT  # the real one depends on options
    #: The SHA-256 of the data (a file's bytes; a hub dataset's rows).
    sha256: ClassVar[str] = ""
    #: A short name for example ids: the file's stem, or the hub dataset's name.
    slug: ClassVar[str] = ""

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self._loaded: Loaded | None = None

    @classmethod
    def identity(cls) -> dict[str, Any]:
        return {"sha256": cls.sha256}

    @abstractmethod
    def read_table(self) -> Table:
        """The rows of the data, exactly the content :attr:`sha256` names."""

    # ------------------------------------------------------------------ loading

    def load_splits(self) -> Splits:
        return self.loaded().splits

    def load_local(self, root: Path) -> Splits:
        return self.load_splits()  # a data file needs no data directory

    def load_hub(self) -> Splits:
        return self.load_splits()

    def loaded(self) -> Loaded:
        """The data, read, checked and split once."""
        if self._loaded is None:
            self._loaded = load_table(self.read_table(), self.options, self.slug)
        return self._loaded

    def describe(self) -> dict[str, Any]:
        return dict(self.loaded().facts)

    # ------------------------------------------------------------------ answers

    def extractor(self, example: Example) -> str:
        if self.options.extractor is not None:
            return self.options.extractor
        return extractor_text(self.loaded().answers, example.options)

    def parse(self, text: str) -> str | None:
        return self.loaded().answers.parse(text)

    def continuation(self, answer: str) -> str:
        return self.loaded().answers.continuation(answer)

    def is_correct(self, predicted: str | None, example: Example) -> bool:
        """Exact match after normalizing the prediction like the gold answer."""
        if predicted is None:
            return False
        return self.loaded().answers.normalize(predicted) == example.answer


class DataFileTask(TableTask):
    """A task over a CSV, TSV, JSON-lines, JSON or Parquet file."""

    #: The file, resolved to an absolute path when the task was resolved.
    path: ClassVar[Path]

    def read_table(self) -> Table:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise DataError(
                f"cannot read task file {self.name!r} ({exc.strerror or exc})",
                hint="check that the file exists and is readable",
            ) from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise DataError(
                f"task file {self.name!r} changed while promptopt was using it",
                hint="wait until it is written completely, then run the command again",
            )
        return read_file(data, self.path.suffix, self.name)


class HubTableTask(TableTask):
    """A task over a dataset of the Hugging Face hub, read with ``datasets``."""

    dataset: ClassVar[str] = ""
    config: ClassVar[str | None] = None

    def read_table(self) -> Table:
        return read_hub(self.dataset, self.config, self.name)


# --------------------------------------------------------------------------- resolution

_CLASSES: dict[tuple[str, str], type[TableTask]] = {}
_HUB_REF = re.compile(r"hf:(?P<dataset>[\w.-]+(?:/[\w.-]+)?)(?::(?P<config>[\w.-]+))?")


def resolve(ref: str) -> type[TableTask] | None:
    """The task class for a data file or ``hf:`` reference; None for anything else (a name
    nobody registered). A reference that is data but unusable is a one-line error."""
    if ref.startswith("hf:"):
        return _hub_class(ref)
    path = Path(ref).expanduser()
    suffix = path.suffix.lower()
    if suffix not in DATA_FILE_SUFFIXES:
        if path.is_file():
            raise DataError(
                f"task file {ref!r} has an unknown data format {suffix or '(no suffix)'!r}",
                hint=f"save it as {', '.join(DATA_FILE_SUFFIXES)}",
            )
        return None
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(
            f"task file {ref!r} {problem} (looked at {path.resolve()})",
            hint="check the path; data files end in " + ", ".join(DATA_FILE_SUFFIXES),
        )
    resolved = path.resolve()
    sha = file_sha256(resolved)
    key = (ref, f"{resolved}\x00{sha}")
    if key not in _CLASSES:
        _CLASSES[key] = _make_class(
            DataFileTask,
            ref,
            sha,
            task_folder_name(ref),
            f"your data in {resolved.name}",
            path=resolved,
        )
    return _CLASSES[key]


def _hub_class(ref: str) -> type[TableTask]:
    match = _HUB_REF.fullmatch(ref)
    if match is None:
        raise PromptoptError(
            f"task {ref!r} is not a hub dataset reference",
            hint="write hf:ORG/NAME, or hf:ORG/NAME:CONFIG for one configuration",
        )
    dataset, config = match["dataset"], match["config"]
    table = read_hub(dataset, config, ref)
    sha = _rows_sha256(table)
    key = (ref, sha)
    if key not in _CLASSES:
        slug = task_folder_name(dataset.rpartition("/")[2] + (f"-{config}" if config else ""))
        _CLASSES[key] = _make_class(
            HubTableTask, ref, sha, slug, f"hub dataset {ref[3:]}", dataset=dataset, config=config
        )
    return _CLASSES[key]


def _rows_sha256(table: Table) -> str:
    """A hub dataset's content hash: its splits and rows as canonical JSON."""
    from promptopt.evalcache import canonical_json

    digest = hashlib.sha256()
    for split, rows in table.parts.items():
        digest.update(canonical_json([split, len(rows)]).encode("utf-8"))
        for row in rows:
            digest.update(canonical_json(row.fields).encode("utf-8"))
    return digest.hexdigest()


def _make_class(
    base: type[TableTask], ref: str, sha: str, slug: str, what: str, **attributes: Any
) -> type[TableTask]:
    namespace = {
        "__module__": __name__,
        "__doc__": f"The task over {what}.",
        "name": ref,
        "description": f"{what} (sha256 {sha[:12]})",
        "sha256": sha,
        "slug": slug,
        **attributes,
    }
    class_name = base.__name__ + "_" + re.sub(r"\W", "_", slug)
    return type(class_name, (base,), namespace)
