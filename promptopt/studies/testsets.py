"""One test set per task for the whole study: the same rows for every method and seed, so that
methods compare. By default the rows after the largest train + dev any method of the grid uses
(``--test-from N``: from row N); checked disjoint from every method's train and dev rows. Also
the training labels the majority baseline is taken from, and the dev rows a pilot uses."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from promptopt.components import Task
from promptopt.errors import PromptoptError
from promptopt.studies.plan import RunSpec, StudySettings
from promptopt.types import Example, Split

#: Task options that size the splits; the methods of a study may differ in them only.
SIZE_FIELDS = ("train_size", "dev_size", "test_size")


@dataclass
class TaskData:
    """A task's shared test set (``--test-limit`` applied), the union of the methods' training
    rows, the first method's dev rows, and the reasoning length evaluations use."""

    name: str
    task: Task
    test: list[Example]
    train: list[Example]
    dev: list[Example]
    test_from: int | None
    max_new_tokens: int
    digest: str


def _digest(parts: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def examples_digest(task: Task, examples: Sequence[Example], tokens: int) -> str:
    """What identifies an evaluation set: the task, its examples and the reasoning length."""
    rows = [f"{ex.id}\x1e{ex.question}\x1e{ex.answer}" for ex in examples]
    return f"{_digest([task.name, *rows])}-{tokens}"


def majority_answer(examples: Sequence[Example]) -> str:
    """The most common gold answer of ``examples`` (ties: the smallest)."""
    counts = Counter(ex.answer for ex in examples)
    return min(counts, key=lambda a: (-counts[a], a))


def _method_tasks(settings: StudySettings, task: str) -> list[tuple[str, Any]]:
    """(method, resolved plan) of ``task`` for every method of the study."""
    from promptopt.studies.evaluate import run_plan
    from promptopt.studies.runner import expected_config

    plans = []
    for method in settings.methods:
        spec = RunSpec(0, method, task, settings.seeds[0], _nowhere())
        plans.append((method, run_plan(expected_config(spec, settings).model_dump(mode="json"))))
    return plans


def _nowhere() -> Any:
    from pathlib import Path

    return Path(".")


def _build(cls: type[Task], options: Any) -> Task:
    task = cls(options)
    assert isinstance(task, Task)
    return task


def _split_ids(task: Task, split: Split) -> set[str]:
    return {ex.id for ex in task.examples(split)}


def task_data(settings: StudySettings, name: str) -> TaskData:
    """The shared test set of task ``name`` (see the module docstring); a one-line error when
    the methods give the task different non-size options, or when the test rows would overlap
    some method's train or dev rows."""
    from promptopt.studies.evaluate import eval_max_new_tokens

    plans = _method_tasks(settings, name)
    tasks: list[tuple[str, Task]] = []
    shared: dict[str, Any] | None = None
    first_method = plans[0][0]
    for method, plan in plans:
        options = plan.options["task"]
        values = {k: v for k, v in options.model_dump(mode="json").items() if k not in SIZE_FIELDS}
        if shared is None:
            shared = values
        elif values != shared:
            key = next(
                k for k in sorted(set(values) | set(shared)) if values.get(k) != shared.get(k)
            )
            raise PromptoptError(
                f"methods {first_method!r} and {method!r} give task {name!r} different "
                f"option {key!r}, so they cannot share one test set",
                hint=f"set -o {key}=... for every method (without a method: prefix)",
            )
        tasks.append((method, _build(plan.task_cls, options)))
    cls, options = plans[0][1].task_cls, plans[0][1].options["task"]
    fields = type(options).model_fields
    sized = "train_size" in fields and "dev_size" in fields
    used = max(len(t.examples("train")) + len(t.examples("dev")) for _, t in tasks)
    start: int | None = None
    if sized:
        start = settings.test_from if settings.test_from is not None else used
        if start < 2:
            raise PromptoptError(
                f"--test-from {start}: the test rows must leave at least one train and one dev "
                "row before them",
                hint="pass --test-from 2 or more",
            )
        train = min(max(len(t.examples("train")) for _, t in tasks), start - 1)
        update: dict[str, Any] = {"train_size": train, "dev_size": start - train}
        if settings.test_limit is not None and "test_size" in fields:
            # --test-limit sizes the shared test set, not the runs' own test_size (which runs
            # never read): every row from the start, then the first --test-limit of them
            update["test_size"] = "max"
        options = options.model_copy(update=update)
    elif settings.test_from is not None:
        raise PromptoptError(
            f"--test-from: task {name!r} has fixed splits, so its test rows cannot move",
            hint="drop --test-from",
        )
    test_task = _build(cls, options)
    test = test_task.examples("test")
    if settings.test_limit is not None:
        test = test[: settings.test_limit]
    ids = {ex.id for ex in test}
    for method, task in tasks:
        splits: tuple[Split, ...] = ("train", "dev")
        for split in splits:
            overlap = ids & _split_ids(task, split)
            if overlap:
                raise PromptoptError(
                    f"the test set of task {name!r} shares {len(overlap)} rows with the "
                    f"{split} rows of method {method!r}",
                    hint=f"pass --test-from {used} or more (rows before it are train and dev)",
                )
    train_rows: dict[str, Example] = {}
    for _, task in tasks:
        for ex in task.examples("train"):
            train_rows.setdefault(ex.id, ex)
    tokens = max(eval_max_new_tokens(settings, plan) for _, plan in plans)
    return TaskData(
        name=name,
        task=test_task,
        test=test,
        train=list(train_rows.values()),
        dev=tasks[0][1].examples("dev"),
        test_from=start,
        max_new_tokens=tokens,
        digest=examples_digest(test_task, test, tokens),
    )


def study_task_data(settings: StudySettings) -> dict[str, TaskData]:
    """:func:`task_data` of every task of the study (loads each task's data, no model)."""
    return {name: task_data(settings, name) for name in settings.tasks}
