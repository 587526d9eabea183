"""GSM8K: grade-school math word problems with an integer answer.

Local files (``<data_dir>/gsm8k/``): the paper's ``greater-train.tsv`` and ``greater-dev.csv``
(columns goal, target, final_target; 100 each) and the release's ``test.jsonl`` (1319, answer
after "####"). Without the paper's files, train/dev are drawn from ``train.jsonl``.
Hub: ``openai/gsm8k`` (config "main").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from promptopt.types import AnswerType, Example
from promptopt_tasks.answers import Integer
from promptopt_tasks.base import BenchmarkTask, Splits
from promptopt_tasks.rows import BadRow, Row, convert_rows
from promptopt_tasks.sources import hub_rows, missing_file, read_csv, read_jsonl

LAYOUT = "gsm8k/greater-train.tsv, gsm8k/greater-dev.csv, gsm8k/test.jsonl"


def _first(folder: Path, *names: str) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


class GSM8K(BenchmarkTask):
    """GSM8K (Cobbe et al. 2021): multi-step arithmetic word problems."""

    name = "gsm8k"
    description = "GSM8K grade-school math, integer answers; 100/100/1319"
    answer_type: ClassVar[AnswerType] = AnswerType.INTEGER
    answers = Integer()
    hub_id = "openai/gsm8k"
    paper_sizes = (100, 100, 1319)

    def _gold(self, raw: str) -> str:
        answer = self.answers.normalize(raw)
        if answer is None or not re.fullmatch(r"-?\d+", answer):
            raise BadRow(f"gold answer {raw.strip()!r} is not an integer")
        return answer

    def _from_paper(self, source: str) -> Callable[[Row], Example]:
        def convert(row: Row) -> Example:
            question = row.text("goal").strip()
            return Example(
                f"gsm8k/{source}/{row.index}", question, self._gold(row.text("final_target"))
            )

        return convert

    def _from_release(self, source: str) -> Callable[[Row], Example]:
        def convert(row: Row) -> Example:
            solution = row.text("answer")
            if "####" not in solution:
                raise BadRow("the answer has no '#### <number>' line")
            gold = self._gold(solution.rsplit("####", 1)[1])
            return Example(f"gsm8k/{source}/{row.index}", row.text("question").strip(), gold)

        return convert

    def load_local(self, root: Path) -> Splits:
        folder = root / "gsm8k"
        skip = self.options.skip_bad_rows
        test_path = _first(folder, "test.jsonl")
        if test_path is None:
            raise missing_file(self.name, "test.jsonl", folder)
        test = convert_rows(read_jsonl(test_path), self._from_release("test"), skip_bad=skip)
        train_path = _first(folder, "greater-train.tsv", "greater-train.csv")
        dev_path = _first(folder, "greater-dev.csv", "greater-dev.tsv")
        if train_path is not None and dev_path is not None:
            splits: Splits = {
                "train": convert_rows(
                    read_csv(train_path), self._from_paper("train"), skip_bad=skip
                ),
                "dev": convert_rows(read_csv(dev_path), self._from_paper("dev"), skip_bad=skip),
                "test": test,
            }
            names = {"train": train_path.name, "dev": dev_path.name, "test": test_path.name}
            return self.trim(splits, names)
        pool_path = _first(folder, "train.jsonl")
        if pool_path is None:
            raise missing_file(
                self.name, "greater-train.tsv + greater-dev.csv (or train.jsonl)", folder
            )
        pool = convert_rows(read_jsonl(pool_path), self._from_release("train"), skip_bad=skip)
        return self.carve(pool, test, pool_path.name, test_path.name)

    def load_hub(self) -> Splits:
        skip = self.options.skip_bad_rows
        pool_rows = hub_rows(self.name, self.hub_id, "main", "train", LAYOUT)
        test_rows = hub_rows(self.name, self.hub_id, "main", "test", LAYOUT)
        pool = convert_rows(pool_rows, self._from_release("train"), skip_bad=skip)
        test = convert_rows(test_rows, self._from_release("test"), skip_bad=skip)
        return self.carve(pool, test, f"{self.hub_id}[train]", f"{self.hub_id}[test]")
