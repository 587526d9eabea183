"""Greedy decoding and continuation scoring on token ids, batched with explicit padding.

Own decode loop instead of ``model.generate``: it behaves the same across transformers
versions, gives exact ids, and makes a left-padded batch produce the same tokens as each
sequence alone (attention mask over the padding + position ids counted from the first real
token).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from promptopt.whitebox import cache_kwargs, output_cache

if TYPE_CHECKING:
    import torch

#: ``should_stop(row, new_ids)`` -> True once row's new tokens contain a stop string.
StopCheck = Callable[[int, list[int]], bool]


def logits_kwarg(model: Any, keep: int) -> dict[str, int]:
    """Ask the model for the last ``keep`` positions' logits only, where it supports that
    (``logits_to_keep`` since transformers 4.50, ``num_logits_to_keep`` in 4.45-4.49)."""
    params = inspect.signature(model.forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in params:
            return {name: keep}
    return {}


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, device: torch.device):
    """(ids, attention_mask, position_ids), each [batch, width], rows right-aligned."""
    import torch

    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), positions.to(device)


@dataclass(frozen=True)
class Sampler:
    """How the next token is drawn: argmax at temperature 0, else temperature + nucleus
    (``top_p``) sampling with one seeded generator per input row (batching-independent)."""

    temperature: float = 0.0
    top_p: float = 1.0
    seeds: tuple[int, ...] = ()

    def generators(self, device: Any) -> list[Any]:
        import torch

        if self.temperature <= 0.0:
            return []
        return [torch.Generator(device=device).manual_seed(seed) for seed in self.seeds]

    def pick(
        self, logits: torch.Tensor, rows: Sequence[int], generators: Sequence[Any]
    ) -> list[int]:
        """Next token per batch row; ``rows[b]`` is the input row of batch row ``b``."""
        import torch

        if self.temperature <= 0.0:
            return [int(t) for t in logits.argmax(dim=-1).tolist()]
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass strictly above each token
            sorted_probs = sorted_probs.masked_fill(before >= self.top_p, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        return [
            int(torch.multinomial(probs[b], 1, generator=generators[row]).item())
            for b, row in enumerate(rows)
        ]


def greedy_batch(
    model: Any,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_ids: set[int],
    pad_id: int,
    should_stop: StopCheck | None = None,
    max_length: int | None = None,
    sampler: Sampler | None = None,
    on_forward: Callable[[], object] | None = None,
) -> list[list[int]]:
    """New token ids for each row of prompt ids: greedy, or drawn by ``sampler`` (EOS excluded;
    a stop check ends a row after the token that completed its stop string; a row also ends when
    it has ``max_length`` tokens in all, the model's context). Finished rows leave the batch (and
    the KV cache) where the cache supports it, so long stragglers do not pay for finished rows.
    ``on_forward`` is called once per model forward (for compute accounting)."""
    import torch

    if any(len(row) == 0 for row in rows):
        raise ValueError("cannot generate from an empty input (no tokens)")
    sampler = sampler or Sampler()
    device = next(model.parameters()).device
    generators = sampler.generators(device)
    ids, mask, positions = left_pad(rows, pad_id, device)
    out: list[list[int]] = [[] for _ in rows]
    active = list(range(len(rows)))  # batch row -> input row
    alive = [True] * len(rows)  # per batch row
    past: Any = None
    keep = logits_kwarg(model, 1)
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            result = model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **cache_kwargs(model, past),
                **keep,
            )
            if on_forward is not None:
                on_forward()
            past = output_cache(result)
            next_ids = sampler.pick(result.logits[:, -1, :], active, generators)
            for b, token in enumerate(next_ids):
                if not alive[b]:
                    continue
                i = active[b]
                if token in eos_ids:
                    alive[b] = False
                    continue
                out[i].append(int(token))
                if should_stop is not None and should_stop(i, out[i]):
                    alive[b] = False
                if max_length is not None and len(rows[i]) + len(out[i]) >= max_length:
                    alive[b] = False
            if not any(alive):
                break
            fed = [t if a else pad_id for t, a in zip(next_ids, alive, strict=True)]
            still = [b for b, a in enumerate(alive) if a]
            if len(still) < len(alive) and hasattr(past, "batch_select_indices"):
                index = torch.tensor(still, dtype=torch.long, device=device)
                past.batch_select_indices(index)
                mask, positions = mask[index], positions[index]
                fed = [fed[b] for b in still]
                active = [active[b] for b in still]
                alive = [True] * len(still)
            ids = torch.tensor(fed, dtype=torch.long, device=device)[:, None]
            mask = torch.cat([mask, mask.new_ones((len(fed), 1))], dim=1)
            positions = positions[:, -1:] + 1
    return out


def continuation_logprobs(
    model: Any, prefix: Sequence[int], continuations: Sequence[Sequence[int]], pad_id: int
) -> list[float]:
    """Summed log-probabilities of each continuation's ids after ``prefix`` (one forward over
    the right-padded batch of ``prefix + continuation``); empty continuations score 0."""
    import torch

    if not prefix:
        raise ValueError("continuation_logprobs needs a non-empty prefix")
    longest = max((len(c) for c in continuations), default=0)
    if longest == 0:
        return [0.0 for _ in continuations]
    device = next(model.parameters()).device
    n, p = len(continuations), len(prefix)
    ids = torch.full((n, p + longest), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    ids[:, :p] = torch.tensor(list(prefix), dtype=torch.long)
    mask[:, :p] = 1
    for i, cont in enumerate(continuations):
        if cont:
            ids[i, p : p + len(cont)] = torch.tensor(list(cont), dtype=torch.long)
            mask[i, p : p + len(cont)] = 1
    ids, mask = ids.to(device), mask.to(device)
    with torch.inference_mode():
        # The logits at positions p-1 .. p+longest-2 predict the continuation tokens.
        logits = model(
            input_ids=ids, attention_mask=mask, use_cache=False, **logits_kwarg(model, longest + 1)
        ).logits
        logits = logits[:, -(longest + 1) : -1, :].float()
        logprobs = logits.log_softmax(dim=-1)
        targets = ids[:, p:]
        picked = logprobs.gather(-1, targets[..., None])[..., 0]
        picked = picked * mask[:, p:].to(picked.dtype)
        return [float(value) for value in picked.sum(dim=-1).tolist()]
