"""Answer parsing of the task plugins on realistic (and messy) model outputs."""

from __future__ import annotations

import pytest
from promptopt_tasks.answers import Binary, FreeText, Integer, MultipleChoice, normalize_number
from promptopt_tasks.bbh import BBH_TASK_CLASSES, merge_split_options
from promptopt_tasks.folio import Folio
from promptopt_tasks.gsm8k import GSM8K

from promptopt.components import Task
from promptopt.types import AnswerType, Example

_CLASSES: list[type[Task]] = [Folio, GSM8K, *BBH_TASK_CLASSES]
TASKS: dict[str, type[Task]] = {cls.name: cls for cls in _CLASSES}

# (task, model output, expected parse). Covers the reasoning endings and the continuations
# that follow the extractor ("... is $"), including messy formatting.
OUTPUTS: list[tuple[str, str, str | None]] = [
    # multiple choice: FOLIO
    ("folio", "**Answer: (B)**", "B"),
    ("folio", "The statement follows from premises 1 and 3. The answer is (A).", "A"),
    ("folio", "So the statement is uncertain.\n\nThe answer is C.", "C"),
    ("folio", "Therefore, the final answer is $C$.", "C"),
    ("folio", "C", "C"),
    ("folio", "C$. This is because nothing is said about Rina.", "C"),
    ("folio", " (A)", "A"),
    ("folio", "B) False", "B"),
    ("folio", "The answer is (A) True... wait, actually the answer is (B) False.", "B"),
    ("folio", "Answer: $A\nLater check: answer: $C", "C"),
    ("folio", "Let's look at the options (A) True (B) False (C) Uncertain. The answer is A.", "A"),
    ("folio", "the answer is I think (C)", "C"),
    ("folio", "Options:\n(A) True\n(B) False\n(C) Uncertain\nLet me think.", None),
    ("folio", "We check the options (A) True (B) False (C) Uncertain one by one.", None),
    ("folio", "Options:\n(A) True\n(B) False\n(C) Uncertain\nPremise 2 rules it out (B).", "B"),
    ("folio", "\\boxed{B}", "B"),
    ("folio", "$\\boxed{\\text{C}}$", "C"),
    ("folio", "Option B is correct.", "B"),
    ("folio", "The premises do not mention Bonnie at all.", None),
    ("folio", "", None),
    ("folio", "The answer is D.", None),
    # multiple choice: BBH
    ("bbh/date_understanding", "Tomorrow is 12/25/1937, so the answer is (B).", "B"),
    (
        "bbh/geometric_shapes",
        "The path has 7 sides, so it is a heptagon. So the answer is (B).",
        "B",
    ),
    ("bbh/geometric_shapes", "It draws a sector, answer: (I)", "I"),
    ("bbh/reasoning_about_colored_objects", "The answer is (R).", "R"),
    ("bbh/hyperbaton", "The correct order is opinion-size-age. The answer is $A", "A"),
    ("bbh/snarks", "The answer is (A) but the sarcastic one is... So the answer is (B).", "B"),
    # binary
    ("bbh/causal_judgement", "so the answer is $ Yes", "Yes"),
    ("bbh/causal_judgement", " No", "No"),
    ("bbh/causal_judgement", " No$.\nMost people would not blame the machine.", "No"),
    ("bbh/navigate", "We end at (0, 0), which is the starting point. So the answer is Yes.", "Yes"),
    ("bbh/navigate", "The answer is yes", "Yes"),
    ("bbh/navigate", "There is no way to know. The answer is: **No**.", "No"),
    ("bbh/web_of_lies", "Sherrie tells the truth. So Vernell tells the truth... So, yes.", "Yes"),
    ("bbh/web_of_lies", "The answer is Yes. Hmm, re-checking: the answer is No.", "No"),
    ("bbh/sports_understanding", "The answer is no.", "No"),
    ("bbh/sports_understanding", "Hockey players do not score touchdowns", None),
    (
        "bbh/boolean_expressions",
        "not True is False, False and True is False. The answer is False.",
        "False",
    ),
    ("bbh/boolean_expressions", " True", "True"),
    (
        "bbh/formal_fallacies",
        "The conclusion does not follow, so the argument is invalid.",
        "invalid",
    ),
    ("bbh/formal_fallacies", "So the answer is valid.", "valid"),
    ("bbh/formal_fallacies", " invalid$", "invalid"),
    # integers
    ("gsm8k", "$-1,234$.", "-1234"),
    ("gsm8k", "The answer is 72.", "72"),
    ("gsm8k", "She sells 16 - 3 - 4 = 9 eggs and makes 9 * 2 = $18 every day.", "18"),
    ("gsm8k", "#### 1,080", "1080"),
    ("gsm8k", "The answer is 18. She earns $2 for each of the 9 eggs.", "18"),
    ("gsm8k", "Total: $1,250.50 minus $250.50 leaves $1,000", "1000"),
    ("gsm8k", "So the total is 84 eggs.", "84"),
    ("gsm8k", "The answer is $18.00", "18"),
    ("gsm8k", "The answer is 2.5 hours.", "2.5"),
    ("gsm8k", "The answer is 15. Wait, I made a mistake; the answer is 20.", "20"),
    ("gsm8k", "-5$", "-5"),
    ("gsm8k", "The final answer is \\boxed{1,600}.", "1600"),
    ("gsm8k", "I cannot solve this problem.", None),
    ("gsm8k", "The answer is +7.", "7"),
    ("gsm8k", "The answer is \u221212.", "-12"),
    (
        "bbh/multistep_arithmetic_two",
        "(-1 + 2 + 45) - (-2 + -4 + 28) = 46 - 22 = 24. So the answer is 24.",
        "24",
    ),
    ("bbh/multistep_arithmetic_two", "-11520$", "-11520"),
    (
        "bbh/object_counting",
        "flute, piano, trombone... that makes 8 instruments. So the answer is 8.",
        "8",
    ),
    # free text
    ("bbh/dyck_languages", "We need to close [ and then <. So the answer is ] >.", "] >"),
    ("bbh/dyck_languages", "] ] >$", "] ] >"),
    ("bbh/dyck_languages", "]]>}", "] ] > }"),
    ("bbh/dyck_languages", "The stack is empty, nothing to add.", None),
    ("bbh/word_sorting", "The answer is: apple, banana, Cherry.", "apple banana cherry"),
    ("bbh/word_sorting", "syndrome therefrom$", "syndrome therefrom"),
    (
        "bbh/word_sorting",
        "First letters: s, t. So the answer is syndrome therefrom.",
        "syndrome therefrom",
    ),
]


def test_table_is_large_enough() -> None:
    assert len(OUTPUTS) >= 50
    assert {t for t, _, _ in OUTPUTS} <= set(TASKS)


@pytest.mark.parametrize(("task_name", "text", "expected"), OUTPUTS)
def test_parse_model_output(task_name: str, text: str, expected: str | None) -> None:
    task = TASKS[task_name]()
    assert task.parse(text) == expected


@pytest.mark.parametrize(("task_name", "text", "expected"), OUTPUTS)
def test_parse_after_extractor(task_name: str, text: str, expected: str | None) -> None:
    """The extractor's own format hint ('$A' or '$B' ...) is never read as an answer."""
    task = TASKS[task_name]()
    example = Example("x", "q", "A", ("A", "B", "C"))
    assert task.parse(task.extractor(example) + text) == expected


def test_extractor_wording_follows_the_reference() -> None:
    folio = Folio()
    example = Example("x", "q", "C", ("A", "B", "C"))
    assert folio.extractor(example) == (
        "Therefore, the final answer (use exact format: '$A' or '$B' or '$C') is $"
    )
    assert folio.continuation("C") == "C"
    assert folio.target(example) == "C"
    navigate = TASKS["bbh/navigate"]()
    yes = Example("y", "q", "Yes", ("Yes", "No"))
    text = navigate.extractor(yes) + navigate.continuation("Yes")
    assert text == "Therefore, the final answer (use exact format: '$ Yes' or '$ No') is $ Yes"
    assert GSM8K().extractor(Example("z", "q", "7")) == (
        "Therefore, the final answer (use exactly this format: $NUMBER$, where NUMBER is a "
        "positive or negative integer) is $"
    )


def test_answer_types_of_the_bbh_tasks() -> None:
    types = {cls.name: cls.answer_type for cls in BBH_TASK_CLASSES}
    assert len(types) == 27
    assert types["bbh/object_counting"] is AnswerType.INTEGER
    assert types["bbh/multistep_arithmetic_two"] is AnswerType.INTEGER
    assert types["bbh/dyck_languages"] is AnswerType.FREE_TEXT
    assert types["bbh/word_sorting"] is AnswerType.FREE_TEXT
    binary = {n for n, t in types.items() if t is AnswerType.BINARY}
    assert binary == {
        "bbh/boolean_expressions",
        "bbh/causal_judgement",
        "bbh/formal_fallacies",
        "bbh/navigate",
        "bbh/sports_understanding",
        "bbh/web_of_lies",
    }
    assert sum(t is AnswerType.MULTIPLE_CHOICE for t in types.values()) == 17


def test_is_correct_normalizes_the_prediction() -> None:
    sorting = TASKS["bbh/word_sorting"]()
    gold = Example("w", "q", "apple banana cherry")
    assert sorting.is_correct("Apple, banana, cherry.", gold)
    assert not sorting.is_correct("banana apple cherry", gold)
    assert not sorting.is_correct(None, gold)
    dyck = TASKS["bbh/dyck_languages"]()
    assert dyck.is_correct("]]>", Example("d", "q", "] ] >"))
    assert GSM8K().is_correct("1,234.00", Example("g", "q", "1234"))
    assert not GSM8K().is_correct("1234.5", Example("g", "q", "1234"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("-1,234", "-1234"), ("+5", "5"), ("72.", "72"), ("2.50", "2.5"), ("0.0", "0"), ("x", None)],
)
def test_normalize_number(raw: str, expected: str | None) -> None:
    assert normalize_number(raw) == expected


def test_answer_formats_directly() -> None:
    assert MultipleChoice("AB").normalize("(B)") == "B"
    assert MultipleChoice("AB").normalize("(C)") is None
    assert Binary("valid", "invalid").normalize("Invalid.") == "invalid"
    assert Binary("True", "False").continuation("true") == " True"
    assert Integer().parse("3-4 apples") == "4"
    with pytest.raises(ValueError, match="unknown free-text kind"):
        FreeText("poems")


def test_merge_split_options_repairs_comma_split_options() -> None:
    question = "Find a movie similar to X:\nOptions:\n(A) Monsters\n(B) Inc\n(C) Heat"
    repaired = merge_split_options(question, "Monsters, Inc")
    assert repaired == ("Find a movie similar to X:\nOptions:\n(A) Monsters, Inc\n(B) Heat", "A")
    assert merge_split_options(question, "Toy Story") is None
