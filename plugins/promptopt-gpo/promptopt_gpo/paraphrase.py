"""The fallback after several steps without a valid candidate: ask the optimizer model for a
variation of the best prompt so far (APE's resampling instruction), in GPO's tag format."""

from __future__ import annotations

from collections.abc import Sequence

from promptopt.records import StepReport

#: APE's resampling instruction (Zhou et al., 2023), verbatim.
INSTRUCTION = (
    "Generate a variation of the following instruction while keeping the semantic meaning."
)


def paraphrase_request(prompt: str) -> str:
    """The user message asking for a variation of ``prompt``, wrapped in <START> and <END>."""
    return f"{INSTRUCTION}\n\nInput: {prompt}\n\nWrap the variation with <START> and <END>."


def steps_without_candidates(reports: Sequence[StepReport]) -> int:
    """How many of the latest steps in a row recorded ``valid_candidates`` = 0 (the method's
    start, or a step that does not record it, ends the count)."""
    count = 0
    for report in reversed(reports):
        valid = report.get("valid_candidates")
        if report.step < 0 or valid is None or valid:
            break
        count += 1
    return count
