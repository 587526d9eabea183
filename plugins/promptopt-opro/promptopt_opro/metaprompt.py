"""OPRO's meta-prompt, verbatim from the authors' ``opt_utils.gen_meta_prompt`` (the
"both_instructions_and_exemplars" type): the top scored instructions in ascending order with
bucketized scores, then exemplar problems, then the request for a new instruction. Two wordings,
as in the reference: ``gpt`` (its instruction-tuned optimizers) and ``palm`` (text-bison)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from promptopt.types import Example

#: Where the instruction goes: before the question, after it, or opening the answer.
InstructionPos = Literal["Q_begin", "Q_end", "A_begin"]
#: The meta-prompt wording: the reference's GPT optimizers or its text-bison optimizer.
Style = Literal["gpt", "palm"]

GPT_HEAD_INS = (
    "Your task is to generate the instruction <INS>."
    " Below are some previous instructions with their scores."
    " The score ranges from 0 to 100.\n"
)
GPT_HEAD_START = (
    "Your task is to generate the answer starting sentence <Start>."
    " Below are some previous starting sentences with their scores."
    " The score ranges from 0 to 100.\n"
)
PALM_HEAD = (
    "I have some texts along with their corresponding scores."
    " The texts are arranged in ascending order based on their scores,"
    " where higher scores indicate better quality.\n\n"
)
GPT_EXEMPLARS = "Below are some problems.\n"
PALM_EXEMPLARS = (
    "The following exemplars show how to apply your text: you replace"
    " <INS> in each input with your text, then read the input and give"
    " an output. We say your output is wrong if your output is"
    " different from the given output, and we say your output is"
    " correct if they are the same. When replacing <INS> with an old"
    " piece of text above, we get wrong outputs on the following"
    " inputs.\n\n"
)
GPT_TAIL_INS = (
    "\n\nGenerate an instruction that"
    " is different from all the instructions <INS> above,"
    " and has a higher score than all the instructions <INS> above."
    " The instruction should begin with <INS> and end with </INS>."
    " The instruction should be concise, effective,"
    " and generally applicable to all problems above."
)
GPT_TAIL_START = (
    "\n\nGenerate a starting sentence that is different from all the"
    " <Start> sentences above, and has a higher score than all the"
    " <Start> sentences above. The starting sentence should begin with"
    " <Start> and end with </Start>. The starting sentence should be"
    " concise, effective, and generally applicable to all QA pairs"
    " above."
)
PALM_TAIL = (
    "\n\nWrite your new text that is different from the old ones and"
    " has a score as high as possible. Write the text in square brackets."
)


@dataclass(frozen=True)
class Scored:
    """An earlier instruction with its accuracy on the scoring split and the step that wrote it
    (-1: an initial instruction)."""

    text: str
    accuracy: float
    step: int


def tags(style: Style, pos: InstructionPos) -> tuple[str, str]:
    """The start and end markers the optimizer is asked to wrap its instruction in."""
    if style == "palm":
        return "[", "]"
    return ("<Start>", "</Start>") if pos == "A_begin" else ("<INS>", "</INS>")


def bucketize(accuracy: float, buckets: int) -> int:
    """The score shown: ``round(accuracy * buckets)`` (Python's round, as the reference)."""
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"an accuracy is in [0, 1], not {accuracy}")
    return round(accuracy * buckets)


def shown_pairs(
    scored: Sequence[Scored], *, threshold: float, max_instructions: int
) -> list[Scored]:
    """The instructions the meta-prompt shows: the ``max_instructions`` highest scores in
    ascending order (a stable sort: among equal scores the earlier first), those below
    ``threshold`` left out (0: none left out)."""
    top = sorted(scored, key=lambda s: s.accuracy)[-max_instructions:]
    return [s for s in top if not threshold or s.accuracy >= threshold]


def exemplar_answer(example: Example) -> str:
    """The gold answer as the reference's data writes it: "(B)" when the question lists the
    option that way (BBH multiple choice), else the answer."""
    answer = example.answer
    return f"({answer})" if f"({answer})" in example.question else answer


def _exemplar(example: Example, pos: InstructionPos, style: Style) -> str:
    question = example.question
    if style == "gpt":
        if pos == "A_begin":  # the reference's include_qa layout (the only one for A_begin)
            text = f"\nQ: {question}\nA: <Start>"
        elif pos == "Q_begin":
            text = f"\nProblem:\n<INS>\n{question}\n"
        else:
            text = f"\nProblem:\n{question}\n<INS>\n"
        return text + f"\nGround truth answer:\n{exemplar_answer(example)}\n"
    if pos == "A_begin":
        text = f"\ninput:\nQ: {question}\nA: <INS>"
    elif pos == "Q_begin":
        text = f"\ninput:\n<INS>\n{question}\n"
    else:
        text = f"\ninput:\n{question}\n<INS>\n"
    return text + f"\noutput:\n{exemplar_answer(example)}\n"


def render(
    shown: Sequence[Scored],
    exemplars: Sequence[Example],
    *,
    pos: InstructionPos = "Q_end",
    style: Style = "gpt",
    buckets: int = 100,
) -> str:
    """The meta-prompt: instructions and scores (ascending), then the exemplars, then the
    request (the reference's order, ``instructions_before_exemplars=True``)."""
    head = PALM_HEAD
    if style == "gpt":
        head = GPT_HEAD_START if pos == "A_begin" else GPT_HEAD_INS
    head += "".join(f"\ntext:\n{s.text}\nscore:\n{bucketize(s.accuracy, buckets)}\n" for s in shown)
    text = head
    if exemplars:
        part = GPT_EXEMPLARS if style == "gpt" else PALM_EXEMPLARS
        part += "".join(_exemplar(e, pos, style) for e in exemplars)
        text = head + "\n\n" + part
    if style == "gpt":
        return text + (GPT_TAIL_START if pos == "A_begin" else GPT_TAIL_INS)
    return text + PALM_TAIL
