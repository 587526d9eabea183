"""Greedy generation from exact token ids, in batches of the reasoner's size (longest inputs
first, so each batch pads little), through the backend's own id-level generator."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from promptopt_greater.batching import BatchSize, run_batched
from promptopt_greater.whitebox import WhiteBox


def greedy_generate(
    wb: WhiteBox,
    inputs: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    batch: BatchSize,
    on_done: Callable[[int], object] | None = None,
) -> list[list[int]]:
    """Greedy continuations (ids, EOS and after removed) of every input, in input order."""
    if not inputs:
        return []

    def run(chunk: Sequence[int]) -> list[list[int]]:
        rows = [list(inputs[i]) for i in chunk]
        return [list(r) for r in wb.generate_ids(rows, max_new_tokens=max_new_tokens)]

    order = sorted(range(len(inputs)), key=lambda i: (-len(inputs[i]), i))
    generated = run_batched(run, order, batch, on_done)
    result: list[list[int]] = [[] for _ in inputs]
    for index, ids in zip(order, generated, strict=True):
        result[index] = ids
    return result
