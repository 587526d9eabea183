"""APE's templates: the forward instruction-induction template and the demonstrations' layout,
verbatim from the authors' code (keirp/automatic_prompt_engineer, ``ape.py`` and
``template.py``), and the resampling template of the iterative Monte-Carlo search, verbatim
from the paper (the released code has none)."""

from __future__ import annotations

from collections.abc import Sequence

from promptopt.types import Example

#: ``ape.get_simple_prompt_gen_template`` (forward mode): [full_DEMO] holds the demonstrations,
#: [APE] is where the model writes.
FORWARD = (
    "I gave a friend an instruction. Based on the instruction they produced the following "
    "input-output pairs:\n\n[full_DEMO]\n\nThe instruction was to [APE]"
)
#: ``ape.simple_ape``'s ``demos_template``; demonstrations are joined by a blank line
#: (``template.DemosTemplate``'s delimiter).
DEMO = "Input: [INPUT]\nOutput: [OUTPUT]"
DEMO_DELIMITER = "\n\n"
#: The paper's resampling template (Section 3.3): a variation of a high-scoring instruction.
RESAMPLE = (
    "Generate a variation of the following instruction while keeping the semantic meaning."
    "\n\nInput: [INSTRUCTION]\n\nOutput:"
)
#: The words the forward template leaves the model to complete.
FORWARD_OPENING = "The instruction was to"


def demo_answer(example: Example) -> str:
    """A demonstration's output: the gold answer, as "(B)" when the question lists the option
    that way (BBH multiple choice)."""
    answer = example.answer
    return f"({answer})" if f"({answer})" in example.question else answer


def demos(examples: Sequence[Example]) -> str:
    """``DemosTemplate.fill``: every demonstration through :data:`DEMO`, blank-line separated."""
    return DEMO_DELIMITER.join(
        DEMO.replace("[INPUT]", e.question).replace("[OUTPUT]", demo_answer(e)) for e in examples
    )


def forward_query(examples: Sequence[Example]) -> str:
    """The model input of one induction query: the template filled, [APE] removed and the text
    stripped (the authors' ``GPT_Forward`` does both), so it ends with "The instruction was
    to"."""
    return FORWARD.replace("[full_DEMO]", demos(examples)).replace("[APE]", "").strip()


def resample_query(instruction: str) -> str:
    """The model input asking for a variation of ``instruction``."""
    return RESAMPLE.replace("[INSTRUCTION]", instruction)
