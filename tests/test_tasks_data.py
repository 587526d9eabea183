"""The task plugins on the real shared data: loading, split sizes, gold answers, bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from promptopt_tasks.bbh import BBH_TASK_CLASSES, BBH_TASKS
from promptopt_tasks.folio import Folio
from promptopt_tasks.gsm8k import GSM8K
from promptopt_tasks.rows import BadRowsSkipped

from promptopt.components import Task
from promptopt.errors import DataError, PromptoptError
from promptopt.types import SPLITS, AnswerType, Prompt

ALL: list[type[Task]] = [Folio, GSM8K, *BBH_TASK_CLASSES]
BY_NAME = {cls.name: cls for cls in ALL}

EXPECTED_SIZES = {
    "folio": (100, 100, 203),
    "gsm8k": (100, 100, 1319),
    "bbh/causal_judgement": (50, 68, 69),
    "bbh/penguins_in_a_table": (50, 48, 48),
    "bbh/snarks": (50, 64, 64),
}


def make(cls: type[Task], data_dir: Path, **options: object) -> Task:
    return cls(cls.Options.model_validate({"data_dir": data_dir, **options}))


@pytest.fixture(scope="module")
def loaded(shared_data_dir: Path) -> dict[str, Task]:
    """Every task loaded once from the shared data."""
    return {cls.name: make(cls, shared_data_dir) for cls in ALL}


def test_twenty_nine_tasks_with_bbh_file_names(shared_data_dir: Path) -> None:
    stems = sorted(p.stem for p in (shared_data_dir / "bbh").glob("*.json"))
    assert sorted(BBH_TASKS) == stems
    assert sorted(BY_NAME) == sorted(["folio", "gsm8k", *(f"bbh/{s}" for s in stems)])


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_split_sizes_and_gold_answers(loaded: dict[str, Task], name: str) -> None:
    task = loaded[name]
    sizes = task.split_sizes()
    assert tuple(sizes[s] for s in SPLITS) == EXPECTED_SIZES.get(name, (50, 100, 100))
    ids: set[str] = set()
    for split in SPLITS:
        for ex in task.examples(split):
            assert ex.id not in ids
            ids.add(ex.id)
            assert ex.question.strip() and ex.answer
            # the loss target after the extractor reads back as the gold answer
            assert task.parse(task.extractor(ex) + task.continuation(ex.answer)) == ex.answer
            assert task.is_correct(ex.answer, ex)
            # and so does a typical reasoning ending
            shown = (
                f"({ex.answer})" if task.answer_type is AnswerType.MULTIPLE_CHOICE else ex.answer
            )
            ending = f"Let's think step by step.\n{ex.question[:300]}\nSo the answer is {shown}."
            assert task.parse(ending) == ex.answer
            if task.answer_type in (AnswerType.MULTIPLE_CHOICE, AnswerType.BINARY):
                assert ex.answer in ex.options
                continuations = [task.continuation(o) for o in ex.options]
                assert len(set(continuations)) == len(ex.options)
            else:
                assert ex.options == ()


def test_example_contents(loaded: dict[str, Task]) -> None:
    folio = loaded["folio"].examples("test")[0]
    assert folio.question.startswith("Premise:\n")
    assert folio.question.endswith("Options:\n(A) True\n(B) False\n(C) Uncertain")
    assert folio.options == ("A", "B", "C") and folio.answer == "C"
    gsm = loaded["gsm8k"].examples("test")[0]
    assert gsm.question.startswith("Janet") and gsm.answer == "18"
    assert loaded["bbh/sports_understanding"].examples("train")[0].options == ("Yes", "No")
    assert loaded["bbh/formal_fallacies"].examples("dev")[0].options == ("valid", "invalid")
    answers = {ex.answer for s in SPLITS for ex in loaded["gsm8k"].examples(s)}
    assert all(a.lstrip("-").isdigit() for a in answers)


def test_user_turn_follows_greaters_layout(loaded: dict[str, Task]) -> None:
    """``{question}. Use ...`` as in the paper; no doubled stop after a question mark."""
    prompt = Prompt("Use logic.", prefix="Use")
    folio = loaded["folio"].examples("test")[0]
    assert loaded["folio"].user_turn(folio, prompt).endswith("(C) Uncertain. Use logic.")
    gsm = loaded["gsm8k"].examples("test")[0]
    assert gsm.question.endswith("?")
    assert loaded["gsm8k"].user_turn(gsm, prompt) == gsm.question + " Use logic."


def test_bbh_splits_partition_the_task_deterministically(shared_data_dir: Path) -> None:
    cls = BY_NAME["bbh/navigate"]
    a, b = make(cls, shared_data_dir), make(cls, shared_data_dir)
    ids = {s: [ex.id for ex in a.examples(s)] for s in SPLITS}
    assert ids == {s: [ex.id for ex in b.examples(s)] for s in SPLITS}
    flat = [i for s in SPLITS for i in ids[s]]
    assert len(flat) == len(set(flat)) == 250
    # the reference's layout: the first 50 rows train, the next 100 dev, the 100 after test
    assert flat == [f"bbh/navigate/{i}" for i in range(250)]
    other = make(cls, shared_data_dir, split_seed=7)
    assert [ex.id for ex in other.examples("train")] != ids["train"]


def test_configured_sizes_and_seed(shared_data_dir: Path) -> None:
    bbh = make(BY_NAME["bbh/snarks"], shared_data_dir, train_size=10, dev_size=20, test_size=30)
    assert bbh.split_sizes() == {"train": 10, "dev": 20, "test": 30}
    # a set size is kept; defaulted ones shrink to share what is left (178 - 150 = 28)
    bbh = make(BY_NAME["bbh/snarks"], shared_data_dir, train_size=150)
    assert bbh.split_sizes() == {"train": 150, "dev": 14, "test": 14}
    folio = make(Folio, shared_data_dir, train_size=5, test_size=7)
    assert folio.split_sizes() == {"train": 5, "dev": 100, "test": 7}
    full = make(Folio, shared_data_dir).examples("train")
    assert folio.examples("train") == full[:5]
    seeded = make(Folio, shared_data_dir, train_size=5, split_seed=3).examples("train")
    assert seeded != full[:5] and all(ex in full for ex in seeded)
    with pytest.raises(PromptoptError, match="train_size=101 exceeds the 100 examples"):
        make(GSM8K, shared_data_dir, train_size=101).examples("train")
    with pytest.raises(PromptoptError, match="178"):
        make(BY_NAME["bbh/snarks"], shared_data_dir, train_size=100, test_size=100).examples("dev")


def test_listing_all_tasks_is_fast(shared_data_dir: Path) -> None:
    """What ``promptopt tasks`` does: build each task from local files and size its splits."""
    start = time.perf_counter()
    rows = [(cls.name, cls.answer_type, make(cls, shared_data_dir).split_sizes()) for cls in ALL]
    assert time.perf_counter() - start < 5.0
    assert len(rows) == 29


def test_data_dir_from_environment(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_DATA_DIR", str(shared_data_dir))
    assert GSM8K().split_sizes()["test"] == 1319
    monkeypatch.setenv("PROMPTOPT_DATA_DIR", str(shared_data_dir / "nowhere"))
    with pytest.raises(DataError, match="PROMPTOPT_DATA_DIR"):
        GSM8K().examples("test")


def test_no_data_dir_and_no_hub_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTOPT_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(PromptoptError) as info:
        GSM8K().examples("train")
    message = str(info.value)
    assert "\n" not in message
    assert "openai/gsm8k" in message and "--data-dir" in message
    assert "PROMPTOPT_DATA_DIR" in message


def test_unresolvable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online mode, but the hub host does not resolve: no retries, the same one-line error."""
    monkeypatch.delenv("PROMPTOPT_DATA_DIR", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    start = time.perf_counter()
    with pytest.raises(PromptoptError, match=r"lukaemon/bbh .*cannot resolve hub\.invalid"):
        BY_NAME["bbh/snarks"]().examples("test")
    assert time.perf_counter() - start < 5.0


# --------------------------------------------------------------------------- other layouts


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)


def test_folio_from_release_jsonl(shared_data_dir: Path, tmp_path: Path) -> None:
    for name in ("folio-v0-train.jsonl", "folio-v0-validation.jsonl"):
        _link(shared_data_dir / "folio" / name, tmp_path / "folio" / name)
    task = make(Folio, tmp_path)
    assert task.split_sizes() == {"train": 100, "dev": 100, "test": 204}
    test = task.examples("test")
    assert {ex.answer for ex in test} == {"A", "B", "C"}
    assert test[0].question.endswith("(C) Uncertain") and "Statement: " in test[0].question
    train_ids = {ex.id for ex in task.examples("train")}
    assert not train_ids & {ex.id for ex in task.examples("dev")}


def test_gsm8k_without_paper_files_draws_from_train_jsonl(
    shared_data_dir: Path, tmp_path: Path
) -> None:
    for name in ("train.jsonl", "test.jsonl"):
        _link(shared_data_dir / "gsm8k" / name, tmp_path / "gsm8k" / name)
    task = make(GSM8K, tmp_path, test_size=50)
    assert task.split_sizes() == {"train": 100, "dev": 100, "test": 50}


def test_missing_task_files_name_what_is_expected(tmp_path: Path) -> None:
    (tmp_path / "bbh").mkdir()
    with pytest.raises(DataError, match=r"navigate\.json not found"):
        make(BY_NAME["bbh/navigate"], tmp_path).examples("train")
    with pytest.raises(DataError, match=r"greater-\{train,dev,test\}\.csv"):
        make(Folio, tmp_path).examples("train")


# --------------------------------------------------------------------------- bad input

FOLIO_Q = (
    "Premise:\nAll cats are animals.\nTom is a cat.\n\nQuestion:\nGiven the premise above, is "
    "the following statement true, false, or uncertain?\n\nStatement: Tom is an animal.\n\n"
    "Options:\n(A) True\n(B) False\n(C) Uncertain"
)


def _folio_csv(rows: list[tuple[str, str]]) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace('"', '""') + '"'

    return "goal,target,final_target\n" + "".join(
        f"{quote(goal)},{target},{target}\n" for goal, target in rows
    )


def _write_folio(root: Path, train: str, dev: str | None = None) -> None:
    folder = root / "folio"
    folder.mkdir(parents=True)
    good = _folio_csv([(FOLIO_Q, "(A)")] * 3)
    (folder / "greater-train.csv").write_text(train)
    (folder / "greater-dev.csv").write_text(dev if dev is not None else good)
    (folder / "greater-test.csv").write_text(good)


def test_label_outside_the_options_names_file_and_line(tmp_path: Path) -> None:
    _write_folio(tmp_path, _folio_csv([(FOLIO_Q, "(A)"), (FOLIO_Q, "(D)")]))
    with pytest.raises(DataError) as info:
        make(Folio, tmp_path).examples("train")
    # the header is line 1, each record spans 13 lines: the second one starts at line 15
    assert "greater-train.csv:15:" in str(info.value)
    assert "'(D)'" in str(info.value) and info.value.hint and "skip_bad_rows" in info.value.hint


def test_skip_bad_rows_skips_with_a_warning(tmp_path: Path) -> None:
    _write_folio(tmp_path, _folio_csv([(FOLIO_Q, "(A)"), ("", "(B)"), (FOLIO_Q, "(Z)")]))
    task = make(Folio, tmp_path, skip_bad_rows=True)
    with pytest.warns(BadRowsSkipped, match="skipped 2 bad row"):
        train = task.examples("train")
    assert [ex.answer for ex in train] == ["A"]


def test_missing_field_is_reported(tmp_path: Path) -> None:
    _write_folio(tmp_path, _folio_csv([("", "(A)")]))
    with pytest.raises(DataError, match=r"greater-train\.csv:2.*missing field 'goal'"):
        make(Folio, tmp_path).examples("train")


def test_empty_split_is_an_error_naming_it(tmp_path: Path) -> None:
    _write_folio(tmp_path, _folio_csv([(FOLIO_Q, "(A)")]), dev="goal,target,final_target\n")
    task = make(Folio, tmp_path)
    assert len(task.examples("train")) == 1
    with pytest.raises(DataError, match="the dev split is empty"):
        task.examples("dev")


def test_unparseable_gold_answer(tmp_path: Path, shared_data_dir: Path) -> None:
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    _link(shared_data_dir / "gsm8k" / "test.jsonl", folder / "test.jsonl")
    (folder / "greater-dev.csv").write_text("goal,target,final_target\nHow many?,work,7\n")
    (folder / "greater-train.tsv").write_text(
        "goal\ttarget\tfinal_target\nHow many?\twork\t7\nAnd now?\twork\tseven\n"
    )
    with pytest.raises(DataError, match=r"greater-train\.tsv:3.*'seven' is not an integer"):
        make(GSM8K, tmp_path).examples("train")


def test_bad_bbh_rows(tmp_path: Path) -> None:
    folder = tmp_path / "bbh"
    folder.mkdir()
    question = "Which?\nOptions:\n(A) x\n(B) y"
    examples = [{"input": question, "target": "(A)"}] * 10 + [{"input": question, "target": "(C)"}]
    (folder / "snarks.json").write_text(json.dumps({"examples": examples}))
    with pytest.raises(DataError, match=r"snarks\.json examples\[10\].*'\(C\)'"):
        make(BY_NAME["bbh/snarks"], tmp_path).examples("train")
    (folder / "navigate.json").write_text('{"examples": [{"input": "Go?", "target": "Maybe"}]}')
    with pytest.raises(DataError, match="'Maybe' is not a valid binary answer"):
        make(BY_NAME["bbh/navigate"], tmp_path).examples("train")
    (folder / "web_of_lies.json").write_text('{"examples": [')
    with pytest.raises(DataError, match=r"web_of_lies\.json:1: not JSON"):
        make(BY_NAME["bbh/web_of_lies"], tmp_path).examples("train")


def test_jsonl_line_that_is_not_json(tmp_path: Path) -> None:
    folder = tmp_path / "gsm8k"
    folder.mkdir()
    (folder / "test.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n{oops\n')
    with pytest.raises(DataError, match=r"test\.jsonl:2: not JSON"):
        make(GSM8K, tmp_path).examples("test")


def test_upstream_comma_split_options_are_repaired(loaded: dict[str, Task]) -> None:
    """Three BBH rows list an option split at its commas and name it by text; the loader
    merges those options so the gold answer is a letter among the options."""
    task = loaded["bbh/movie_recommendation"]
    examples = [ex for s in SPLITS for ex in task.examples(s)]
    (monsters,) = [ex for ex in examples if "(A) Monsters, Inc\n" in ex.question]
    assert monsters.answer == "A" and monsters.options == ("A", "B", "C", "D")
    ruin = [ex for s in SPLITS for ex in loaded["bbh/ruin_names"].examples(s)]
    assert sum("(I) dearth, wind, & fire" in ex.question for ex in ruin) == 1


def test_test_size_max_takes_every_example_train_and_dev_leave(shared_data_dir: Path) -> None:
    navigate = make(BY_NAME["bbh/navigate"], shared_data_dir, dev_size=50, test_size="max")
    assert navigate.split_sizes() == {"train": 50, "dev": 50, "test": 150}
    causal = make(BY_NAME["bbh/causal_judgement"], shared_data_dir, dev_size=50, test_size="max")
    assert causal.split_sizes() == {"train": 50, "dev": 50, "test": 87}
    assert make(Folio, shared_data_dir, test_size="max").split_sizes()["test"] == 203
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="test_size must be at least 1, or max"):
        make(BY_NAME["bbh/navigate"], shared_data_dir, test_size=0)
