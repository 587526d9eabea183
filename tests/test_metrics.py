"""Graded metrics: the built-ins on real benchmark examples, metrics from a user's file and from a
plugin's ``register_metrics`` hook, the tasks' ``metric``/``tolerance`` options, and scores
through ``promptopt eval`` (tiny model) and a study (fakes) with its permutation test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from promptopt import hookimpl
from promptopt.components import Task
from promptopt.errors import DataError, PromptoptError
from promptopt.metrics import (
    Metric,
    contains,
    exact,
    f1,
    metric_names,
    model_output,
    numeric,
    parse_number,
    resolve_metric,
)
from promptopt.studies import stats
from promptopt.types import Example

DOCS = Path(__file__).resolve().parents[1] / "docs"


def example(answer: str, ex_id: str = "ex-1") -> Example:
    return Example(ex_id, "a question", answer)


def real_task(name: str, data: Path, **options: Any) -> Task[Any]:
    """A built-in task on the shared data, built as ``-o task.KEY=VALUE`` builds it."""
    from promptopt.options import build_command_options
    from promptopt.registry import get_registry

    cls = get_registry().task(name)
    values = {f"task.{key}": value for key, value in options.items()}
    built = build_command_options({"task": cls}, values, {"data_dir": str(data)})
    return cls(built["task"])


# --------------------------------------------------------------------------- the built-ins


def test_f1_normalizes_like_squad() -> None:
    gold = example("The Eiffel Tower")
    assert f1("eiffel tower", "", gold) == 1.0  # case and the article
    assert f1("an Eiffel, tower!", "", gold) == 1.0  # punctuation and another article
    assert f1("  eiffel \n\t tower ", "", gold) == 1.0  # whitespace collapsed
    assert f1("tower eiffel", "", gold) == 1.0  # bags of words: order does not count
    # 2 shared of 3 predicted words, both gold words found: P = 2/3, R = 1, F1 = 0.8
    assert f1("the eiffel tower paris", "", gold) == pytest.approx(0.8)
    # a repeated word counts once against one gold occurrence: P = 2/3, R = 1
    assert f1("tower tower eiffel", "", gold) == pytest.approx(0.8)
    # one shared word of 1 predicted / 2 gold: P = 1, R = 1/2, F1 = 2/3
    assert f1("tower", "", gold) == pytest.approx(2 / 3)
    assert f1("big ben", "", gold) == 0.0
    assert f1(None, "the eiffel tower", gold) == 0.0  # nothing parsed: the output is not read


def test_contains_looks_for_whole_words_in_the_answer_else_the_output() -> None:
    gold = example("New York")
    assert contains("I think it is new york city.", "", gold) == 1.0
    assert contains("york, new", "", gold) == 0.0  # in order
    assert contains("new yorkshire", "", gold) == 0.0  # whole words, not substrings
    assert contains(None, "The trip ends in New York.", gold) == 1.0  # nothing parsed: output
    assert contains("Boston", "The trip ends in New York.", gold) == 0.0  # the parse wins
    assert contains(None, "", gold) == 0.0


def test_answers_that_normalization_empties_still_compare() -> None:
    letter = example("A")  # "a" is an article: compared with the articles kept
    assert contains(None, "So the statement is (A).", letter) == 1.0
    assert contains(None, "So the statement is (B).", letter) == 0.0
    assert f1("(A)", "", letter) == 1.0 and f1("B", "", letter) == 0.0
    brackets = example("] ) >")  # only punctuation: compared as lower-case tokens
    assert f1("] ) >", "", brackets) == 1.0
    assert f1("] >", "", brackets) == pytest.approx(0.8)  # P 1, R 2/3
    assert contains(None, "close them: ] ) > done", brackets) == 1.0


def test_exact_is_equality_of_normalized_answers() -> None:
    gold = example("Yes")
    assert (exact("Yes", "", gold), exact("No", "", gold), exact(None, "Yes", gold)) == (1, 0, 0)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("72", 72.0),
        ("-1,234.5", -1234.5),
        ("$18", 18.0),
        ("50%", 50.0),
        ("3/4", 0.75),
        ("1e-3", 0.001),
        ("72.", 72.0),
        ("about 72 apples, not 70 pears", 70.0),  # the last number
        ("\u22125", -5.0),  # a Unicode minus
        ("none", None),
    ],
)
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


def test_numeric_relative_tolerance_edges() -> None:
    hundred = example("100")
    assert numeric("100.0", "", hundred) == 1.0  # the default tolerance 0: the same value
    assert numeric("100.5", "", hundred) == 0.0
    assert numeric("101", "", hundred, tolerance=0.01) == 1.0  # |1| <= 0.01 * 100: inclusive
    assert numeric("99", "", hundred, tolerance=0.01) == 1.0
    assert numeric("101.5", "", hundred, tolerance=0.01) == 0.0
    assert numeric("-100", "", hundred, tolerance=0.01) == 0.0  # the sign counts
    zero = example("0")  # relative to max(|gold|, 1e-12): only (almost) 0 itself passes
    assert numeric("0", "", zero) == 1.0
    assert numeric("1e-13", "", zero, tolerance=0.5) == 1.0
    assert numeric("0.001", "", zero, tolerance=0.5) == 0.0
    assert numeric(None, "100", hundred, tolerance=1.0) == 0.0  # nothing parsed
    assert numeric("no idea", "", hundred, tolerance=1.0) == 0.0
    with pytest.raises(DataError, match="'Paris' of example 'ex-1' is not a number"):
        numeric("3", "", example("Paris"))


def test_builtin_metrics_on_real_examples(shared_data_dir: Path) -> None:
    """Each built-in through a real task's own parser and gold answers (-o task.metric=...)."""
    words = real_task("bbh/word_sorting", shared_data_dir, metric="f1")
    ex = words.examples("test")[0]
    gold = ex.answer.split()
    assert len(gold) == 9
    output = "Sorting them: ... So the answer is $" + " ".join(gold[:-1]) + "$"
    predicted = words.parse(output)
    assert predicted == " ".join(gold[:-1])
    assert not words.is_correct(predicted, ex)
    # 8 of 9 gold words, no extra ones: P = 1, R = 8/9, F1 = 16/17
    assert words.score(predicted, output, ex) == pytest.approx(16 / 17)
    assert words.score(ex.answer, output, ex) == 1.0

    dyck = real_task("bbh/dyck_languages", shared_data_dir, metric="f1")
    ex = next(e for e in dyck.examples("test") if e.answer == "} )")
    # punctuation-only answers compare as bracket tokens: 2 shared of 3 predicted, P 2/3, R 1
    assert dyck.score(dyck.parse("The answer is $} ] )$"), "", ex) == pytest.approx(0.8)

    gsm = real_task("gsm8k", shared_data_dir, metric="numeric", tolerance=0.1)
    ex = gsm.examples("test")[0]
    gold = float(ex.answer)
    near, far = f"{gold * 1.05:g}", f"{gold * 1.2:g}"
    assert gsm.score(near, near, ex) == 1.0 and gsm.score(far, far, ex) == 0.0
    exact_gsm = real_task("gsm8k", shared_data_dir)
    assert exact_gsm.score(near, near, ex) == 0.0

    folio = real_task("folio", shared_data_dir, metric="contains")
    ex = folio.examples("test")[0]
    reasoning = f"Step by step ... the conclusion is {ex.answer}."
    assert folio.score(None, reasoning, ex) == 1.0  # nothing parsed: found in the output
    other = next(o for o in ex.options if o != ex.answer)
    assert folio.score(other, reasoning, ex) == 0.0


def test_exact_is_todays_is_correct_on_every_answer_kind(shared_data_dir: Path) -> None:
    for name in ("folio", "gsm8k", "bbh/navigate", "bbh/word_sorting"):
        task = real_task(name, shared_data_dir)
        assert task.metric_name == "exact"
        for ex in task.examples("test")[:5]:
            for guess in (ex.answer, None, *ex.options, f" {ex.answer}.", "0"):
                expected = 1.0 if task.is_correct(guess, ex) else 0.0
                assert task.score(guess, "", ex) == expected, (name, guess)


def test_model_output_is_reasoning_then_answer() -> None:
    assert model_output("I think.  \n", " Yes\n") == "I think. Yes"
    assert model_output("", "Yes") == "Yes"


def test_greaters_exact_check_scores_rows_under_the_tasks_metric(shared_data_dir: Path) -> None:
    """GReaTer's exact check knows whether the gold answer is the greedy continuation: the
    task scores the gold answer then, an unread answer otherwise (contains reads the reasoning)."""
    from promptopt_greater.loss import exact_check_score

    plain = real_task("folio", shared_data_dir)
    ex = plain.examples("train")[0]
    reasoning = f"So the statement is {ex.answer}."
    assert exact_check_score(plain, ex, reasoning, True) == 1.0
    assert exact_check_score(plain, ex, reasoning, False) == 0.0
    lenient = real_task("folio", shared_data_dir, metric="contains")
    assert exact_check_score(lenient, ex, reasoning, False) == 1.0
    assert exact_check_score(lenient, ex, "No idea.", False) == 0.0


# --------------------------------------------------------------------------- names and options


def test_unknown_metric_is_one_line_listing_the_known_ones(shared_data_dir: Path) -> None:
    with pytest.raises(PromptoptError) as info:
        real_task("folio", shared_data_dir, metric="f2")
    text = str(info.value)
    assert "unknown metric 'f2'" in text and "\n" not in text
    for name in ("contains", "exact", "f1", "numeric", "python:FILE.py:FUNCTION"):
        assert name in text
    assert metric_names() == ["contains", "exact", "f1", "numeric"]


def test_a_tolerance_needs_a_metric_that_takes_one(shared_data_dir: Path) -> None:
    with pytest.raises(PromptoptError, match="metric 'f1' takes no tolerance"):
        real_task("folio", shared_data_dir, metric="f1", tolerance=0.1)
    with pytest.raises(PromptoptError, match="tolerance"):
        real_task("gsm8k", shared_data_dir, tolerance=0.1)  # exact takes none either
    with pytest.raises(PromptoptError, match="greater than or equal to 0"):
        real_task("gsm8k", shared_data_dir, metric="numeric", tolerance=-1)


# --------------------------------------------------------------------------- a user's file

USER_METRICS = '''
def prefix_share(predicted, output, example):
    """The share of the gold answer's characters the parsed answer starts with."""
    if predicted is None:
        return 0.0
    gold = example.answer
    same = 0
    for a, b in zip(predicted, gold):
        if a != b:
            break
        same += 1
    return same / len(gold)


def as_bool(predicted, output, example):
    return predicted == example.answer


def broken(predicted, output, example):
    raise KeyError("no such thing")


def too_big(predicted, output, example):
    return 1.5


def not_a_number(predicted, output, example):
    return "high"


NOT_CALLABLE = 3
'''


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "my metrics.py"  # a space in the path, too
    path.write_text(USER_METRICS)
    return path


def test_a_users_metric_from_a_file(user_file: Path, shared_data_dir: Path) -> None:
    task = real_task("gsm8k", shared_data_dir, metric=f"python:{user_file}:prefix_share")
    assert task.metric_name == f"python:{user_file}:prefix_share"
    ex = next(e for e in task.examples("test") if len(e.answer) >= 2)
    wrong_last = ex.answer[:-1] + ("0" if ex.answer[-1] != "0" else "1")
    assert task.score(wrong_last, "", ex) == pytest.approx((len(ex.answer) - 1) / len(ex.answer))
    assert task.score(ex.answer, "", ex) == 1.0 and task.score(None, "", ex) == 0.0
    as_bool = resolve_metric(f"python:{user_file}:as_bool")  # a bool counts as 0 or 1
    assert as_bool(ex.answer, "", ex) == 1.0 and as_bool("x", "", ex) == 0.0


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("broken", "function 'broken' in '{file}' raised KeyError: 'no such thing' on example"),
        ("too_big", "function 'too_big' in '{file}' returned 1.5 for example .* outside"),
        ("not_a_number", "function 'not_a_number' in '{file}' returned 'high' .* not a number"),
    ],
)
def test_a_users_metric_that_misbehaves_is_one_line_naming_it(
    user_file: Path, shared_data_dir: Path, function: str, message: str
) -> None:
    task = real_task("gsm8k", shared_data_dir, metric=f"python:{user_file}:{function}")
    ex = task.examples("test")[0]
    with pytest.raises(PromptoptError) as info:
        task.score(ex.answer, "", ex)
    assert re.search(message.format(file=re.escape(str(user_file))), str(info.value))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("python:{dir}/missing.py:f", "metric file '{dir}/missing.py' does not exist"),
        ("python:{dir}:f", "metric file '{dir}' is a directory"),
        ("python:{file}:absent", "metric file '{file}' has no function 'absent'"),
        ("python:{file}:NOT_CALLABLE", "metric file '{file}' has no callable 'NOT_CALLABLE'"),
        ("python:{file}", "names no file and function"),
        ("python:{syntax}:f", "metric file '{syntax}' failed to import: SyntaxError"),
    ],
)
def test_a_users_metric_that_cannot_load_fails_when_options_are_built(
    user_file: Path, tmp_path: Path, shared_data_dir: Path, spec: str, message: str
) -> None:
    syntax = tmp_path / "broken.py"
    syntax.write_text("def f(:\n")
    names = {"dir": str(tmp_path), "file": str(user_file), "syntax": str(syntax)}
    with pytest.raises(PromptoptError) as info:
        real_task("gsm8k", shared_data_dir, metric=spec.format(**names))
    assert message.format(**names) in str(info.value)
    assert "\n" not in str(info.value)


def test_an_edited_metric_file_is_loaded_again(tmp_path: Path) -> None:
    path = tmp_path / "half.py"
    path.write_text("def score(p, o, e):\n    return 0.5\n")
    assert resolve_metric(f"python:{path}:score")(None, "", example("x")) == 0.5
    path.write_text("def score(p, o, e):\n    return 0.25  # edited, so another size\n")
    assert resolve_metric(f"python:{path}:score")(None, "", example("x")) == 0.25


# --------------------------------------------------------------------------- a plugin's metric


def first_word(predicted: str | None, output: str, example: Example) -> float:
    words = (predicted or "").lower().split()
    return float(bool(words) and words[0] == example.answer.lower().split()[0])


class FirstWordPlugin:
    @hookimpl
    def register_metrics(self, register: Callable[[Metric], None]) -> None:
        register(Metric("first-word", first_word, "the first word matches"))


def test_a_plugin_registers_a_metric(
    promptopt_register: Callable[..., Any], shared_data_dir: Path
) -> None:
    from promptopt.registry import plugin_rows

    with pytest.raises(PromptoptError, match="unknown metric 'first-word'"):
        resolve_metric("first-word")
    promptopt_register(FirstWordPlugin(), name="first-word-plugin")
    assert "first-word" in metric_names()
    task = real_task("bbh/word_sorting", shared_data_dir, metric="first-word")
    ex = task.examples("test")[0]
    first = ex.answer.split()[0]
    assert task.score(f"{first} zebra", "", ex) == 1.0 and task.score("zebra", "", ex) == 0.0
    rows = {row["name"]: row for row in plugin_rows()}
    assert {"kind": "metric", "name": "first-word"} in rows["first-word-plugin"]["components"]
    assert "register_metrics" in rows["first-word-plugin"]["hooks"]
    core = rows["promptopt-core"]["components"]
    assert {"kind": "metric", "name": "f1"} in core


def test_a_metric_registered_twice_names_both_plugins(
    promptopt_register: Callable[..., Any],
) -> None:
    class Again:
        @hookimpl
        def register_metrics(self, register: Callable[[Metric], None]) -> None:
            register(Metric("f1", first_word))

    promptopt_register(Again(), name="second-f1")
    with pytest.raises(PromptoptError, match="'f1' is registered twice: by promptopt and by"):
        resolve_metric("f1")


def test_the_hooks_page_example_registers_its_metric(tmp_path: Path) -> None:
    """The code block of docs/hooks.md's register_metrics section, loaded as a plugin file."""
    from promptopt.pluginmanager import new_plugin_manager, register_plugin_file

    section = (DOCS / "hooks.md").read_text().split("### `register_metrics(register)`")[1]
    code = section.split("```python\n")[1].split("```")[0]
    path = tmp_path / "doc_metric.py"
    path.write_text(code)
    pm = new_plugin_manager()
    register_plugin_file(pm, path)
    metric = resolve_metric("first-word", pm=pm)
    gold = example("Paris is big")
    assert metric("paris mostly", "", gold) == 1.0 and metric("Lyon", "", gold) == 0.0


def test_plugins_command_lists_metrics() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", "plugins"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    core = proc.stdout.split("promptopt-core", 1)[1].split("\n\n")[0]
    for name in ("exact", "contains", "f1", "numeric"):
        assert f"  metric: {name}\n" in core


# --------------------------------------------------------------------------- the permutation test


@pytest.mark.parametrize(
    ("differences", "expected"),
    [
        # nonzero (1, 0.5): sums of +-1 +-0.5 are 1.5, 0.5, -0.5, -1.5; |sum| >= 1.5 twice of 4
        ([1.0, 0.5, 0.0], 2 / 4),
        # three equal differences: only the all-plus and all-minus patterns reach |0.6|
        ([0.2, 0.2, 0.2], 2 / 8),
        # zeros flip to themselves: the same as (0.6, 0.2, 0.1), whose sum 0.9 only the
        # all-plus and all-minus patterns reach
        ([0.6, 0.2, 0.0, 0.1, 0.0], 2 / 8),
        # observed |0.6 - 0.2 + 0.1| = 0.5; the patterns give +-0.9, +-0.7, +-0.5, +-0.3
        ([0.6, -0.2, 0.1], 6 / 8),
        # observed sum 0: every pattern is at least as extreme
        ([0.5, -0.5], 1.0),
        ([0.0, 0.0], 1.0),  # no difference at all
    ],
)
def test_sign_flip_p_by_hand(differences: list[float], expected: float) -> None:
    p, exact_test = stats.sign_flip_p(differences)
    assert exact_test
    assert p == pytest.approx(expected, abs=1e-12)


def test_sign_flip_samples_beyond_the_exact_limit() -> None:
    differences = [0.5, -0.25, 0.75, 0.1, 0.3, -0.2, 0.6, 0.4, 0.05, 0.35]
    exact_p, is_exact = stats.sign_flip_p(differences)
    sampled, sampled_exact = stats.sign_flip_p(differences, exact_limit=0, seed=3)
    assert is_exact and not sampled_exact
    assert sampled == pytest.approx(exact_p, abs=0.01)  # 10000 patterns: sd about 0.002
    assert stats.sign_flip_p(differences, exact_limit=0, seed=3)[0] == sampled  # seeded
    many = [0.5] * 20  # exact p = 2 / 2**20; a sampled p is never 0: at least 1 / 10001
    p, is_exact = stats.sign_flip_p(many)
    assert not is_exact and 1 / 10001 <= p <= 3 / 10001


def test_paired_comparison_uses_mcnemar_for_right_or_wrong_and_permutation_otherwise() -> None:
    binary = stats.paired_comparison([1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0])
    assert binary.test == "mcnemar" and binary.only_a == 2 and binary.only_b == 0
    assert binary.p_value == pytest.approx(stats.mcnemar_exact(2, 0))
    graded = stats.paired_comparison([1.0, 0.75, 0.5, 0.5], [0.0, 0.25, 0.5, 0.25])
    # differences 1, 0.5, 0, 0.25: only all-plus/all-minus of (1, 0.5, 0.25) reach 1.75
    assert graded.test == "permutation" and graded.exact
    assert graded.p_value == pytest.approx(2 / 8)
    assert graded.delta == pytest.approx(1.75 / 4)
    assert graded.ci_low <= graded.delta <= graded.ci_high
    shown = graded.to_dict()
    assert shown["test"] == "permutation" and "only_a" not in shown


def test_a_graded_study_report_names_its_scores_and_tests(tmp_path: Path) -> None:
    from promptopt.studies.cost import Cost
    from promptopt.studies.plan import StudySettings
    from promptopt.studies.report import write_reports
    from promptopt.studies.results import HeldOutSet, RunEvaluation, Scored, StudyEvaluation
    from promptopt.studies.summary import build_report

    def scored(values: list[float], prompt: str | None = "p") -> Scored:
        return Scored(tuple(values), 0, prompt, "f1")

    test_set = HeldOutSet(
        "ws",
        "bbh/word_sorting",
        ("a", "b", "c", "d"),
        16,
        "x",
        scored([0.5, 0.0, 0.25, 0.0], ""),
        scored([0.0, 0.0, 0.0, 1.0], None),
    )
    run = RunEvaluation(
        1,
        "gpo",
        "bbh/word_sorting",
        0,
        "runs/gpo",
        "ws",
        scored([1.0, 0.75, 0.5, 0.5], "best"),
        scored([0.0, 0.25, 0.5, 0.25], "initial"),
        Cost("none"),
    )
    settings = StudySettings(methods=["gpo"], tasks=["bbh/word_sorting"], seeds=[0])
    report = build_report(
        StudyEvaluation([run], {"ws": test_set}, "hf", None, "generate"), settings
    )
    entry = report["runs"][0]
    assert entry["best"]["score"] == pytest.approx(2.75 / 4) and entry["best"]["metric"] == "f1"
    assert "accuracy" not in entry["best"] and entry["best"]["scores"] == [1.0, 0.75, 0.5, 0.5]
    assert entry["vs_initial"]["test"] == "permutation"
    assert entry["vs_initial"]["p_value"] == pytest.approx(2 / 8)
    majority = report["test_sets"]["ws"]["majority"]  # all 0 or 1: still an accuracy
    assert majority["accuracy"] == 0.25 and majority["correctness"] == "0001"
    text = write_reports(report, tmp_path)["report.md"].read_text(encoding="utf-8")
    assert "test score (f1) [95% CI]" in text and "| permutation p |" in text
    assert "paired sign-flip permutation test" in text


# --------------------------------------------------------------------------- end to end


def run_eval(args: list[str], cache_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(cache_dir), "PROMPTOPT_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "promptopt", "eval", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def eval_args(model: Path, data: Path, out: Path, *options: str) -> list[str]:
    args = ["--task", "bbh/word_sorting", "--backend", "hf", "--model", str(model)]
    args += ["--limit", "4", "--prompt", "Sort carefully.", "--max-new-tokens", "12"]
    args += ["--data-dir", str(data), "--out", str(out)]
    return [*args, *[part for option in options for part in ("-o", option)]]


def rows_of(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "examples.jsonl").read_text().splitlines()]


def test_eval_with_graded_metrics_end_to_end(
    tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    """``promptopt eval`` on a built-in task: right-or-wrong stays ``accuracy``; ``f1`` and a
    user's graded metric give the mean ``score`` and its interval; scores are derived again
    from the cached model outputs, so changing the metric generates nothing."""
    cache = tmp_path / "cache"
    out = tmp_path / "exact"
    proc = run_eval(eval_args(tiny_model_dir, shared_data_dir, out), cache)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "exact" and "score" not in summary
    assert summary["ci_low"] <= summary["accuracy"] <= summary["ci_high"]
    rows = rows_of(out)
    assert summary["correct"] == sum(r["correct"] for r in rows) and len(rows) == 4
    assert all(r["score"] == (1.0 if r["correct"] else 0.0) for r in rows)

    out = tmp_path / "f1"
    proc = run_eval(eval_args(tiny_model_dir, shared_data_dir, out, "task.metric=f1"), cache)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "f1" and summary["cache_hits"] == 4  # nothing generated
    rows = rows_of(out)
    for row in rows:
        gold = Example(row["example_id"], "", row["gold"])
        assert row["score"] == f1(row["predicted"], "", gold)
        assert row["correct"] == (row["score"] == 1.0)
    mean = sum(r["score"] for r in rows) / 4
    value = summary["accuracy"] if "accuracy" in summary else summary["score"]
    assert value == pytest.approx(mean) and summary["ci_low"] <= value <= summary["ci_high"]
    assert ("accuracy" in summary) == all(r["score"] in (0.0, 1.0) for r in rows)

    # a user's metric that is graded whatever the model says: it reads the raw output
    user = tmp_path / "length.py"
    user.write_text(
        "def length(predicted, output, example):\n    return (len(output) % 7 + 1) / 9\n"
    )
    out = tmp_path / "user"
    option = f"task.metric=python:{user}:length"
    proc = run_eval(eval_args(tiny_model_dir, shared_data_dir, out, option), cache)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["metric"] == f"python:{user}:length" and summary["cache_hits"] == 4
    assert "accuracy" not in summary and "correct" not in summary
    rows = rows_of(out)
    expected = [(len(model_output(r["reasoning"], r["answer_text"])) % 7 + 1) / 9 for r in rows]
    assert [r["score"] for r in rows] == pytest.approx(expected)
    assert summary["score"] == pytest.approx(sum(expected) / 4)
    assert summary["ci_low"] <= summary["score"] <= summary["ci_high"]
    assert summary["ci_low"] < summary["ci_high"] or len(set(expected)) == 1


def test_eval_refuses_a_bad_metric_before_loading_a_model(
    shared_data_dir: Path, tmp_path: Path
) -> None:
    missing_model = tmp_path / "no-model-here"  # never reached: the metric fails first
    args = ["--task", "gsm8k", "--model", str(missing_model), "--prompt", "x"]
    args += ["--data-dir", str(shared_data_dir)]
    for option, message in (
        ("task.metric=f2", "unknown metric 'f2'"),
        (f"task.metric=python:{tmp_path}/none.py:f", "none.py' does not exist"),
    ):
        proc = run_eval([*args, "-o", option], tmp_path / "cache")
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], proc.stderr
        assert "no-model-here" not in lines[0]


# --------------------------------------------------------------------------- a study

GRADED_PLUGIN = """
from promptopt.testing.fakes import *  # noqa: F403
from promptopt import hookimpl
from promptopt.testing.fakes import ListTask


class GradedTask(ListTask):
    name = "fake/graded"

    def score(self, predicted, output, example):
        return {score}

    @property
    def metric_name(self):
        return "{metric}"


@hookimpl
def register_tasks(register):
    register(ListTask)
    register(GradedTask)
"""


def test_a_study_compares_graded_scores_and_judges_them_again(tmp_path: Path) -> None:
    """A study on a task with a graded score: its report says score and permutation test; the
    task's scoring edited, a rerun re-judges the stored outputs without any model work."""
    plugin = tmp_path / "graded.py"
    out = tmp_path / "study"
    args = ["--methods", "fake", "--tasks", "fake/graded", "--seeds", "0,1", "-o", "steps=2"]
    env = {**os.environ, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache"), "PROMPTOPT_PROGRESS": "0"}
    command = [sys.executable, "-m", "promptopt", "study", *args, "--plugin", str(plugin)]

    def study(score: str, metric: str) -> dict[str, Any]:
        plugin.write_text(GRADED_PLUGIN.format(score=score, metric=metric))
        proc = subprocess.run(
            [*command, "--out", str(out)], capture_output=True, text=True, env=env, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads((out / "report.json").read_text()))

    first = study("0.75 if predicted == example.answer else 0.25", "quarters")
    for run in first["runs"]:
        for key in ("best", "initial"):
            assert run[key]["metric"] == "quarters" and "accuracy" not in run[key]
            assert set(run[key]["scores"]) <= {0.25, 0.75}
        assert run["vs_initial"]["test"] == "permutation"
    text = (out / "report.md").read_text()
    assert "test score (quarters) [95% CI]" in text

    second = study("0.5 if predicted is None else 0.125", "halves")
    done = json.loads((out / "last_invocation.json").read_text())
    assert done["runs_executed"] == 0 and done["evaluations_computed"] == 0
    assert done["models_loaded"] == 0
    for run in second["runs"]:
        for key in ("best", "initial"):
            entry = run[key]
            unparsed, n = entry["unparsed"], entry["n"]
            assert entry["metric"] == "halves"
            assert entry["score"] == pytest.approx((0.5 * unparsed + 0.125 * (n - unparsed)) / n)
