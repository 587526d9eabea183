"""Tasks over the user's own data files (``--task FILE.csv``, .tsv, .jsonl, .json, .parquet): the
formats, answer-type detection and its reason, question templates, split columns, seeded
carving, one-line errors, and the data's SHA-256 as the task's identity (resume, caches)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from datafiles import FORMATS, load, resolve, split_table, sports_rows, write_rows

from promptopt.errors import DataError, PromptoptError
from promptopt.testing.contracts import check_task

COLUMNS = {"question": "sentence", "answer": "verdict"}


def one_line(exc: pytest.ExceptionInfo[PromptoptError]) -> str:
    text = str(exc.value)
    assert "\n" not in text and exc.value.hint, text
    return text


# ----------------------------------------------------------------------------- formats


def test_every_format_gives_the_same_examples(tmp_path: Path) -> None:
    rows = sports_rows(120)
    tables = []
    for suffix in FORMATS:
        folder = tmp_path / suffix[1:]
        folder.mkdir()
        task = load(write_rows(folder / f"sports{suffix}", rows), **COLUMNS)
        check_task(task)
        assert task.split_sizes() == {"train": 50, "dev": 35, "test": 35}
        assert task.describe()["answer_type"] == "choice"
        tables.append(split_table(task))
        assert task.examples("train")[0].id.startswith("sports/")
    assert all(table == tables[0] for table in tables[1:])


def test_a_json_object_holding_one_list_of_examples(tmp_path: Path) -> None:
    path = tmp_path / "bbh_like.json"
    path.write_text(json.dumps({"canary": "x", "examples": sports_rows(60)}))
    assert load(path, **COLUMNS).split_sizes() == {"train": 50, "dev": 5, "test": 5}


def test_default_columns_and_cells_of_any_type(tmp_path: Path) -> None:
    rows = [{"Input": f"What is {i} + {i}?", "target": 2 * i + 0.0} for i in range(80)]
    task = load(write_rows(tmp_path / "sums.parquet", rows))
    train = task.examples("train")
    assert train[0].question.startswith("What is ") and "." not in train[0].answer
    facts = task.describe()
    assert facts["question"] == "column 'Input'" and facts["answer"] == "column 'target'"
    assert facts["answer_type"] == "number"
    assert facts["answer_type_reason"] == "every answer is a number (80 distinct in 80 rows)"


# ----------------------------------------------------------------------------- answer types


def labelled(answers: list[str], repeat: int = 1) -> list[dict[str, Any]]:
    return [
        {"question": f"Question {i}?", "answer": answer}
        for i, answer in enumerate(answers * repeat)
    ]


@pytest.mark.parametrize(
    ("answers", "kind", "reason", "options"),
    [
        (["yes", "No", "YES", "no"], "yesno", "every answer is Yes or No (120 rows)",
         ("Yes", "No")),
        (
            ["positive", "neutral", "negative", "Positive"],
            "choice",
            "3 distinct labels in 120 rows",
            ("negative", "neutral", "positive"),
        ),
        (["1", "0", "1", "1"], "choice", "2 distinct number labels in 120 rows", ("0", "1")),
        (["2.5", "-3", "1,000", "7"], "number",
         "every answer is a number (4 distinct in 120 rows)", ()),
    ],
)  # fmt: skip
def test_the_answer_type_is_detected_with_its_reason(
    tmp_path: Path, answers: list[str], kind: str, reason: str, options: tuple[str, ...]
) -> None:
    task = load(write_rows(tmp_path / "data.csv", labelled(answers, 30)))
    facts = task.describe()
    assert (facts["answer_type"], facts["answer_type_reason"]) == (kind, reason)
    check_task(task)
    example = task.examples("test")[0]
    assert example.options == options
    if kind == "yesno":  # exactly BBH's yes/no tasks
        navigate = resolve("bbh/navigate")()
        assert task.extractor(example) == navigate.extractor(example)
        assert task.parse("so the answer is yes.") == "Yes"
    if kind == "number":
        assert "NUMBER is a number)" in task.extractor(example)
        assert {ex.answer for ex in task.examples("train")} <= {"2.5", "-3", "1000", "7"}
        assert task.parse("2 + 0.5 makes the answer 2.50.") == "2.5"


def test_labels_read_like_binary_words_longest_first(tmp_path: Path) -> None:
    task = load(write_rows(tmp_path / "sports.csv", sports_rows(120)), **COLUMNS)
    example = task.examples("dev")[0]
    assert example.options == ("implausible", "plausible")
    assert task.extractor(example) == (
        "Therefore, the final answer (use exact format: '$ implausible' or '$ plausible') is $"
    )
    assert task.parse(task.extractor(example) + " Implausible") == "implausible"
    assert task.parse("It is plausible, so the answer is implausible.") == "implausible"
    assert task.continuation("plausible") == " plausible"
    assert task.is_correct("PLAUSIBLE.", example) == (example.answer == "plausible")


def test_two_labels_read_exactly_like_bbh_binary_words() -> None:
    from promptopt_tasks.answers import Binary, Labels

    labels, binary = Labels(["valid", "invalid"]), Binary("valid", "invalid")
    texts = [
        "So the argument is invalid.",
        "$ Valid",
        "the answer is: 'invalid'",
        "valid or not",
        "Answer = VALID!",
        " invalid$",
        "it is validated",
        "invalidity",
        "",
        "$ (invalid)",
    ]
    assert [labels.parse(t) for t in texts] == [binary.parse(t) for t in texts]
    assert [labels.parse(t) for t in texts][:6] == [
        "invalid", "valid", "invalid", "valid", "valid", "invalid",
    ]  # fmt: skip
    assert labels.continuation("VALID") == binary.continuation("VALID") == " valid"


def test_free_text_answers(tmp_path: Path) -> None:
    rows = [{"question": f"Name city {i}.", "answer": f"The city number {i} of the list"}
            for i in range(70)]  # fmt: skip
    task = load(write_rows(tmp_path / "cities.jsonl", rows))
    facts = task.describe()
    assert facts["answer_type"] == "text"
    assert facts["answer_type_reason"] == "free text: answers of up to 7 words"
    check_task(task)
    assert task.examples("test")[0].options == ()


def test_answer_type_and_options_can_be_given(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "sports.csv", sports_rows(120))
    text = load(path, **COLUMNS, answer_type="text")
    assert text.describe()["answer_type"] == "text" and text.examples("dev")[0].options == ()
    ordered = load(path, **COLUMNS, options="plausible,implausible")
    assert ordered.examples("dev")[0].options == ("plausible", "implausible")
    assert ordered.describe()["answer_type_reason"] == "the labels given by options"
    with pytest.raises(DataError) as info:
        load(path, **COLUMNS, options="plausible,unlikely").examples("train")
    assert "not one of the labels plausible, unlikely" in one_line(info)
    assert "line 3 'implausible'" in str(info.value)
    with pytest.raises(PromptoptError, match="labels of answer_type=choice"):
        load(path, **COLUMNS, answer_type="number", options="a,b")


def test_answers_that_are_not_numbers_name_their_lines(tmp_path: Path) -> None:
    rows = labelled([str(i) for i in range(60)])
    rows[3]["answer"], rows[7]["answer"] = "many", "n/a"
    path = write_rows(tmp_path / "counts.csv", rows)
    with pytest.raises(DataError) as info:
        load(path, answer_type="number").examples("train")
    message = one_line(info)
    assert "2 row(s) that are not numbers: line 5 'many', line 9 'n/a'" in message
    with pytest.warns(UserWarning, match="skipped 2 row"):
        task = load(path, answer_type="number", skip_bad_rows=True)
        assert sum(task.split_sizes().values()) == 58


# ----------------------------------------------------------------------------- questions


def test_a_template_over_columns_builds_the_question(tmp_path: Path) -> None:
    rows = [
        {"premise": f"It rained on day {i}.", "hypothesis": f"Day {i} was wet.", "label": lab}
        for i, lab in enumerate(["entailment", "contradiction", "neutral"] * 20)
    ]
    path = write_rows(tmp_path / "nli.tsv", rows)
    task = load(path, question="{premise}\nQuestion: {hypothesis} {{yes}}")
    question = task.examples("train")[0].question
    assert question.startswith("It rained on day ") and "\nQuestion: Day " in question
    assert question.endswith("was wet. {yes}")
    assert task.describe()["question"].startswith("template '{premise}")
    for template, fault in (
        ("{premise} {nope}",
         "no column 'nope' (the question); its columns: premise, hypothesis, label"),
        ("{premise.upper}", "{premise.upper} is not a plain column name"),
        ("{premise!r}", "{premise} is not a plain column name"),
        ("{}", "{} is not a plain column name"),
        ("{premise", "question template '{premise'"),
    ):  # fmt: skip
        with pytest.raises(DataError) as info:
            load(path, question=template).examples("train")
        assert fault in one_line(info), template


# ----------------------------------------------------------------------------- splits


def test_a_split_column_assigns_rows(tmp_path: Path) -> None:
    rows = sports_rows(90)
    for i, row in enumerate(rows):
        row["fold"] = ("train", "validation", "TEST")[i % 3]
    path = write_rows(tmp_path / "folds.csv", rows)
    task = load(path, **COLUMNS, split="fold")
    assert task.split_sizes() == {"train": 30, "dev": 30, "test": 30}
    assert task.describe()["splits_from"] == "column 'fold'"
    numbers = {split: {int(ex.id.split("/")[1]) for ex in task.examples(split)}
               for split in ("train", "dev", "test")}  # fmt: skip
    assert all(n % 3 == 1 for n in numbers["train"]) and all(n % 3 == 0 for n in numbers["test"])
    assert load(path, **COLUMNS, split="fold", train_size=10, dev_size=5).split_sizes() == {
        "train": 10, "dev": 5, "test": 30,
    }  # fmt: skip
    with pytest.raises(PromptoptError, match="test_size=40 exceeds the 30 examples"):
        load(path, **COLUMNS, split="fold", test_size=40).examples("test")
    for row in rows:  # no dev rows: dev is drawn from the train rows
        row["fold"] = "test" if row["fold"] == "TEST" else "train"
    no_dev = load(write_rows(tmp_path / "two.csv", rows), **COLUMNS, split="fold")
    assert no_dev.split_sizes() == {"train": 50, "dev": 10, "test": 30}
    rows[4]["fold"] = "holdout"
    with pytest.raises(DataError) as info:
        load(write_rows(tmp_path / "bad.csv", rows), **COLUMNS, split="fold").examples("dev")
    assert "1 row(s) with a bad value in the split column 'fold': line 6 'holdout'" in one_line(
        info
    )
    for row in rows:
        row["fold"] = "train"
    with pytest.raises(DataError, match="no row of the split column 'fold' says test"):
        load(write_rows(tmp_path / "train.csv", rows), **COLUMNS, split="fold").examples("dev")


def test_splits_come_from_a_seeded_shuffle(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "sports.jsonl", sports_rows(120))
    first = split_table(load(path, **COLUMNS))
    assert first == split_table(load(path, **COLUMNS, split_seed=0))
    other = split_table(load(path, **COLUMNS, split_seed=3))
    assert other != first
    seen = [q for split in first.values() for q, _ in split]
    assert len(seen) == len(set(seen)) == 120  # disjoint
    task = load(path, **COLUMNS)
    ids = [int(ex.id.split("/")[1]) for ex in task.examples("train")]
    assert ids == sorted(ids)  # each split keeps the file's row order
    sized = load(path, **COLUMNS, train_size=8, dev_size=4, test_size="max")
    assert sized.split_sizes() == {"train": 8, "dev": 4, "test": 108}
    with pytest.raises(PromptoptError) as info:
        load(path, **COLUMNS, train_size=100, dev_size=30).examples("train")
    assert "100 + 30 + 100 examples requested but" in one_line(info)
    assert "lower train_size/dev_size/test_size" in str(info.value)


def test_questions_repeated_across_splits_warn_with_their_count(tmp_path: Path) -> None:
    rows = sports_rows(120)
    for i in range(0, 120, 10):
        rows[i]["sentence"] = "The same question."
    path = write_rows(tmp_path / "dups.csv", rows)
    with pytest.warns(UserWarning, match=r"1 question\(s\) appear in more than one split"):
        load(path, **COLUMNS).examples("train")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load(write_rows(tmp_path / "clean.csv", sports_rows(120)), **COLUMNS).examples("train")


# ----------------------------------------------------------------------------- errors


def test_missing_files_and_unknown_formats_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        resolve(tmp_path / "nope.csv")
    assert "does not exist" in one_line(info) and str(tmp_path) in str(info.value)
    sheet = tmp_path / "data.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError) as info:
        resolve(sheet)
    assert "unknown data format '.xlsx'" in one_line(info)
    with pytest.raises(PromptoptError) as unknown:
        resolve("nope-task")
    assert "unknown task 'nope-task'" in one_line(unknown) and ".parquet" in str(unknown.value)


def test_a_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "sports.csv", sports_rows(60))
    with pytest.raises(DataError) as info:
        load(path, question="sentence", answer="nope").examples("train")
    assert "has no column 'nope' (the answer); its columns: sentence, verdict" in one_line(info)
    assert "-o task.answer=COLUMN" in str(info.value)
    with pytest.raises(DataError) as info:
        load(path).examples("train")
    assert "no answer column (answer or target or label or output)" in one_line(info)


def test_empty_questions_and_answers_name_their_rows(tmp_path: Path) -> None:
    rows = sports_rows(80)
    for i in (2, 5, 11, 17, 23, 31, 40):
        rows[i]["verdict"] = " "
    path = write_rows(tmp_path / "holes.jsonl", rows)
    with pytest.raises(DataError) as info:
        load(path, **COLUMNS).examples("train")
    message = one_line(info)
    assert "7 row(s) with an empty answer (column 'verdict')" in message
    assert "line 3, line 6, line 12, line 18, line 24 and 2 more" in message
    assert "skip_bad_rows=true" in str(info.value)
    rows[0]["sentence"] = ""
    path = write_rows(tmp_path / "holes.csv", rows)
    with pytest.raises(DataError) as info:
        load(path, **COLUMNS).examples("train")
    assert "1 row(s) with an empty question (column 'sentence'): line 2" in one_line(info)
    with pytest.warns(UserWarning) as record:
        assert sum(load(path, **COLUMNS, skip_bad_rows=True).split_sizes().values()) == 72
    assert [str(w.message).partition(": ")[2][:40] for w in record] == [
        "skipped 1 row(s) with an empty question ",
        "skipped 7 row(s) with an empty answer (c",
    ]


def test_a_single_label_is_an_error(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "same.csv", labelled(["plausible"], 60))
    with pytest.raises(DataError) as info:
        load(path).examples("train")
    assert "every answer is 'plausible' (60 rows)" in one_line(info)


@pytest.mark.parametrize(
    ("name", "content", "fault"),
    [
        ("latin1.csv", "question,answer\ncaf\xe9?,yes\n".encode("latin-1"), "is not UTF-8 text"),
        ("empty.csv", b"", "is empty"),
        ("header.tsv", b"question\tanswer\n", "has a header but no data rows"),
        ("blank.jsonl", b"\n\n", "is empty"),
        ("broken.jsonl", b'{"question": "a", "answer": "b"}\n{"question": \n', "line 2: not JSON"),
        ("list.jsonl", b'["a", "b"]\n', "line 1: a JSON list, not an object"),
        ("scalar.json", b"42", "holds no list of examples"),
        ("empty.json", b"[]", "holds an empty list"),
        ("ragged.csv", b"question,answer\na,b,c\n", "line 2 has 3 fields but the header has 2"),
        ("bad.parquet", b"not parquet at all", "is not a readable Parquet file"),
    ],
)
def test_unreadable_files_are_one_line_errors(
    tmp_path: Path, name: str, content: bytes, fault: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        load(path).examples("train")
    assert fault in one_line(info) and name in str(info.value)


# ----------------------------------------------------------------------------- identity


def test_the_task_is_named_by_the_reference_and_identified_by_the_file_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptopt.filehash import file_sha256

    monkeypatch.chdir(tmp_path)
    path = write_rows(tmp_path / "sports.csv", sports_rows(60))
    cls = resolve("sports.csv")
    assert cls.name == "sports.csv" and cls.path == path
    assert cls.identity() == {"sha256": file_sha256(path)}
    assert resolve(path).identity() == cls.identity()  # any path to the same bytes
    stale = cls(cls.Options(**COLUMNS))
    write_rows(path, sports_rows(61))
    edited = resolve("sports.csv")
    assert edited is not cls and edited.identity() != cls.identity()
    with pytest.raises(DataError, match="changed while promptopt was using it"):
        stale.examples("train")
    assert edited(edited.Options(**COLUMNS)).split_sizes()["test"] == 6


def fake_file_config(path: Path, **options: Any) -> Any:
    from promptopt.config import make_run_config

    values = {"method": "fake", "task": str(path), "options": {**options}}
    return make_run_config({}, values)


def test_a_run_records_the_hash_and_refuses_to_resume_on_an_edited_file(
    promptopt_fakes: Any, promptopt_run: Any, tmp_path: Path
) -> None:
    from promptopt.filehash import file_sha256

    path = write_rows(tmp_path / "sports.csv", sports_rows(80))
    options = {"task__question": "sentence", "task__answer": "verdict", "steps": 3}
    first = promptopt_run("fake", task=str(path), interrupt_after=1, **options)
    config = json.loads((first.path / "config.json").read_text())
    assert config["task_identity"] == {"sha256": file_sha256(path)}
    rows = sports_rows(80)
    rows[0]["verdict"] = "plausible" if rows[0]["verdict"] == "implausible" else "implausible"
    original = path.read_bytes()
    write_rows(path, rows)
    with pytest.raises(PromptoptError) as info:
        promptopt_run.resume(first.path)
    message = one_line(info)
    assert f"task {str(path)!r} changed since the run started: its sha256 was" in message
    assert "restore the data" in str(info.value)
    path.write_bytes(original)  # the same bytes again: the run resumes and finishes
    assert promptopt_run.resume(first.path).result["steps_run"] == 3


def test_a_bad_file_leaves_no_run_directory(promptopt_fakes: Any, tmp_path: Path) -> None:
    from promptopt.runs import start_run

    path = write_rows(tmp_path / "sports.csv", sports_rows(80))
    out = tmp_path / "run"
    with pytest.raises(DataError, match="no column 'nope'"):
        start_run(fake_file_config(path, **{"task.answer": "nope"}), out=out, notify=None)
    assert not out.exists()
    with pytest.raises(DataError, match="does not exist"):
        start_run(fake_file_config(tmp_path / "gone.csv"), out=out, notify=None)
    assert not out.exists()


def test_run_folders_are_named_by_the_file_stem() -> None:
    from promptopt.rundir import default_run_dir, task_folder_name
    from promptopt.studies.plan import task_folder

    assert task_folder_name("/data/my reviews.CSV") == "my-reviews"
    assert task_folder_name("hf:org/name:cfg") == "hf-org-name-cfg"
    assert task_folder_name("bbh/navigate") == "bbh-navigate"
    assert default_run_dir("gpo", "/x/y/sports.parquet").name.startswith("gpo-sports-")
    assert task_folder("/x/y/sports.csv") == Path("sports")
    assert task_folder("bbh/navigate") == Path("bbh/navigate")


# ----------------------------------------------------------------------------- evaluation cache


def eval_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    from promptopt.cli import main

    try:
        main(args)
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return dict(json.loads(capsys.readouterr().out))


def test_an_edited_gold_answer_rescores_from_the_cache_and_an_edited_question_regenerates(
    promptopt_fakes: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "sports.csv"
    rows = sports_rows(120)
    write_rows(path, rows)
    args = ["eval", "--backend", "fake", "--task", str(path), "--prompt", "Think.",
            "--scoring", "logprob", "--max-new-tokens", "8", "--no-progress",
            "-o", "task.question=sentence", "-o", "task.answer=verdict"]  # fmt: skip
    first = eval_json(args, capsys)
    assert first["n"] == 35 and first["cache_hits"] == 0
    test_rows = [int(ex.id.split("/")[1]) - 1 for ex in load(path, **COLUMNS).examples("test")]
    flipped = test_rows[0]
    rows[flipped]["verdict"] = {"plausible": "implausible", "implausible": "plausible"}[
        rows[flipped]["verdict"]
    ]
    write_rows(path, rows)
    regraded = eval_json(args, capsys)
    assert regraded["cache_hits"] == 35  # the model's outputs are reused ...
    assert abs(regraded["correct"] - first["correct"]) == 1  # ... and judged on the new gold
    rows[test_rows[1]]["sentence"] = "Player 999 scored a touchdown at match point."
    write_rows(path, rows)
    asked_again = eval_json(args, capsys)
    assert asked_again["cache_hits"] == 34 and asked_again["n"] == 35


# ----------------------------------------------------------------------------- hub datasets


def cache_hub_dataset(cache: Path, repo: str, splits: dict[str, int], source: Path) -> None:
    """Put ``repo`` (``ORG/NAME``) into a ``datasets`` cache folder exactly as loading it from
    the hub would have (offline, ``datasets`` then reads it there): built by the hub's own JSON
    builder from local files, under the folder name the hub dataset gets. Its label column is
    a class label (integers with names)."""
    import datasets
    from datasets.packaged_modules.json.json import Json

    source.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, count in splits.items():
        rows = [{"text": f"{split} review {i}: {'good' if i % 3 else 'bad'} food",
                 "label": 1 if i % 3 else 0} for i in range(count)]  # fmt: skip
        files[split] = str(write_rows(source / f"{split}.jsonl", rows))
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    org, name = repo.split("/")
    builder = Json(
        cache_dir=str(cache), dataset_name=name, config_id="default", data_files=files,
        features=features, hash="0123456789abcdef",
    )  # fmt: skip
    builder.download_and_prepare()
    (cache / name).rename(cache / f"{org}___{name}")


def promptopt_subprocess(args: list[str], cache: Path, cwd: Path) -> Any:
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "PROMPTOPT_CACHE_DIR": str(cwd / "cache")}  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip


def test_a_cached_hub_dataset_is_a_task_offline(tmp_path: Path) -> None:
    cache = tmp_path / "hf-datasets"
    cache_hub_dataset(cache, "someorg/reviews", {"train": 80, "validation": 20, "test": 30},
                      tmp_path / "src")  # fmt: skip
    cache_hub_dataset(cache, "someorg/pool", {"train": 90}, tmp_path / "pool")
    dry = ["run", "gpo", "--dry-run", "--task"]
    proc = promptopt_subprocess([*dry, "hf:someorg/reviews"], cache, tmp_path)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["splits"] == {"train": 50, "dev": 20, "test": 30}
    details = plan["task_details"]
    assert details["labels"] == ["neg", "pos"]  # the class label's names
    assert details["splits_from"] == "the dataset's splits (train, validation, test)"
    assert details["question"] == "column 'text'" and details["answer"] == "column 'label'"
    proc = promptopt_subprocess([*dry, "hf:someorg/pool:default", "-o", "dev_size=10"], cache,
                                tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["splits"] == {"train": 50, "dev": 10, "test": 30}
    assert plan["task_details"]["splits_from"] == "a seeded shuffle (split_seed=0)"
    missing = promptopt_subprocess([*dry, "hf:someorg/missing"], cache, tmp_path)
    assert missing.returncode == 2
    (line,) = missing.stderr.strip().splitlines()
    assert line.startswith("promptopt: error: hf:someorg/missing could not be loaded (")
    assert "offline, the dataset must be in the datasets cache" in line
