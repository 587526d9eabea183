"""Batched greedy generation from exact token ids (left padding), with OOM backoff."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from promptopt_greater.batching import BatchSize, run_batched
from promptopt_greater.whitebox import WhiteBox, eval_mode


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask)`` of shape ``[B, L]`` with padding on the left."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def _strip(ids: Sequence[int], eos: frozenset[int]) -> list[int]:
    out: list[int] = []
    for token in ids:
        if token in eos:
            break
        out.append(int(token))
    return out


@torch.no_grad()
def greedy_generate(
    wb: WhiteBox,
    inputs: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    batch: BatchSize,
    on_done: Callable[[int], object] | None = None,
) -> list[list[int]]:
    """Greedy continuations (ids, EOS and after removed) of every input, longest first, in
    chunks of ``batch`` (halved on out-of-memory); uses the backend's ``generate_ids`` if any."""
    if not inputs:
        return []
    model = wb.model
    eos = wb.eos_ids
    backend_generate = getattr(wb.backend, "generate_ids", None)

    def run(chunk: Sequence[int]) -> list[list[int]]:
        if backend_generate is not None:  # the backend's own batched greedy loop
            rows = [list(inputs[i]) for i in chunk]
            return [list(r) for r in backend_generate(rows, max_new_tokens=max_new_tokens)]
        ids, mask = left_pad([inputs[i] for i in chunk], wb.pad_id)
        out = model.generate(
            input_ids=ids.to(wb.device),
            attention_mask=mask.to(wb.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=wb.pad_id,
            eos_token_id=sorted(eos) if eos else None,
        )
        new = out[:, ids.shape[1] :].tolist()
        return [_strip(row, eos) for row in new]

    order = sorted(range(len(inputs)), key=lambda i: (-len(inputs[i]), i))
    with eval_mode(model):
        generated = run_batched(run, order, batch, on_done)
    result: list[list[int]] = [[] for _ in inputs]
    for index, ids in zip(order, generated, strict=True):
        result[index] = ids
    return result
