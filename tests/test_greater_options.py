"""GReaTer's exact check over the task's valid answers (``option_error``, ``option_ce``), the
prompt perplexities in result.json and the ``greater-small`` preset, on the tiny model."""

from __future__ import annotations

import itertools
import math
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest

torch = pytest.importorskip("torch")

from datafiles import write_rows  # noqa: E402
from promptopt_greater.answerset import allowed_tokens, check_closed, number_tokens  # noqa: E402
from promptopt_greater.layout import Row, build_context, build_rows  # noqa: E402
from promptopt_greater.method import GreaterMethod  # noqa: E402
from promptopt_greater.tensors import exact_scores  # noqa: E402
from promptopt_greater.whitebox import WhiteBox, white_box  # noqa: E402

from promptopt.errors import PromptoptError  # noqa: E402
from promptopt.testing.fakes import ListTask  # noqa: E402
from promptopt.types import AnswerType, Example  # noqa: E402


@pytest.fixture(scope="module")
def wb(tiny_model_dir: Path) -> WhiteBox:
    from promptopt_hf.backend import HFBackend

    return white_box(HFBackend(str(tiny_model_dir), HFBackend.Options()))


class NumberTask(ListTask):
    """Integer answers, no options."""

    name = "fake/numbers"
    answer_type = AnswerType.INTEGER
    data: ClassVar[dict[str, tuple[Example, ...]]] = {
        "train": (Example("n0", "What is 5 + 7?", "12"), Example("n1", "What is 2 - 9?", "-7")),
        "dev": (Example("n2", "What is 1 + 1?", "2"),),
    }

    def continuation(self, answer: str) -> str:
        return answer


class FreeTask(ListTask):
    """Free-text answers, no options."""

    name = "fake/free"
    answer_type = AnswerType.FREE_TEXT
    data: ClassVar[dict[str, tuple[Example, ...]]] = {
        "train": (Example("f0", "Reverse the word 'ab'.", "ba"),),
        "dev": (Example("f1", "Reverse the word 'cd'.", "dc"),),
    }


def option_rows(wb: WhiteBox, examples: list[Example]) -> list[Row]:
    task = ListTask()
    prompt = GreaterMethod().initial_prompt(task, wb)
    contexts = [build_context(wb, task, e, prompt) for e in examples]
    reasoning = wb.encode(" We compare the two numbers.")
    rows = build_rows(wb, task, examples, contexts, [reasoning] * len(examples))
    return [
        replace(row, allowed=allowed_tokens(wb, task, example, row.target))
        for row, example in zip(rows, examples, strict=True)
    ]


def test_the_valid_answer_argmax_and_ce_differ_from_the_full_vocabulary(wb: WhiteBox) -> None:
    """Every train question with its gold answer and with the other answer: over the two valid
    answers exactly one of each pair is the argmax (over the whole vocabulary neither need be),
    and both numbers equal an independent forward restricted to the options' first tokens."""
    examples = ListTask().examples("train")
    flipped = [replace(e, answer="No" if e.answer == "Yes" else "Yes") for e in examples]
    rows = option_rows(wb, [*examples, *flipped])
    scores = exact_scores(wb.model, rows, pad_id=wb.pad_id, device=wb.device)
    yes, no = wb.encode(" Yes"), wb.encode(" No")
    assert yes[0] != no[0] and len(yes) == 2  # a two-token option: its second slot is forced
    changed = 0
    for row, score in zip(rows, scores, strict=True):
        with torch.no_grad():
            logits = wb.model(input_ids=torch.tensor([row.ids])).logits[0]
        pair = torch.log_softmax(logits[row.target_start - 1, [yes[0], no[0]]], dim=-1)
        gold = 0 if row.target[0] == yes[0] else 1
        assert score.option_correct == (int(pair.argmax()) == gold)
        assert score.option_ce == pytest.approx(-float(pair[gold]) / len(row.target), abs=1e-5)
        changed += bool(score.option_correct) and not score.correct
    n = len(examples)
    assert [s.option_correct for s in scores[:n]] == [not s.option_correct for s in scores[n:]]
    assert changed >= 1  # the restriction turned a wrong full-vocabulary answer right


def test_number_tasks_allow_digit_tokens_and_a_leading_minus(wb: WhiteBox) -> None:
    task = NumberTask()
    first, later = number_tokens(wb)
    assert later and all(re.fullmatch(r"[0-9]+", wb.decode([t])) for t in later)
    assert set(later) < set(first) and "-" in {wb.decode([t]) for t in first}
    for example in task.examples("train"):
        target = wb.encode(example.answer)
        allowed = allowed_tokens(wb, task, example, target)
        assert len(allowed) == len(target)
        assert allowed[0] == tuple(sorted({*first, target[0]}))
        assert all(
            a == tuple(sorted({*later, t})) for a, t in zip(allowed[1:], target[1:], strict=True)
        )
        assert all(t in a for a, t in zip(allowed, target, strict=True))


def test_a_task_without_closed_answers_is_a_one_line_error() -> None:
    check_closed(NumberTask(), NumberTask().examples("train"), "option_ce")
    with pytest.raises(PromptoptError) as caught:
        check_closed(FreeTask(), FreeTask().examples("train"), "option_error")
    message = str(caught.value)
    assert "option_error needs closed answers" in message and "\n" not in message
    assert "exact_loss=error_rate" in (caught.value.hint or "")


def test_a_free_text_file_with_option_error_exits_2_with_one_line(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    rows = [{"question": f"Reverse the word 'w{i}x'.", "answer": f"x{i}w"} for i in range(12)]
    data = write_rows(tmp_path / "reverse.csv", rows)
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", "run", "greater", "--task", str(data),
         "--backend", "hf", "--model", str(tiny_model_dir), "--out", str(tmp_path / "run"),
         "-o", "task.answer_type=text", "-o", "loss_extractor.exact_loss=option_error",
         "-o", "steps=1", "-o", "train_size=2", "-o", "dev_size=2", "-o", "max_new_tokens=2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "needs closed answers" in line]
    assert len(errors) == 1, proc.stderr


def test_option_ce_run_records_valid_answer_losses_and_prompt_perplexities(
    promptopt_fakes, promptopt_run, wb: WhiteBox
) -> None:
    outcome = promptopt_run(
        "greater", task="fake/yes-no", loaded_backend=wb, seed=1, steps=2,
        max_new_tokens=6, topk=12, subset=2, topq=4, min_candidates=2, exact_loss="option_ce",
    )  # fmt: skip
    for record in outcome.steps:
        for item in record["evaluated"]:
            assert item["loss"] == pytest.approx(item["option_ce"] + 0.02 * item["prompt_nll"])
            assert {"vocab_error_rate", "option_ce"} <= set(item)
    result = outcome.result
    assert "over the valid answers" in result["dev_metric"]
    for key, text in (
        ("best_prompt_perplexity", "best_prompt"),
        ("initial_prompt_perplexity", "initial_prompt"),
    ):
        tokens = wb.encode(result[text][len("Use") :])
        ids = [*wb.encode_input("Use"), *tokens]
        with torch.no_grad():
            logits = wb.model(input_ids=torch.tensor([ids])).logits[0]
        start = len(ids) - len(tokens)
        nll = torch.nn.functional.cross_entropy(logits[start - 1 : -1], torch.tensor(tokens))
        assert result[key] == pytest.approx(math.exp(float(nll)), rel=1e-4)


def test_the_default_exact_check_keeps_its_fields(promptopt_fakes, promptopt_run, wb) -> None:
    outcome = promptopt_run(
        "greater", task="fake/yes-no", loaded_backend=wb, seed=1, steps=1,
        max_new_tokens=6, topk=12, subset=2, topq=4, min_candidates=2, final_selection=False,
    )  # fmt: skip
    item = outcome.steps[0]["evaluated"][0]
    assert "option_ce" not in item and "vocab_error_rate" not in item
    assert outcome.result["best_prompt_perplexity"] > 1.0


def test_greater_small_is_listed_with_its_defaults() -> None:
    from promptopt_greater.method import GreaterSmallMethod

    from promptopt.registry import get_registry

    assert get_registry().get("method", "greater-small") is GreaterSmallMethod
    listed = subprocess.run(
        [sys.executable, "-m", "promptopt", "methods"], capture_output=True, text=True, check=True
    ).stdout
    lines = listed.split("greater-small:")[1].splitlines()
    block = "\n".join(itertools.takewhile(lambda line: line.startswith(" "), lines[1:]))
    loss = GreaterSmallMethod.defaults["loss_extractor"]
    assert loss["exact_loss"] == "option_error"  # the fluency sweep's choice (README)
    assert loss["eval_fluency_weight"] == 0.2
    assert f"exact_loss={loss['exact_loss']}" in block
    assert f"eval_fluency_weight={loss['eval_fluency_weight']}" in block
