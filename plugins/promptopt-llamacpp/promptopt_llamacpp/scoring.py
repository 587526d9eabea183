"""Log-probabilities of continuations from llama.cpp's per-position logits (``eval`` + ``scores``).

The prefix is evaluated once (and kept across calls while it matches); each option then
rewinds ``n_tokens`` to the prefix length and evaluates only its own tokens. Row ``p`` of
``Llama.scores`` holds the logits that predict token ``p + 1``, so token ``t`` at position ``p``
is scored by ``log_softmax(scores[p - 1])[t]`` (llama-cpp-python's ``echo=True`` logprobs are
off by one position; this avoids them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def log_softmax_at(logits: np.ndarray, token: int) -> float:
    """``log_softmax(logits)[token]`` in float64."""
    row = logits.astype(np.float64, copy=False)
    peak = float(row.max())
    return float(row[token] - peak - np.log(np.exp(row - peak).sum()))


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def eval_prefix(llm: Any, tokens: Sequence[int]) -> None:
    """Make ``llm`` hold exactly ``tokens`` with fresh logits rows, reusing the matching part
    of what it already evaluated (the KV cache past the match is dropped by ``eval``)."""
    if not tokens:
        raise ValueError("cannot score after an empty prefix")
    held = list(llm.input_ids[: llm.n_tokens])
    keep = min(common_prefix_length(held, tokens), len(tokens) - 1)
    llm.n_tokens = keep
    llm.eval(list(tokens[keep:]))


def options_logprobs(
    llm: Any, prefix: Sequence[int], options: Sequence[Sequence[int]]
) -> list[float]:
    """Summed log-probability of each token sequence in ``options`` right after ``prefix``.

    ``llm`` must be a ``llama_cpp.Llama`` built with ``logits_all=True``.
    """
    eval_prefix(llm, prefix)
    start = len(prefix)
    first_row = np.array(llm.scores[start - 1], dtype=np.float32)  # survives option evals
    results: list[float] = []
    for option in options:
        if not option:
            results.append(0.0)
            continue
        total = log_softmax_at(first_row, option[0])
        if len(option) > 1:
            llm.n_tokens = start
            llm.eval(list(option[:-1]))  # the last token's own logits are never needed
            for i in range(1, len(option)):
                total += log_softmax_at(llm.scores[start + i - 1], option[i])
        results.append(total)
    return results
