"""FOLIO: first-order-logic natural-language inference, posed as a three-way multiple choice.

Local files (``<data_dir>/folio/``): the paper's splits ``greater-{train,dev,test}.csv``
(columns goal, target, final_target; 100/100/203), else the FOLIO release's
``*train*.jsonl`` / ``*validation*.jsonl`` (train/dev drawn from train, test = validation).
Hub: ``tasksource/folio`` (the official ``yale-nlp/FOLIO`` is gated).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from promptopt.types import AnswerType, Example
from promptopt_tasks.answers import MultipleChoice
from promptopt_tasks.base import BenchmarkTask, Splits
from promptopt_tasks.rows import BadRow, Row, convert_rows
from promptopt_tasks.sources import hub_rows, missing_file, read_csv, read_jsonl

_OPTION_LINE = re.compile(r"^\(([A-Z])\)", re.MULTILINE)
_LABELS = {"true": "A", "false": "B", "uncertain": "C", "unknown": "C"}


def format_question(premises: list[str], conclusion: str) -> str:
    """The paper's FOLIO question: premises, the statement and the three options."""
    return (
        "Premise:\n" + "\n".join(premises) + "\n\nQuestion:\n"
        "Given the premise above, is the following statement true, false, or uncertain?\n\n"
        f"Statement: {conclusion}\n\nOptions:\n(A) True\n(B) False\n(C) Uncertain"
    )


class Folio(BenchmarkTask):
    """FOLIO (Han et al. 2022): is the statement true, false or uncertain given the premises?"""

    name = "folio"
    description = "FOLIO logical reasoning, options (A) True (B) False (C) Uncertain; 100/100/203"
    answer_type: ClassVar[AnswerType] = AnswerType.MULTIPLE_CHOICE
    answers = MultipleChoice("ABC")
    hub_id = "tasksource/folio"
    paper_sizes = (100, 100, 203)

    # ------------------------------------------------------------------ rows -> examples

    def _from_csv(self, split: str) -> Callable[[Row], Example]:
        def convert(row: Row) -> Example:
            question = row.text("goal").strip()
            letters = tuple(_OPTION_LINE.findall(question))
            if not letters:
                raise BadRow("the question lists no options like '(A) True'")
            answer = self.answers.normalize(row.text("target"))
            if answer is None or answer not in letters:
                raise BadRow(f"target {row.fields['target']!r} is not one of the options {letters}")
            final = row.fields.get("final_target")
            if final and self.answers.normalize(str(final)) != answer:
                raise BadRow(f"target {row.fields['target']!r} and final_target {final!r} disagree")
            return Example(f"folio/{split}/{row.index}", question, answer, letters)

        return convert

    def _from_record(self, source: str) -> Callable[[Row], Example]:
        def convert(row: Row) -> Example:
            premises = row.fields.get("premises")
            if isinstance(premises, str):
                premises = [line for line in premises.splitlines() if line.strip()]
            if not isinstance(premises, list) or not premises:
                raise BadRow("missing field 'premises'")
            label = row.text("label")
            answer = _LABELS.get(label.strip().lower())
            if answer is None:
                raise BadRow(f"label {label!r} is not True, False, Uncertain or Unknown")
            question = format_question([str(p) for p in premises], row.text("conclusion").strip())
            return Example(f"folio/{source}/{row.index}", question, answer, ("A", "B", "C"))

        return convert

    # ------------------------------------------------------------------ sources

    def load_local(self, root: Path) -> Splits:
        folder = root / "folio"
        skip = self.options.skip_bad_rows
        csvs = {split: folder / f"greater-{split}.csv" for split in ("train", "dev", "test")}
        if all(path.is_file() for path in csvs.values()):
            splits: Splits = {
                split: convert_rows(read_csv(path), self._from_csv(split), skip_bad=skip)
                for split, path in csvs.items()
            }
            return self.trim(splits, {split: path.name for split, path in csvs.items()})
        train_files = sorted(folder.glob("*train*.jsonl"))
        test_files = sorted(folder.glob("*validation*.jsonl")) or sorted(folder.glob("*dev*.jsonl"))
        if len(train_files) != 1 or len(test_files) != 1:
            raise missing_file(
                self.name,
                "greater-{train,dev,test}.csv (or one *train*.jsonl and one *validation*.jsonl)",
                folder,
            )
        pool = convert_rows(read_jsonl(train_files[0]), self._from_record("train"), skip_bad=skip)
        test = convert_rows(
            read_jsonl(test_files[0]), self._from_record("validation"), skip_bad=skip
        )
        return self.carve(pool, test, train_files[0].name, test_files[0].name)

    def load_hub(self) -> Splits:
        layout = "folio/greater-{train,dev,test}.csv"
        skip = self.options.skip_bad_rows
        train = hub_rows(self.name, self.hub_id, None, "train", layout)
        test = hub_rows(self.name, self.hub_id, None, "validation", layout)
        pool = convert_rows(train, self._from_record("train"), skip_bad=skip)
        return self.carve(
            pool,
            convert_rows(test, self._from_record("validation"), skip_bad=skip),
            f"{self.hub_id}[train]",
            f"{self.hub_id}[validation]",
        )
