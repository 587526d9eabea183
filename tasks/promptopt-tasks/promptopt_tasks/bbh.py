"""BIG-Bench Hard: 27 task classes generated from one base, named ``bbh/<file stem>``.

Local files: ``<data_dir>/bbh/<task>.json`` (``{"examples": [{"input", "target"}]}``).
Hub: ``lukaemon/bbh`` (one config per task, split "test"). As in the GReaTer reference, train is
the first 50 examples in file order, dev the next 100 and test the 100 after (``split_seed``
shuffles before cutting); tasks with fewer than 250 examples keep 50 train and share the rest
between dev and test in proportion (causal_judgement 50/68/69, penguins_in_a_table 50/48/48,
snarks 50/64/64), with a logged note.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import ClassVar

from promptopt.types import SPLITS, Example
from promptopt_tasks.answers import AnswerFormat, Binary, FreeText, Integer, MultipleChoice
from promptopt_tasks.base import BenchmarkTask, Splits
from promptopt_tasks.rows import BadRow, Row, convert_rows
from promptopt_tasks.sources import hub_rows, missing_file, read_bbh_json
from promptopt_tasks.splits import carve, fit_sizes

log = logging.getLogger(__name__)

_YES_NO = ("Yes", "No")

#: Every BBH task: its answer format and a short description.
BBH_TASKS: dict[str, tuple[AnswerFormat, str]] = {
    "boolean_expressions": (Binary("True", "False"), "evaluate a Boolean expression"),
    "causal_judgement": (Binary(*_YES_NO), "how a typical person answers a causal question"),
    "date_understanding": (MultipleChoice("ABCDEF"), "date arithmetic"),
    "disambiguation_qa": (MultipleChoice("ABCD"), "antecedent of an ambiguous pronoun"),
    "dyck_languages": (FreeText("brackets"), "close a Dyck-n bracket sequence"),
    "formal_fallacies": (Binary("valid", "invalid"), "is the argument deductively valid"),
    "geometric_shapes": (MultipleChoice("ABCDEFGHIJK"), "name the shape an SVG path draws"),
    "hyperbaton": (MultipleChoice("AB"), "correct adjective order"),
    "logical_deduction_five_objects": (MultipleChoice("ABCDE"), "ordering puzzle, 5 objects"),
    "logical_deduction_seven_objects": (MultipleChoice("ABCDEFG"), "ordering puzzle, 7 objects"),
    "logical_deduction_three_objects": (MultipleChoice("ABC"), "ordering puzzle, 3 objects"),
    "movie_recommendation": (MultipleChoice("ABCDE"), "recommend a similar movie"),
    "multistep_arithmetic_two": (Integer(), "multi-step integer arithmetic"),
    "navigate": (Binary(*_YES_NO), "do the steps return to the start"),
    "object_counting": (Integer(), "count objects of a category"),
    "penguins_in_a_table": (MultipleChoice("ABCDE"), "questions about a table of penguins"),
    "reasoning_about_colored_objects": (
        MultipleChoice("ABCDEFGHIJKLMNOPQR"),
        "colors and positions of objects",
    ),
    "ruin_names": (MultipleChoice("ABCDEFGHIJK"), "humorous edit of a name"),
    "salient_translation_error_detection": (
        MultipleChoice("ABCDEF"),
        "type of error in a translation",
    ),
    "snarks": (MultipleChoice("AB"), "which sentence is sarcastic"),
    "sports_understanding": (Binary(*_YES_NO), "is a sports sentence plausible"),
    "temporal_sequences": (MultipleChoice("ABCD"), "when could an event have happened"),
    "tracking_shuffled_objects_five_objects": (MultipleChoice("ABCDE"), "track swaps, 5 objects"),
    "tracking_shuffled_objects_seven_objects": (
        MultipleChoice("ABCDEFG"),
        "track swaps, 7 objects",
    ),
    "tracking_shuffled_objects_three_objects": (MultipleChoice("ABC"), "track swaps, 3 objects"),
    "web_of_lies": (Binary(*_YES_NO), "who tells the truth"),
    "word_sorting": (FreeText("words"), "sort words alphabetically"),
}

_OPTION = re.compile(r"^\(([A-Z])\)\s?(.*)$", re.MULTILINE)


def merge_split_options(question: str, target: str) -> tuple[str, str] | None:
    """Repair an upstream BBH defect: an option containing commas was split into several
    options and the target is its text (e.g. "Monsters, Inc" for "(A) Monsters (B) Inc").
    Returns the question with those options merged and relabelled, and the new target
    letter; None when no consecutive run of options joins to ``target``."""
    head, sep, _ = question.partition("\nOptions:\n")
    options = _OPTION.findall(question)
    if not sep or not options:
        return None
    texts = [text.strip() for _, text in options]
    for start in range(len(texts)):
        for end in range(start + 2, len(texts) + 1):
            if ", ".join(texts[start:end]) == target.strip():
                merged = [*texts[:start], target.strip(), *texts[end:]]
                lines = [f"({chr(65 + i)}) {text}" for i, text in enumerate(merged)]
                return head + sep + "\n".join(lines), chr(65 + start)
    return None


class BBHTask(BenchmarkTask):
    """One BIG-Bench Hard task (Suzgun et al. 2022); subclasses set ``stem`` and ``answers``."""

    stem: ClassVar[str] = ""
    hub_id = "lukaemon/bbh"
    paper_sizes = (50, 100, 100)

    def _convert(self, row: Row) -> Example:
        question = row.text("input").strip()
        target = row.text("target").strip()
        options: tuple[str, ...] = ()
        answers = self.answers
        if isinstance(answers, MultipleChoice):
            letters = tuple(letter for letter, _ in _OPTION.findall(question))
            answer = answers.normalize(target)
            if answer is None or answer not in letters:
                repaired = merge_split_options(question, target)
                if repaired is None:
                    raise BadRow(f"target {target!r} is not one of the options {letters}")
                question, answer = repaired
                letters = tuple(letter for letter, _ in _OPTION.findall(question))
                log.info("%s: merged comma-split options into %r", row.where, target)
            options = letters
        else:
            normalized = answers.normalize(target)
            if normalized is None or (
                isinstance(answers, Integer) and not re.fullmatch(r"-?\d+", normalized)
            ):
                raise BadRow(f"target {target!r} is not a valid {answers.answer_type.value} answer")
            answer = normalized
            if isinstance(answers, Binary):
                options = answers.words
        return Example(f"{self.name}/{row.index}", question, answer, options)

    def _split(self, rows: list[Row], source: str) -> Splits:
        """The reference's splits: train = the first rows in file order, then dev, then test
        (``split_seed`` shuffles first instead); smaller tasks shrink dev and test."""
        examples = convert_rows(rows, self._convert, skip_bad=self.options.skip_bad_rows)
        opts = self.options
        test = opts.test_size
        if test == "max":  # every example train and dev leave
            train, dev = (
                opts.train_size or self.paper_sizes[0],
                opts.dev_size or self.paper_sizes[1],
            )
            test = max(1, len(examples) - train - dev)
        requested = (opts.train_size, opts.dev_size, test)
        sizes = fit_sizes(len(examples), requested, self.paper_sizes, source=source)
        wanted = [
            r if r is not None else d for r, d in zip(requested, self.paper_sizes, strict=True)
        ]
        if sizes != wanted:
            log.info(
                "%s: %d examples, so the splits are %s instead of %s",
                self.name,
                len(examples),
                "/".join(map(str, sizes)),
                "/".join(map(str, wanted)),
            )
        if opts.split_seed is not None:
            chunks = carve(examples, sizes, opts.split_seed, source=source)
        else:
            bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
            chunks = [examples[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]
        order = {ex.id: i for i, ex in enumerate(examples)}
        splits: Splits = {}
        for split, chunk in zip(SPLITS, chunks, strict=True):
            splits[split] = sorted(chunk, key=lambda ex: order[ex.id])
        return splits

    def load_local(self, root: Path) -> Splits:
        path = root / "bbh" / f"{self.stem}.json"
        if not path.is_file():
            raise missing_file(self.name, f"{self.stem}.json", path.parent)
        return self._split(read_bbh_json(path), path.name)

    def load_hub(self) -> Splits:
        rows = hub_rows(self.name, self.hub_id, self.stem, "test", f"bbh/{self.stem}.json")
        return self._split(rows, f"{self.hub_id} ({self.stem})")


def _make_task(stem: str, answers: AnswerFormat, what: str) -> type[BBHTask]:
    class_name = "BBH" + "".join(part.title() for part in stem.split("_"))
    namespace = {
        "__module__": __name__,
        "__doc__": f"BIG-Bench Hard {stem}: {what}.",
        "name": f"bbh/{stem}",
        "stem": stem,
        "answers": answers,
        "answer_type": answers.answer_type,
        "description": f"BBH {what} ({answers.answer_type.value})",
    }
    return type(class_name, (BBHTask,), namespace)


BBH_TASK_CLASSES: tuple[type[BBHTask], ...] = tuple(
    _make_task(stem, answers, what) for stem, (answers, what) in BBH_TASKS.items()
)
globals().update({cls.__name__: cls for cls in BBH_TASK_CLASSES})
