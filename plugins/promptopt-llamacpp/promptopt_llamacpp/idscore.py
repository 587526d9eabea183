"""Log-probabilities of token spans in the llama.cpp token generator, reusing its KV cells.

After ``generate_ids`` a slot holds its row's input and generated ids (all but the last id).
Scoring ``input + generated + extra`` ids then evaluates only what comes after the longest
computed prefix any slot holds (GReaTer's exact check: the extractor and the answer, ~30
tokens), with logits read only where a span needs them, many rows per decode call.

A row's numbers do not depend on what runs beside it: each row evaluates at least two tokens and
reads at least two logits rows (llama.cpp rounds a one-row product differently); rows that share
a decode call are padded at their end to one length, so llama.cpp's equal split puts each row's
tokens in one ubatch. Padding comes after every scored position (causal attention never looks
at it) and its cells are dropped afterwards, so a slot's cells always match its KV.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from promptopt.errors import PromptoptError
from promptopt_llamacpp.scoring import common_prefix_length

if TYPE_CHECKING:
    from promptopt_llamacpp.idgen import LlamaTokenGenerator
    from promptopt_llamacpp.kvslots import Slot


@dataclass(frozen=True)
class SpanScore:
    """One row's span: per position the log-probability of its token given everything before,
    whether that token is the argmax there (ties: the lowest id, as torch), and their sum."""

    logprobs: tuple[float, ...]
    is_argmax: tuple[bool, ...]
    total: float

    @property
    def all_argmax(self) -> bool:
        """True when greedy decoding would produce every token of the span."""
        return all(self.is_argmax)


@dataclass
class _Job:
    """One row to score: ``ids[:stop]`` evaluated after the ``keep`` cells its slot serves."""

    index: int
    ids: list[int]
    start: int
    end: int
    slot: Slot | None = None
    keep: int = 0
    found: dict[int, tuple[float, bool]] = field(default_factory=dict)  # position -> score

    @property
    def stop(self) -> int:
        # the last scored token's own logits are never needed, but at least two tokens are
        # evaluated (a lone token takes llama.cpp's one-token path)
        return max(self.end - 1, 2)

    @property
    def max_keep(self) -> int:
        """The most cells reusable: the logits before ``start`` must be computed."""
        return min(self.start - 1, self.stop - 2)

    @property
    def seq(self) -> int:
        assert self.slot is not None, "not admitted"
        return self.slot.seq

    @property
    def tokens(self) -> list[int]:
        return self.ids[self.keep : self.stop]

    def outputs(self, lo: int, hi: int) -> list[int]:
        """Indices in ``tokens[lo:hi]`` whose logits are read (never exactly one)."""
        wanted = list(range(max(lo, self.start - 1 - self.keep), min(hi, self.end - 1 - self.keep)))
        if len(wanted) == 1:  # a lone logits row is multiplied another way
            wanted = sorted({wanted[0], hi - 1 if wanted[0] != hi - 1 else hi - 2})
        return wanted

    def result(self) -> SpanScore:
        scores = [self.found[p] for p in range(self.start, self.end)]
        logprobs = tuple(lp for lp, _ in scores)
        return SpanScore(logprobs, tuple(hit for _, hit in scores), float(sum(logprobs)))


@dataclass(frozen=True)
class _Part:
    """``job.tokens[lo:hi]`` in a decode call (padded there to the call's longest part)."""

    job: _Job
    lo: int
    hi: int


def check_spans(
    rows: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    *,
    n_ctx: int,
    n_vocab: int,
) -> list[_Job]:
    """The rows as jobs, or a one-line error naming the first bad row or span."""
    if len(spans) != len(rows):
        raise PromptoptError(
            f"got {len(spans)} spans for {len(rows)} rows", hint="pass one (start, end) per row"
        )
    jobs = []
    for i, (ids, span) in enumerate(zip(rows, spans, strict=True)):
        row = [int(t) for t in ids]
        start, end = (int(x) for x in span)
        if len(row) > n_ctx:
            raise PromptoptError(
                f"row {i} has {len(row)} tokens, more than the context of {n_ctx} per sequence",
                hint="raise n_ctx, or shorten the row",
            )
        if not 1 <= start < end <= len(row):
            why = (
                "is empty"
                if end <= start
                else "starts at 0, which no prefix predicts"
                if start < 1
                else f"ends past the row's {len(row)} tokens"
            )
            raise PromptoptError(
                f"span {i} ({start}, {end}) {why}",
                hint="give 1 <= start < end <= len(row): the positions of the tokens to score",
            )
        bad = next((t for t in row if not 0 <= t < n_vocab), None)
        if bad is not None:
            raise PromptoptError(
                f"row {i} has token id {bad}, outside the vocabulary of {n_vocab}",
                hint="pass ids from this model's tokenizer",
            )
        jobs.append(_Job(i, row, start, end))
    return jobs


def score_logits(logits: np.ndarray, tokens: Sequence[int]) -> list[tuple[float, bool]]:
    """(log-softmax at each token, token is the first argmax) for rows of ``logits`` [k, V]."""
    rows = logits.astype(np.float64)
    peak = rows.max(axis=1, keepdims=True)
    norm = peak[:, 0] + np.log(np.exp(rows - peak).sum(axis=1))
    best = rows.argmax(axis=1)
    return [(float(rows[k, t] - norm[k]), bool(best[k] == t)) for k, t in enumerate(tokens)]


def split_range(lo: int, hi: int, size: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` in pieces of at most ``size`` tokens, none of exactly one (unless the whole
    range is one token): a lone token takes llama.cpp's one-token path."""
    bounds = [*range(lo, hi, size), hi] if hi > lo else []
    if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
        bounds[-2] -= 1
    return list(itertools.pairwise(bounds))


def pack_calls(
    lengths: Sequence[int], starts: Sequence[int], n_batch: int, cells: int
) -> list[list[int]]:
    """Indices of token runs (``lengths[i]`` tokens from position ``starts[i]``, each at most
    ``n_batch``) grouped into decode calls: similar lengths share a call, padded to the longest
    (at most a quarter of the width, or 4 tokens), at most ``n_batch`` tokens and ``cells``
    positions; a one-token run goes alone, unpadded, as in a one-sequence run."""
    calls: list[list[int]] = []
    group: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        n = lengths[i]
        if n == 1:
            calls.append([i])
            continue
        width = lengths[group[0]] if group else n
        fits = (len(group) + 1) * width <= n_batch and starts[i] + width <= cells
        if group and fits and width - n <= max(4, width // 4):
            group.append(i)
        else:
            if group:
                calls.append(group)
            group = [i]
    if group:
        calls.append(group)
    return calls


def decode_groups(jobs: Sequence[_Job], n_batch: int, cells: int) -> list[list[_Part]]:
    """Decode calls for admitted jobs: rows of similar length share a call, padded to the
    longest; a row longer than a batch runs alone in pieces of at least two tokens."""
    groups: list[list[_Part]] = []
    short: list[_Job] = []
    for job in jobs:
        n = len(job.tokens)
        if n <= n_batch:
            short.append(job)
        else:
            groups += [[_Part(job, lo, hi)] for lo, hi in split_range(0, n, n_batch)]
    lengths, starts = [len(job.tokens) for job in short], [job.keep for job in short]
    for call in pack_calls(lengths, starts, n_batch, cells):
        groups.append([_Part(short[i], 0, len(short[i].tokens)) for i in call])
    return groups


def score_spans(
    gen: LlamaTokenGenerator,
    rows: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]],
    on_done: Callable[[int], object] | None = None,
) -> list[SpanScore]:
    """``gen.score_spans(rows, spans)``: the scoring run over the generator's slots, batch and
    decode calls."""
    jobs = check_spans(rows, spans, n_ctx=gen.n_ctx, n_vocab=gen.n_vocab)
    gen.stats.calls += 1
    if not jobs:
        return []
    gen.kv.ensure_context(max(job.stop for job in jobs))
    waiting = deque(_reuse_order(jobs, gen.kv.slots) if gen.reuse_prefixes else jobs)
    try:
        while waiting:
            admitted = []
            while waiting and _admit(gen, waiting[0]):
                admitted.append(waiting.popleft())
            for group in decode_groups(admitted, gen.n_batch, gen.kv.cells):
                _score_group(gen, group)
            for job in admitted:
                assert job.slot is not None
                job.slot.cells = job.ids[: job.stop]
                job.slot.row = None
            if on_done is not None:
                on_done(len(admitted))
    except BaseException:
        gen.reset()  # the KV cache may no longer match the slots' bookkeeping
        raise
    return [job.result() for job in jobs]


def _admit(gen: LlamaTokenGenerator, job: _Job) -> bool:
    """Give ``job`` an idle slot holding its longest computed prefix (in place, or copied from
    another slot into the least recently used idle one); False when none is idle."""
    idle = [s for s in gen.kv.slots if s.row is None]
    if not idle:
        return False
    limit = job.max_keep
    oldest = min(idle, key=lambda s: s.stamp)
    slot, keep = oldest, 0
    if gen.reuse_prefixes:
        held = {s.seq: min(common_prefix_length(job.ids, s.cells), limit) for s in gen.kv.slots}
        slot = max(idle, key=lambda s: (held[s.seq], -s.stamp))
        keep = held[slot.seq]
        source = max(gen.kv.slots, key=lambda s: held[s.seq])
        if source is not slot and held[source.seq] >= keep + gen.min_reuse:
            slot, keep = oldest, held[source.seq]
            if source is not oldest:
                gen.kv.copy(source, oldest)  # done by llama.cpp before the next decode
    gen.kv.trim(slot, keep)
    slot.row, slot.stamp = job.index, gen.kv.tick()
    job.slot, job.keep = slot, keep
    gen.stats.prompt_tokens += job.stop - keep
    gen.stats.reused_tokens += keep
    gen.stats.scored_tokens += job.end - job.start
    return True


def _score_group(gen: LlamaTokenGenerator, group: list[_Part]) -> None:
    """One decode call for the parts (padded by the generator, its padding cells dropped);
    record the scores."""
    reads = [part.job.outputs(part.lo, part.hi) for part in group]
    firsts = gen.kv.decode_padded(
        [
            (part.job.seq, part.job.tokens[part.lo : part.hi], part.job.keep + part.lo,
             [w - part.lo for w in wanted])
            for part, wanted in zip(group, reads, strict=True)
        ]
    )  # fmt: skip
    for part, wanted, first in zip(group, reads, firsts, strict=True):
        job = part.job
        # a row read only to keep two logits rows is not scored
        pairs = [
            (job.keep + w + 1, first + w - part.lo)
            for w in wanted
            if job.start <= job.keep + w + 1 < job.end
        ]
        if pairs:
            logits = np.stack([gen.kv.logits(index) for _, index in pairs])
            scores = score_logits(logits, [job.ids[p] for p, _ in pairs])
            job.found.update(zip((p for p, _ in pairs), scores, strict=True))


def _reuse_order(jobs: list[_Job], slots: Sequence[Slot]) -> list[_Job]:
    """Jobs whose prefixes slots already hold first (before other jobs evict those cells),
    the rest in token order so that shared prefixes follow each other."""
    held = {
        job.index: max(
            (min(common_prefix_length(job.ids, s.cells), job.max_keep) for s in slots), default=0
        )
        for job in jobs
    }
    return sorted(jobs, key=lambda job: (-held[job.index], job.ids))
