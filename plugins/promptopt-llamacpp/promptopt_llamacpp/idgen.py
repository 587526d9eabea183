"""Greedy continuations of exact token ids in llama.cpp, many sequences per decode call.

Built for callers that keep gradients in torch and want their greedy generation fast (GReaTer):
inputs are token ids, nothing is tokenized. Each input runs in a sequence slot with its own KV
stream, so its numbers are those of a single-sequence run; a finished slot takes the next waiting
input (continuous batching). A slot keeps its KV cells after its input ends: the next input reuses
the longest common prefix in place, or copies it from another slot, and evaluates only the rest.
Inputs are admitted in sorted order, so inputs that share prefixes follow each other. The rows
admitted together are evaluated together, several per decode call (each call streams every
weight once, so few large calls beat many small ones), at least two tokens and two logits rows
per row: llama.cpp rounds a lone token or a lone logits row differently, so a row's numbers do
not depend on what runs beside it.

:meth:`LlamaTokenGenerator.generate_scored` also returns the log-probabilities of a span of each
input (GReaTer's prompt NLL), read from the logits of the evaluation the generation needs anyway.
Slots remember them per position, so an input that reuses a prefix reuses its scores too; the
ids equal those of ``generate_ids``. llama_cpp is imported when a model loads, never at import.

This module schedules the rows; the slots, their KV cells and the decode calls are
:mod:`promptopt_llamacpp.kvslots`'s.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from promptopt.errors import PromptoptError
from promptopt_llamacpp.idscore import (
    SpanScore,
    pack_calls,
    score_logits,
    score_spans,
    split_range,
)
from promptopt_llamacpp.kvslots import GenerationStats, Slot, SlotCache, llama_cpp_lib
from promptopt_llamacpp.modelfiles import check_gguf
from promptopt_llamacpp.scoring import common_prefix_length

__all__ = ["LlamaTokenGenerator", "SpanScore", "StopCheck"]

log = logging.getLogger(__name__)

#: ``stop_check(row, ids_so_far)``: True ends that row after its latest token.
StopCheck = Callable[[int, list[int]], bool]
#: Idle sequence ids between running rows given a throw-away token so that a decode call stays
#: one ubatch (a token costs ~2 ms there, another ubatch ~18 ms: measured on a 2-core CPU).
MAX_FILLED_GAP = 6


@dataclass
class _Piece:
    """Consecutive pending tokens of one slot's row evaluated in one decode call, starting at
    position ``start``; ``reads``: indices whose logits are read."""

    slot: Slot
    row: list[int]
    tokens: list[int]
    start: int
    reads: list[int]


@dataclass(frozen=True)
class _Ending:
    """When a row ends: its EOS ids, the new-token budget and the caller's stop check."""

    eos: frozenset[int]
    max_new_tokens: int
    stop_check: StopCheck | None


class LlamaTokenGenerator:
    """Greedy continuations of token ids from a GGUF model: batched, continuous, prefix-reusing;
    and log-probabilities of token spans (:meth:`score_spans`) reusing the same KV cells.

    ``n_ctx`` is the most positions one sequence may take (its input plus its new tokens). The
    KV cache holds ``n_parallel`` sequences and is sized by what the inputs need (powers of two
    from 512 cells, at most ``n_ctx``), grown when longer inputs come: the model's full context
    is never allocated on speculation. Threads are never guessed: ``n_threads`` is required and
    ``n_threads_batch`` defaults to it. The KV cache is F32 by default: with F32 weights (see
    :func:`~promptopt_llamacpp.modelfiles.gguf_for`) greedy chains then match transformers'
    float32 ones (an F16 cache flips a rare near-tie)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_threads: int,
        n_threads_batch: int | None = None,
        n_ctx: int = 4096,
        n_parallel: int = 8,
        n_batch: int = 512,
        n_gpu_layers: int | None = None,
        reuse_prefixes: bool = True,
        min_reuse: int = 8,
        kv_cache_type: Literal["f16", "f32", "q8_0"] = "f32",
        flash_attn: bool = False,
    ) -> None:
        llama_cpp = llama_cpp_lib()
        self.path = check_gguf(Path(model_path))
        if n_threads < 1 or (n_threads_batch is not None and n_threads_batch < 1):
            raise PromptoptError(
                f"threads must be at least 1 (got n_threads={n_threads}, "
                f"n_threads_batch={n_threads_batch})",
                hint="pass the number of cores this process owns",
            )
        max_seq = int(llama_cpp.llama_max_parallel_sequences())
        if not 1 <= n_parallel <= max_seq or n_batch < n_parallel or n_ctx < 8:
            raise PromptoptError(
                f"bad sizes n_parallel={n_parallel}, n_batch={n_batch}, n_ctx={n_ctx}",
                hint=f"use 1 <= n_parallel <= {max_seq}, n_batch >= n_parallel, n_ctx >= 8",
            )
        self.n_threads = n_threads
        self.n_threads_batch = n_threads_batch or n_threads
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.n_batch = n_batch
        self.reuse_prefixes = reuse_prefixes
        self.kv_cache_type, self.flash_attn = kv_cache_type, flash_attn
        self.min_reuse = max(1, min_reuse)
        if n_gpu_layers is None:
            n_gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        self.n_gpu_layers = n_gpu_layers
        self.stats = GenerationStats()
        #: the model, its KV cache and the sequence slots (see :mod:`promptopt_llamacpp.kvslots`)
        self.kv = SlotCache(
            self.path,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads_batch,
            n_ctx=n_ctx,
            n_parallel=n_parallel,
            n_batch=n_batch,
            n_gpu_layers=n_gpu_layers,
            kv_cache_type=kv_cache_type,
            flash_attn=flash_attn,
            stats=self.stats,
        )
        self.n_vocab = self.kv.n_vocab
        self.default_eos_ids = self.kv.eos_ids
        log.info("llama.cpp token generator: %s", self.describe())

    def describe(self) -> dict[str, Any]:
        """The settings in use (threads, sizes, offload), for logs and records."""
        return {
            "model": str(self.path),
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads_batch,
            "n_ctx_per_sequence": self.n_ctx,
            "kv_cells_per_sequence": self.kv.cells,
            "n_parallel": self.n_parallel,
            "n_batch": self.n_batch,
            "n_gpu_layers": self.n_gpu_layers,
            "reuse_prefixes": self.reuse_prefixes,
            "kv_cache_type": self.kv_cache_type,
            "flash_attn": self.flash_attn,
        }

    # ------------------------------------------------------------------ generation

    def generate_ids(
        self,
        inputs: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        eos_ids: Collection[int],
        stop_check: StopCheck | None = None,
        on_done: Callable[[int], object] | None = None,
    ) -> list[list[int]]:
        """Greedy new ids for each input, in input order (argmax, ties to the lowest id).

        A row ends at an id in ``eos_ids`` (not returned), after ``max_new_tokens`` ids, or
        after the id for which ``stop_check(row, ids_so_far)`` is True; ``on_done(k)`` is told
        whenever ``k`` more rows finished."""
        ids, _ = self._generate(inputs, None, max_new_tokens, eos_ids, stop_check, on_done)
        return ids

    def generate_scored(
        self,
        inputs: Sequence[Sequence[int]],
        spans: Sequence[tuple[int, int] | None],
        *,
        max_new_tokens: int,
        eos_ids: Collection[int],
        stop_check: StopCheck | None = None,
        on_done: Callable[[int], object] | None = None,
    ) -> tuple[list[list[int]], list[tuple[float, ...] | None]]:
        """:meth:`generate_ids`, plus for input ``i`` and span ``(start, end)`` the
        log-probability of each ``inputs[i][p]`` given ``inputs[i][:p]``, ``start <= p < end``
        (None for a None span). The ids are those :meth:`generate_ids` returns."""
        if len(spans) != len(inputs):
            raise PromptoptError(
                f"got {len(spans)} spans for {len(inputs)} inputs",
                hint="pass one (start, end) or None per input",
            )
        return self._generate(inputs, spans, max_new_tokens, eos_ids, stop_check, on_done)

    def _generate(
        self,
        inputs: Sequence[Sequence[int]],
        spans: Sequence[tuple[int, int] | None] | None,
        max_new_tokens: int,
        eos_ids: Collection[int],
        stop_check: StopCheck | None,
        on_done: Callable[[int], object] | None,
    ) -> tuple[list[list[int]], list[tuple[float, ...] | None]]:
        rows = self._check_inputs(inputs, max_new_tokens)
        wanted = self._check_spans(rows, spans)
        results: list[list[int]] = [[] for _ in rows]
        scores: list[tuple[float, ...] | None] = [None] * len(rows)
        self.stats.calls += 1
        if not rows or max_new_tokens <= 0:
            if rows and on_done is not None:
                on_done(len(rows))
            return results, scores
        self.kv.ensure_context(max(map(len, rows)) + max_new_tokens)
        order = sorted(range(len(rows)), key=rows.__getitem__) if self.reuse_prefixes else None
        waiting = deque(order if order is not None else range(len(rows)))
        ending = _Ending(frozenset(int(t) for t in eos_ids), max_new_tokens, stop_check)
        try:
            while waiting or any(slot.row is not None for slot in self.kv.slots):
                finished = 0
                admitted: list[Slot] = []
                while waiting and not self._wait_for(rows[waiting[0]], admitted):
                    slot = self._admit(waiting[0], rows, wanted)
                    if slot is None:
                        break
                    waiting.popleft()
                    admitted.append(slot)
                for slot, token in self._prefill(admitted, rows):
                    if self._advance(slot, token, ending):
                        finished += self._finish(slot, results, scores)
                running = [slot for slot in self.kv.slots if slot.row is not None]
                if running:
                    for slot, token in self._decode_running(running):
                        if self._advance(slot, token, ending):
                            finished += self._finish(slot, results, scores)
                if finished and on_done is not None:
                    on_done(finished)
        except BaseException:
            self.reset()  # the KV cache no longer matches the slots' bookkeeping
            raise
        return results, scores

    def score_spans(
        self,
        rows: Sequence[Sequence[int]],
        spans: Sequence[tuple[int, int]],
        *,
        on_done: Callable[[int], object] | None = None,
    ) -> list[SpanScore]:
        """For row ``i`` and span ``(start, end)``: at each position ``p`` in ``[start, end)``
        the log-probability of ``rows[i][p]`` given ``rows[i][:p]``, and whether it is the
        argmax there (ties: the lowest id); plus their sum.

        Each row reuses the longest computed prefix any slot holds (after ``generate_ids``, the
        slot that generated its chain) and evaluates only the rest, several rows per decode
        call. The numbers equal a from-scratch evaluation of the row (bitwise when no
        generated cell is reused, else to ~1e-6: a generation step rounds the cells it writes
        slightly apart from a prompt evaluation of the same ids). Slots keep what was
        evaluated for later calls; ``on_done(k)`` is told whenever ``k`` more rows are scored."""
        return score_spans(self, rows, spans, on_done)

    @staticmethod
    def _finish(
        slot: Slot, results: list[list[int]], scores: list[tuple[float, ...] | None]
    ) -> int:
        """Hand the slot's ids (and span scores) to its row and free the slot (its KV cells
        stay for reuse)."""
        row = slot.running
        results[row] = slot.out
        if slot.span is not None:
            scores[row] = tuple(slot.scores[p] for p in range(*slot.span))
        slot.row, slot.out, slot.pending, slot.span = None, [], [], None
        return 1

    @staticmethod
    def _check_spans(
        rows: list[list[int]], spans: Sequence[tuple[int, int] | None] | None
    ) -> list[tuple[int, int] | None]:
        """The spans that can be scored (see :meth:`generate_scored`); a one-line error for a
        span outside its input."""
        if spans is None:
            return [None] * len(rows)
        out: list[tuple[int, int] | None] = []
        for i, (row, span) in enumerate(zip(rows, spans, strict=True)):
            if span is None:
                out.append(None)
                continue
            start, end = (int(x) for x in span)
            if not 1 <= start < end <= len(row):
                raise PromptoptError(
                    f"span {i} ({start}, {end}) lies outside input {i} of {len(row)} tokens",
                    hint="give 1 <= start < end <= len(input)",
                )
            out.append((start, end))
        return out

    def _check_inputs(
        self, inputs: Sequence[Sequence[int]], max_new_tokens: int
    ) -> list[list[int]]:
        rows = [[int(t) for t in ids] for ids in inputs]
        for i, row in enumerate(rows):
            if not row:
                raise PromptoptError(
                    f"input {i} is empty (no token ids)", hint="give every input at least one token"
                )
            if len(row) + max(max_new_tokens, 0) > self.n_ctx:
                raise PromptoptError(
                    f"input {i} has {len(row)} tokens; with max_new_tokens={max_new_tokens} it "
                    f"needs {len(row) + max_new_tokens} positions, more than the context of "
                    f"{self.n_ctx} per sequence",
                    hint="raise n_ctx, or lower max_new_tokens",
                )
            bad = next((t for t in row if not 0 <= t < self.n_vocab), None)
            if bad is not None:
                raise PromptoptError(
                    f"input {i} has token id {bad}, outside the vocabulary of {self.n_vocab}",
                    hint="pass ids from this model's tokenizer",
                )
        return rows

    def _admit(
        self, row_index: int, rows: list[list[int]], spans: list[tuple[int, int] | None]
    ) -> Slot | None:
        """An idle slot holding ``rows[row_index]``'s longest computed prefix (reused in place or
        copied from another slot), the rest pending; None when every slot is busy."""
        idle = [s for s in self.kv.slots if s.row is None]
        if not idle:
            return None
        row, span = rows[row_index], spans[row_index]
        # at least two tokens are evaluated: a single-token tail would take llama.cpp's one-token
        # path, whose numbers differ from evaluating the same token inside a prompt
        limit = len(row) - 2 if len(row) >= 2 else 0
        keep, slot, held = 0, idle[0], 0
        if self.reuse_prefixes:
            slot = max(idle, key=lambda s: common_prefix_length(row, s.cells))
            held = common_prefix_length(row, slot.cells)
            keep = min(held, limit)
            source = max(self.kv.slots, key=lambda s: common_prefix_length(row, s.cells))
            shared = common_prefix_length(row, source.cells)
            if source is not slot and min(shared, limit) >= keep + self.min_reuse:
                # into the least recently used idle slot: the best-matching idle one may hold
                # a prefix that later rows want (another question's)
                slot = min(idle, key=lambda s: s.stamp)
                if slot is not source:
                    self.kv.copy(source, slot)  # done by llama.cpp before the next decode
                keep, held = min(shared, limit), shared
        saved: dict[int, float] = {}
        if span is not None:
            keep = _keep_for_span(keep, held, span, slot.scores)
            saved = {p: slot.scores[p] for p in range(*span) if p < held and p in slot.scores}
        self.kv.trim(slot, keep)
        slot.scores.update(saved)  # re-evaluated cells get the same tokens: still valid
        slot.row, slot.out, slot.pending, slot.span = row_index, [], row[keep:], span
        slot.stamp = self.kv.tick()
        self.stats.prompt_tokens += len(slot.pending)
        self.stats.reused_tokens += keep
        return slot

    def _wait_for(self, row: list[int], admitted: list[Slot]) -> bool:
        """True when a row admitted this round will hold a longer prefix of ``row`` than any
        slot holds now: ``row`` waits for the next round and copies it then."""
        if not self.reuse_prefixes or not admitted:
            return False
        now = max(common_prefix_length(row, s.cells) for s in self.kv.slots)
        later = max(common_prefix_length(row, s.cells + s.pending) for s in admitted)
        # worth a round's wait when it saves at least half of the row's evaluation
        return later - now >= max(self.min_reuse, (len(row) - now) / 2)

    def _prefill(self, slots: list[Slot], rows: list[list[int]]) -> list[tuple[Slot, int]]:
        """Evaluate the admitted slots' pending input tokens, several rows per decode call
        (padded to one length, so each row's tokens share one ubatch), none of a single token
        unless the whole input is one; each slot's next id. The logits at a span's positions
        become the slot's scores. Every row reads at least two logits rows (a lone row is
        multiplied another way), so its numbers do not depend on what shares its calls."""
        waves: list[list[_Piece]] = []
        for slot in slots:
            keep, pending = len(slot.cells), slot.pending
            scored = range(0)
            if slot.span is not None:
                start, end = slot.span
                scored = range(max(start - 1, keep), end - 1)  # positions whose logits are read
            bounds = split_range(0, len(pending), self.n_batch)
            for k, (lo, hi) in enumerate(bounds):
                reads = [p - keep for p in scored if lo <= p - keep < hi]
                if k == len(bounds) - 1:
                    reads.append(hi - 1)  # the next id's logits
                if len(reads) == 1 and hi - lo > 1:
                    reads.append(reads[0] - 1 if reads[0] > lo else lo + 1)
                piece = _Piece(
                    slot,
                    rows[slot.running],
                    pending[lo:hi],
                    keep + lo,
                    sorted(r - lo for r in reads),
                )
                if k == len(waves):
                    waves.append([])
                waves[k].append(piece)
        for wave in waves:
            lengths, starts = [len(p.tokens) for p in wave], [p.start for p in wave]
            for call in pack_calls(lengths, starts, self.n_batch, self.kv.cells):
                self._run_group([wave[i] for i in call])
        for slot in slots:
            slot.pending = []
        return [(slot, slot.next_id) for slot in slots]

    def _run_group(self, group: list[_Piece]) -> None:
        """One decode call for the pieces; reads their logits: span scores (one log-softmax
        per piece), and the next id of a row whose input ends here."""
        firsts = self.kv.decode_padded([(p.slot.seq, p.tokens, p.start, p.reads) for p in group])
        for piece, first in zip(group, firsts, strict=True):
            slot = piece.slot
            slot.cells += piece.tokens
            end = piece.start + len(piece.tokens)
            scored = []
            for j in piece.reads:
                position = piece.start + j + 1
                if position == end == len(piece.row):  # the input's last token: next id
                    slot.next_id = self._next_id(slot, first + j)
                elif slot.span is not None and slot.span[0] <= position < slot.span[1]:
                    scored.append((position, first + j))
            if scored:
                logits = np.stack([self.kv.logits(index) for _, index in scored])
                found = score_logits(logits, [piece.row[p] for p, _ in scored])
                slot.scores.update((p, lp) for (p, _), (lp, _) in zip(scored, found, strict=True))

    def _decode_running(self, running: list[Slot]) -> list[tuple[Slot, int]]:
        """One decode call for every generating row (its latest id); each row's next id.

        llama.cpp puts consecutive sequence ids in one ubatch, and multiplies a one-row ubatch
        another way (F32/F16 weights round differently there): a row left alone in its ubatch
        gets an idle neighbour as a throw-away companion, so a row's ids never depend on how
        many others run beside it. Short runs of idle ids between running rows get a
        throw-away token too: one ubatch streams the weights once, a split streams them again
        (measured: 23 rows around a gap 90 ms, 24 consecutive rows 72 ms)."""
        companions = self._companions(running)
        # a companion's logits are computed too: the output matrix also rounds one row apart
        parts = [(s.seq, s.pending, len(s.cells), [0]) for s in running]
        parts += [(c.seq, [0], len(c.cells), [0]) for c in companions]
        firsts = self.kv.decode_padded(parts)
        for companion in companions:  # drop its throw-away cell
            self.kv.drop_from(companion.seq, len(companion.cells))
        for slot in running:
            slot.cells += slot.pending
            slot.pending = []
        pairs = zip(running, firsts[: len(running)], strict=True)  # the companions come after
        return [(slot, self._next_id(slot, first)) for slot, first in pairs]

    def _companions(self, running: list[Slot]) -> list[Slot]:
        """The idle slots in gaps of at most ``MAX_FILLED_GAP`` ids between running rows, and
        an idle neighbour for every running row whose sequence-id neighbours are still idle."""
        busy = {slot.seq for slot in running}
        chosen: list[Slot] = []
        for a, b in itertools.pairwise(sorted(busy)):
            if 1 < b - a <= MAX_FILLED_GAP + 1:
                chosen += [self.kv.slots[seq] for seq in range(a + 1, b)]
        busy.update(slot.seq for slot in chosen)
        for companion in chosen:
            if len(companion.cells) >= self.kv.cells:
                self.kv.trim(companion, self.kv.cells - 1)
        for slot in running:
            if slot.seq - 1 in busy or slot.seq + 1 in busy or self.n_parallel == 1:
                continue
            seq = slot.seq + 1 if slot.seq + 1 < self.n_parallel else slot.seq - 1
            companion = self.kv.slots[seq]
            if len(companion.cells) >= self.kv.cells:
                self.kv.trim(companion, self.kv.cells - 1)
            busy.add(seq)
            chosen.append(companion)
        return chosen

    def _next_id(self, slot: Slot, index: int) -> int:
        """The slot's next id: the largest logit at batch index ``index`` (first on ties)."""
        return int(self.kv.logits(index).argmax())

    def _advance(self, slot: Slot, token: int, ending: _Ending) -> bool:
        """Record ``token`` for the slot's row; True when the row is finished."""
        if token in ending.eos:
            return True
        slot.out.append(token)
        self.stats.generated_tokens += 1
        if len(slot.out) >= ending.max_new_tokens:
            return True
        if ending.stop_check is not None and ending.stop_check(slot.running, slot.out):
            return True
        slot.pending = [token]
        return False

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget every slot's KV cells (the next inputs are evaluated from scratch)."""
        self.kv.clear()

    def close(self) -> None:
        """Free the model, its context and the batch (also done at garbage collection)."""
        self.kv.close()

    def __enter__(self) -> LlamaTokenGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _keep_for_span(keep: int, held: int, span: tuple[int, int], scores: dict[int, float]) -> int:
    """How many reused cells a row scoring ``span`` may keep: every span position either has
    a score the slot holds (its token among the ``held`` matching ones) or is predicted by a
    logits row this prefill evaluates."""
    start, end = span
    missing = next((p for p in range(start, end) if not (p < held and p in scores)), None)
    if missing is not None:
        keep = min(keep, missing - 1)
    return max(0, keep)
