"""Pure tensor functions of GReaTer: next-token log-probs, the one-hot gradient through the
reasoning, and the exact answer check. Shapes: B rows, L tokens, V vocabulary, C candidates.

Every function takes right-padded rows; with a :class:`~promptopt_greater.prefix.PrefixCache`
the fixed head of each row comes from the cache and only the rest is recomputed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from promptopt.whitebox import cache_kwargs
from promptopt_greater.layout import Row
from promptopt_greater.prefix import PrefixCache


@dataclass
class _Batch:
    """Model inputs for the recomputed part of a batch of rows."""

    ids: torch.Tensor  # [B, R] rest token ids (right padded)
    attention_mask: torch.Tensor  # [B, P + R]
    position_ids: torch.Tensor  # [B, R]
    past: Any
    cuts: list[int]  # full position of rest index 0, per row


def _prepare(
    seqs: Sequence[Sequence[int]],
    heads: Sequence[tuple[int, ...]] | None,
    cache: PrefixCache | None,
    pad_id: int,
    device: Any,
) -> _Batch:
    if cache is not None and heads is not None:
        past, past_mask, cuts = cache.batch(heads, device)
    else:
        past, past_mask, cuts = None, torch.zeros((len(seqs), 0), dtype=torch.long), [0] * len(seqs)
    rests = [list(seq[cut:]) for seq, cut in zip(seqs, cuts, strict=True)]
    width = max(len(r) for r in rests)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    positions = torch.zeros((len(seqs), width), dtype=torch.long)
    for b, rest in enumerate(rests):
        ids[b, : len(rest)] = torch.tensor(rest, dtype=torch.long)
        mask[b, : len(rest)] = 1
        positions[b] = cuts[b] + torch.arange(width)
    return _Batch(
        ids=ids.to(device),
        attention_mask=torch.cat([past_mask, mask], dim=1).to(device),
        position_ids=positions.to(device),
        past=past,
        cuts=cuts,
    )


def _keep_index(batch: _Batch, wanted: Sequence[Sequence[int]], device: Any) -> torch.Tensor:
    """``[B, K]`` rest-relative indices of the full positions in ``wanted`` (padded by repeat)."""
    width = max(len(w) for w in wanted)
    index = torch.zeros((len(wanted), width), dtype=torch.long)
    for b, positions in enumerate(wanted):
        rel = [p - batch.cuts[b] for p in positions]
        if min(rel) < 0:
            raise ValueError("a wanted position lies inside the cached prefix")
        index[b] = torch.tensor(rel + [rel[-1]] * (width - len(rel)))
    return index.to(device)


def _logits(
    model: Any, batch: _Batch, keep: torch.Tensor, embeds: torch.Tensor | None
) -> torch.Tensor:
    """Logits ``[B, K, V]`` at the kept positions only (never the full ``[B, L, V]``).

    Runs the decoder, gathers the kept rows of its last hidden state and applies the output
    head (and the final logit soft-capping some models use), as the causal-LM forward would:
    per-row positions work on every transformers release, unlike a 2-D ``logits_to_keep``."""
    decoder = model.get_decoder()
    out = decoder(
        input_ids=None if embeds is not None else batch.ids,
        inputs_embeds=embeds,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        use_cache=batch.past is not None,
        **cache_kwargs(decoder, batch.past),
    )
    hidden = out.last_hidden_state
    picked = hidden.gather(1, keep[..., None].expand(-1, -1, hidden.shape[-1]))
    logits = model.get_output_embeddings()(picked)
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits.float()


@torch.no_grad()
def next_token_logprobs(
    model: Any,
    seqs: Sequence[Sequence[int]],
    *,
    pad_id: int,
    device: Any,
    heads: Sequence[tuple[int, ...]] | None = None,
    cache: PrefixCache | None = None,
) -> torch.Tensor:
    """``[B, V]`` log-softmax of the logits after the last token of each sequence."""
    batch = _prepare(seqs, heads, cache, pad_id, device)
    keep = _keep_index(batch, [[len(s) - 1] for s in seqs], device)
    return torch.log_softmax(_logits(model, batch, keep, None)[:, 0], dim=-1)


def _slots(row: Row) -> tuple[list[int], list[int]]:
    """Positions whose logits predict the prompt tokens and the answer tokens."""
    n = len(row.context.prompt)
    prompt = [row.prompt_start + j - 1 for j in range(n)]
    answer = [row.target_start + i - 1 for i in range(len(row.target))]
    return prompt, answer


def _row_terms(
    logits: torch.Tensor, rows: Sequence[Row], temperature: float
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Per row: answer CE at ``temperature``, prompt NLL (mean), and the answer-slot argmax hits."""
    ces, nlls, hits = [], [], []
    for b, row in enumerate(rows):
        n, m = len(row.context.prompt), len(row.target)
        target = torch.tensor(row.target, device=logits.device)
        answer_logits = logits[b, n : n + m]
        ces.append(torch.nn.functional.cross_entropy(answer_logits / temperature, target))
        if n:
            prompt_ids = torch.tensor(row.context.prompt, device=logits.device)
            nlls.append(torch.nn.functional.cross_entropy(logits[b, :n], prompt_ids))
        else:
            nlls.append(logits.new_zeros(()))
        hits.append(answer_logits.argmax(dim=-1) == target)
    return ces, nlls, hits


def _wanted(rows: Sequence[Row]) -> list[list[int]]:
    return [p + a for p, a in (_slots(row) for row in rows)]


def onehot_gradient(
    model: Any,
    embed: Callable[[torch.Tensor], torch.Tensor],
    rows: Sequence[Row],
    *,
    position: int,
    candidates: Sequence[int],
    current: int,
    temperature: float,
    fluency_weight: float,
    pad_id: int,
    device: Any,
    cache: PrefixCache | None = None,
) -> tuple[torch.Tensor, float]:
    """Gradient ``[C]`` of the summed row losses w.r.t. a one-hot over ``candidates`` placed at
    prompt ``position`` (1 at index ``current``), and the summed loss.

    Row loss = CE(answer logits / temperature, gold) + fluency_weight * prompt NLL. Only the
    one-hot requires grad; the model's weights and all other embeddings are constants.

    ``embed`` is the model's input-embedding module, not its weight matrix: some models scale
    embeddings inside that module (Gemma multiplies by sqrt(hidden size)), and the one-hot row
    must be mixed from the same vectors the model sees for real token ids."""
    cand = torch.tensor(list(candidates), device=device)
    one_hot = torch.zeros(len(candidates), device=device, dtype=torch.float32)
    one_hot[current] = 1.0
    one_hot.requires_grad_(True)
    heads = [row.context.head for row in rows]
    batch = _prepare([row.ids for row in rows], heads, cache, pad_id, device)
    with torch.no_grad():
        embeds = embed(batch.ids).clone()
        cand_vectors = embed(cand).float()  # [C, d]
    soft = (one_hot @ cand_vectors).to(embeds.dtype)  # [d]
    index = torch.tensor(
        [row.prompt_start + position - cut for row, cut in zip(rows, batch.cuts, strict=True)],
        device=device,
    )
    rows_index = torch.arange(len(rows), device=device)
    embeds[rows_index, index] = soft.unsqueeze(0).expand(len(rows), -1)
    keep = _keep_index(batch, _wanted(rows), device)
    logits = _logits(model, batch, keep, embeds)
    ces, nlls, _ = _row_terms(logits, rows, temperature)
    total = torch.stack(
        [ce + fluency_weight * nll for ce, nll in zip(ces, nlls, strict=True)]
    ).sum()
    (grad,) = torch.autograd.grad(total, one_hot)
    return grad.detach().float(), float(total.detach())


@dataclass(frozen=True)
class ExactScore:
    """One row's exact check: all answer tokens argmax-correct, prompt NLL, answer CE (T=1);
    for rows with valid answers (``Row.allowed``) the same two over the valid tokens only."""

    correct: bool
    prompt_nll: float
    answer_ce: float
    option_correct: bool | None = None
    option_ce: float | None = None


def option_terms(answer_logits: torch.Tensor, row: Row) -> tuple[bool, float] | None:
    """Over the valid tokens of each answer position only (``row.allowed``): whether the gold
    token is their argmax at every position (ties: the lower id, like the full argmax), and the
    gold's mean cross-entropy renormalised over them; None for a row without valid answers."""
    if row.allowed is None:
        return None
    hits, ces = [], []
    for i, (gold, allowed) in enumerate(zip(row.target, row.allowed, strict=True)):
        index = torch.tensor(allowed, device=answer_logits.device)
        logprobs = torch.log_softmax(answer_logits[i, index], dim=-1)
        where = allowed.index(gold)
        hits.append(int(logprobs.argmax()) == where)
        ces.append(-float(logprobs[where]))
    return all(hits), sum(ces) / max(len(ces), 1)


@torch.no_grad()
def exact_scores(
    model: Any,
    rows: Sequence[Row],
    *,
    pad_id: int,
    device: Any,
    cache: PrefixCache | None = None,
) -> list[ExactScore]:
    """The reference's correctness (every answer token is the argmax) and the prompt NLL; over
    the valid answers too where rows name them."""
    heads = [row.context.head for row in rows]
    batch = _prepare([row.ids for row in rows], heads, cache, pad_id, device)
    keep = _keep_index(batch, _wanted(rows), device)
    logits = _logits(model, batch, keep, None)
    ces, nlls, hits = _row_terms(logits, rows, 1.0)
    out = []
    for b, (row, ce, nll, hit) in enumerate(zip(rows, ces, nlls, hits, strict=True)):
        n, m = len(row.context.prompt), len(row.target)
        option = option_terms(logits[b, n : n + m], row)
        out.append(
            ExactScore(
                bool(hit.all()),
                float(nll),
                float(ce),
                option_correct=None if option is None else option[0],
                option_ce=None if option is None else option[1],
            )
        )
    return out


@torch.no_grad()
def prompt_nlls(
    model: Any,
    contexts: Sequence[Any],
    *,
    pad_id: int,
    device: Any,
    cache: PrefixCache | None = None,
) -> list[float]:
    """Mean negative log-likelihood of each context's prompt tokens given its head: one forward
    over ``head + prompt`` (the head from the cache), logits only at the prompt positions."""
    out = [0.0] * len(contexts)
    todo = [i for i, c in enumerate(contexts) if c.prompt]
    if not todo:
        return out
    seqs = [[*contexts[i].head, *contexts[i].prompt] for i in todo]
    heads = [contexts[i].head for i in todo]
    batch = _prepare(seqs, heads, cache, pad_id, device)
    wanted = [[len(contexts[i].head) - 1 + j for j in range(len(contexts[i].prompt))] for i in todo]
    logits = _logits(model, batch, _keep_index(batch, wanted, device), None)
    for b, i in enumerate(todo):
        n = len(contexts[i].prompt)
        target = torch.tensor(contexts[i].prompt, device=logits.device)
        out[i] = float(torch.nn.functional.cross_entropy(logits[b, :n], target))
    return out
