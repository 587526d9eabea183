"""Prompt log-probabilities through the completions endpoint (``echo`` + ``logprobs``).

A continuation's tokens are the last ``k`` prompt tokens of ``prefix + continuation``, where
``k`` is the difference of the two texts' prompt token counts the server reports (``usage``):
the same tokens the llamacpp backend scores whenever the joint tokenization extends the
prefix's own, which is the normal case. Before the first use the answers are checked against
the server's own generation log-probabilities, so a server that echoes misaligned or no
prompt log-probabilities is an error instead of silently wrong scores.
"""

from __future__ import annotations

import math
from typing import Any

#: |echoed - generated| log-probability of the same token allowed by the alignment check;
#: the same row computed in two batches differs by float noise, a shifted row by far more.
ALIGNMENT_TOL = 0.05


class PromptLogprobsUnavailable(Exception):
    """The server returned no usable prompt log-probabilities; the message says why."""


def choice(answer: dict[str, Any]) -> dict[str, Any]:
    """The first choice of a completions answer."""
    choices = answer.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise PromptLogprobsUnavailable("its answer has no choices")
    return dict(choices[0])


def usage_counts(answer: dict[str, Any]) -> tuple[int, int]:
    """(prompt tokens, completion tokens) from the answer's ``usage``."""
    usage = answer.get("usage") or {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        raise PromptLogprobsUnavailable("its answer has no token usage")
    return prompt, completion


def token_logprobs(answer: dict[str, Any]) -> list[float | None]:
    """The echoed ``token_logprobs`` list (prompt tokens, then generated ones)."""
    logprobs = choice(answer).get("logprobs")
    values = logprobs.get("token_logprobs") if isinstance(logprobs, dict) else None
    if not isinstance(values, list) or not values:
        raise PromptLogprobsUnavailable("it returned no token log-probabilities")
    return values


def tail_logprob(answer: dict[str, Any], k: int) -> float:
    """Sum of the log-probabilities of the last ``k`` prompt tokens of an echoed answer."""
    if k <= 0:
        return 0.0
    values = token_logprobs(answer)
    _, generated = usage_counts(answer)
    end = len(values) - generated
    picked = values[end - k : end] if end - k >= 0 else []
    numbers = [v for v in picked if isinstance(v, (int, float))]
    if len(picked) != k or len(numbers) != k:
        raise PromptLogprobsUnavailable(
            f"it returned {len(values)} token log-probabilities, too few for the last {k}"
        )
    total = float(sum(numbers))
    if not math.isfinite(total):
        raise PromptLogprobsUnavailable("it returned a non-finite log-probability")
    return total


def generated_logprob(answer: dict[str, Any]) -> tuple[str, float] | None:
    """(text, log-probability) of the single generated token of a non-echo answer with
    ``logprobs``; None when the model stopped at once (nothing generated)."""
    first = choice(answer)
    _, generated = usage_counts(answer)
    text = first.get("text")
    if generated != 1 or not isinstance(text, str) or not text:
        return None
    values = token_logprobs(answer)
    value = values[0]
    if not isinstance(value, (int, float)):
        raise PromptLogprobsUnavailable("it returned no log-probability for a generated token")
    return text, float(value)
