"""Greedy continuations of exact token ids in llama.cpp, many sequences per decode call.

Built for callers that keep gradients in torch and want their greedy generation fast (GReaTer):
inputs are token ids, nothing is tokenized. Each input runs in a sequence slot with its own KV
stream, so its numbers are those of a single-sequence run; a finished slot takes the next waiting
input (continuous batching). A slot keeps its KV cells after its input ends: the next input reuses
the longest common prefix in place, or copies it from another slot, and evaluates only the rest.
Inputs are admitted in sorted order, so inputs that share prefixes follow each other. Each
prompt is evaluated in decode calls of its own, at least two tokens at a time: llama.cpp rounds
a token evaluated alone differently, so this keeps the ids equal to a one-sequence run. llama_cpp
is imported when a model loads, never at import.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np

from promptopt.accounting import Usage
from promptopt.errors import ModelLoadError, PromptoptError
from promptopt_llamacpp.idscore import SpanScore, score_spans
from promptopt_llamacpp.modelfiles import captured_stderr, check_gguf
from promptopt_llamacpp.scoring import common_prefix_length

__all__ = ["GenerationStats", "LlamaTokenGenerator", "SpanScore", "StopCheck"]

log = logging.getLogger(__name__)

#: ``stop_check(row, ids_so_far)``: True ends that row after its latest token.
StopCheck = Callable[[int, list[int]], bool]
#: ggml tensor types for the KV cache.
KV_TYPES = {"f32": 0, "f16": 1, "q8_0": 8}
#: Non-empty once llama.cpp's backend is initialized in this process.
_BACKEND_READY: list[bool] = []


@dataclass
class GenerationStats:
    """What the generator computed (cumulative over calls), for a caller's accounting.

    ``prompt_tokens``: input (or scored row) tokens evaluated; ``reused_tokens``: those served
    from KV cells already computed (a shared prefix); ``generated_tokens``: ids returned;
    ``decode_calls``: batched ``llama_decode`` calls; ``kv_copies``: slot-to-slot prefix copies;
    ``scored_tokens``: span positions scored; ``padding_tokens``: throw-away tokens evaluated so
    that scored rows of different lengths share a decode call."""

    calls: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0
    generated_tokens: int = 0
    decode_calls: int = 0
    kv_copies: int = 0
    scored_tokens: int = 0
    padding_tokens: int = 0

    def snapshot(self) -> GenerationStats:
        """A frozen copy, to subtract from later."""
        return GenerationStats(**asdict(self))

    def since(self, before: GenerationStats) -> GenerationStats:
        """What was added after ``before`` was taken."""
        return GenerationStats(
            **{f.name: getattr(self, f.name) - getattr(before, f.name) for f in fields(self)}
        )

    def usage(self) -> Usage:
        """These counters as a :class:`~promptopt.accounting.Usage` (one decode = one pass)."""
        return Usage(
            prompt_tokens=self.prompt_tokens,
            generated_tokens=self.generated_tokens,
            forward_passes=self.decode_calls,
            requests=self.calls,
        )


@dataclass
class _Slot:
    """One sequence id (= one KV stream): the tokens its cells hold and what it runs now."""

    seq: int
    cells: list[int] = field(default_factory=list)  # tokens at positions 0.. with KV computed
    pending: list[int] = field(default_factory=list)  # tokens to evaluate next
    row: int | None = None  # the input it is generating for, None when idle
    out: list[int] = field(default_factory=list)
    stamp: int = 0  # when it last took an input (the least recently used is evicted first)


@dataclass(frozen=True)
class _Ending:
    """When a row ends: its EOS ids, the new-token budget and the caller's stop check."""

    eos: frozenset[int]
    max_new_tokens: int
    stop_check: StopCheck | None


def _llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ModelLoadError(
            "the llama.cpp token generator needs llama-cpp-python",
            hint="pip install llama-cpp-python",
        ) from None
    if not hasattr(llama_cpp, "llama_memory_seq_cp"):
        raise ModelLoadError(
            f"llama-cpp-python {llama_cpp.__version__} lacks the llama_memory_* KV functions",
            hint="upgrade llama-cpp-python (0.3.36 is known to work)",
        )
    if not _BACKEND_READY:
        logger = logging.getLogger("llama-cpp-python")  # where llama.cpp's log callback writes
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)
        llama_cpp.llama_backend_init()
        _BACKEND_READY.append(True)
    return llama_cpp


def _last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")


class _Handles:
    """The llama.cpp objects a generator owns, freed together (also at garbage collection)."""

    def __init__(self, llama_cpp: Any) -> None:
        self.lib = llama_cpp
        self.model: Any = None
        self.ctx: Any = None
        self.batch: Any = None

    def free_context(self) -> None:
        if self.ctx:
            self.lib.llama_free(self.ctx)
        self.ctx = None

    def free(self) -> None:
        if self.batch is not None:
            self.lib.llama_batch_free(self.batch)
            self.batch = None
        self.free_context()
        if self.model:
            self.lib.llama_model_free(self.model)
        self.model = None


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
        llama_cpp = self._lib = _llama_cpp()
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
        self._handles = _Handles(llama_cpp)
        self._finalizer = weakref.finalize(self, self._handles.free)
        self._load_model()
        vocab = llama_cpp.llama_model_get_vocab(self._handles.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self.default_eos_ids = frozenset(
            int(t)
            for t in (llama_cpp.llama_vocab_eos(vocab), llama_cpp.llama_vocab_eot(vocab))
            if t >= 0
        )
        self._cells = 0  # KV cells per sequence; 0 until the first call sizes the cache
        self._mem: Any = None
        self._slots = [_Slot(seq) for seq in range(n_parallel)]
        self._tick = itertools.count(1).__next__
        log.info("llama.cpp token generator: %s", self.describe())

    def _load_model(self) -> None:
        llama_cpp, handles = self._lib, self._handles
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = self.n_gpu_layers
        with captured_stderr() as captured:
            handles.model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), params)
        if not handles.model:
            raise ModelLoadError(
                f"llama.cpp could not load {str(self.path)!r}: "
                f"{_last_line(captured.text()) or 'no reason given'}",
                hint="check that the GGUF file is complete and of an architecture llama.cpp knows",
            )
        handles.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)

    def _ensure_context(self, need: int) -> None:
        """A KV cache with at least ``need`` cells per sequence (a new one drops the slots'
        cached prefixes)."""
        if need <= self._cells:
            return
        cells = 512
        while cells < need:
            cells *= 2
        cells = min(cells, -(-self.n_ctx // 256) * 256)  # llama.cpp pads contexts to 256
        llama_cpp, handles = self._lib, self._handles
        handles.free_context()
        self._cells, self._mem = 0, None
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = cells * self.n_parallel
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = self.n_parallel
        params.kv_unified = False  # one stream per sequence: single-sequence numerics
        params.n_threads, params.n_threads_batch = self.n_threads, self.n_threads_batch
        params.type_k = params.type_v = KV_TYPES[self.kv_cache_type]
        params.flash_attn_type = (
            llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
            if self.flash_attn
            else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        )
        params.no_perf = True
        with captured_stderr() as captured:
            handles.ctx = llama_cpp.llama_init_from_model(handles.model, params)
        if not handles.ctx:
            raise ModelLoadError(
                f"llama.cpp could not make a KV cache of {self.n_parallel} x {cells} tokens for "
                f"{self.path.name}: {_last_line(captured.text()) or 'out of memory?'}",
                hint="lower n_parallel, or shorten the inputs or max_new_tokens",
            )
        self._mem = llama_cpp.llama_get_memory(handles.ctx)
        self._cells = int(llama_cpp.llama_n_ctx_seq(handles.ctx))
        self._slots = [_Slot(seq) for seq in range(self.n_parallel)]
        log.info("llama.cpp token generator: KV cache of %d x %d cells", self.n_parallel, cells)

    def describe(self) -> dict[str, Any]:
        """The settings in use (threads, sizes, offload), for logs and records."""
        return {
            "model": str(self.path),
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads_batch,
            "n_ctx_per_sequence": self.n_ctx,
            "kv_cells_per_sequence": self._cells,
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
        rows = self._check_inputs(inputs, max_new_tokens)
        results: list[list[int]] = [[] for _ in rows]
        self.stats.calls += 1
        if not rows or max_new_tokens <= 0:
            if rows and on_done is not None:
                on_done(len(rows))
            return results
        self._ensure_context(max(map(len, rows)) + max_new_tokens)
        order = sorted(range(len(rows)), key=rows.__getitem__) if self.reuse_prefixes else None
        waiting = deque(order if order is not None else range(len(rows)))
        ending = _Ending(frozenset(int(t) for t in eos_ids), max_new_tokens, stop_check)
        try:
            while waiting or any(slot.row is not None for slot in self._slots):
                finished = 0
                while waiting and (slot := self._admit(waiting[0], rows)) is not None:
                    waiting.popleft()
                    if self._advance(slot, self._prefill(slot), ending):
                        finished += self._finish(slot, results)
                running = [slot for slot in self._slots if slot.row is not None]
                if running:
                    for slot, token in self._decode_running(running):
                        if self._advance(slot, token, ending):
                            finished += self._finish(slot, results)
                if finished and on_done is not None:
                    on_done(finished)
        except BaseException:
            self.reset()  # the KV cache no longer matches the slots' bookkeeping
            raise
        return results

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
    def _finish(slot: _Slot, results: list[list[int]]) -> int:
        """Hand the slot's ids to its row and free the slot (its KV cells stay for reuse)."""
        results[slot.row] = slot.out  # type: ignore[index]
        slot.row, slot.out, slot.pending = None, [], []
        return 1

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

    def _admit(self, row_index: int, rows: list[list[int]]) -> _Slot | None:
        """An idle slot holding ``rows[row_index]``'s longest computed prefix (reused in place or
        copied from another slot), the rest pending; None when every slot is busy."""
        idle = [s for s in self._slots if s.row is None]
        if not idle:
            return None
        row = rows[row_index]
        # at least two tokens are evaluated: a single-token tail would take llama.cpp's one-token
        # path, whose numbers differ from evaluating the same token inside a prompt
        limit = len(row) - 2 if len(row) >= 2 else 0
        keep, slot = 0, idle[0]
        if self.reuse_prefixes:
            slot = max(idle, key=lambda s: common_prefix_length(row, s.cells))
            keep = min(common_prefix_length(row, slot.cells), limit)
            source = max(self._slots, key=lambda s: common_prefix_length(row, s.cells))
            shared = min(common_prefix_length(row, source.cells), limit)
            if source is not slot and shared >= keep + self.min_reuse:
                self._copy(source, slot)  # done by llama.cpp before the next decode
                keep = shared
        self._trim(slot, keep)
        slot.row, slot.out, slot.pending = row_index, [], row[keep:]
        slot.stamp = self._tick()
        self.stats.prompt_tokens += len(slot.pending)
        self.stats.reused_tokens += keep
        return slot

    def _copy(self, source: _Slot, target: _Slot) -> None:
        llama_cpp = self._lib
        llama_cpp.llama_memory_seq_rm(self._mem, target.seq, -1, -1)
        # across KV streams llama.cpp copies whole streams
        llama_cpp.llama_memory_seq_cp(self._mem, source.seq, target.seq, -1, -1)
        target.cells = list(source.cells)
        self.stats.kv_copies += 1

    def _trim(self, slot: _Slot, keep: int) -> None:
        if keep >= len(slot.cells):
            return
        llama_cpp = self._lib
        if keep == 0 or not llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, keep, -1):
            llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
            keep = 0
        del slot.cells[keep:]

    def _prefill(self, slot: _Slot) -> int:
        """Evaluate the slot's pending input tokens on their own (one stream per decode call, in
        chunks of ``n_batch``, none of a single token); the next id."""
        tokens = slot.pending
        pieces = [tokens[i : i + self.n_batch] for i in range(0, len(tokens), self.n_batch)]
        if len(pieces) > 1 and len(pieces[-1]) == 1:
            pieces[-2:] = [pieces[-2][:-1], pieces[-2][-1:] + pieces[-1]]
        for piece in pieces:
            last = self._fill([(slot.seq, piece, len(slot.cells))])
            self._decode()
            slot.cells += piece
        slot.pending = []
        return self._next_id(slot, last[slot.seq])

    def _decode_running(self, running: list[_Slot]) -> list[tuple[_Slot, int]]:
        """One decode call for every generating row (its latest id); each row's next id.

        llama.cpp puts consecutive sequence ids in one ubatch, and multiplies a one-row ubatch
        another way (F32/F16 weights round differently there): a row left alone in its ubatch
        gets an idle neighbour as a throw-away companion, so a row's ids never depend on how
        many others run beside it."""
        running = sorted(running, key=lambda s: s.seq)
        companions = self._companions(running)
        parts = [(s, s.pending) for s in running] + [(c, [0]) for c in companions]
        parts.sort(key=lambda part: part[0].seq)
        # a companion's logits are computed too: the output matrix also rounds one row apart
        index = self._fill([(slot.seq, tokens, len(slot.cells)) for slot, tokens in parts])
        self._decode()
        for companion in companions:  # drop its throw-away cell
            self._lib.llama_memory_seq_rm(self._mem, companion.seq, len(companion.cells), -1)
        for slot in running:
            slot.cells += slot.pending
            slot.pending = []
        return [(slot, self._next_id(slot, index[slot.seq])) for slot in running]

    def _companions(self, running: list[_Slot]) -> list[_Slot]:
        """An idle neighbour for every running row whose sequence-id neighbours are idle."""
        busy = {slot.seq for slot in running}
        chosen: list[_Slot] = []
        for slot in running:
            if slot.seq - 1 in busy or slot.seq + 1 in busy or self.n_parallel == 1:
                continue
            seq = slot.seq + 1 if slot.seq + 1 < self.n_parallel else slot.seq - 1
            companion = self._slots[seq]
            if len(companion.cells) >= self._cells:
                self._trim(companion, self._cells - 1)
            busy.add(seq)
            chosen.append(companion)
        return chosen

    def _fill(self, parts: list[tuple[int, list[int], int]]) -> dict[int, int]:
        """Load (sequence, tokens, first position) parts into the batch, logits for each last
        token; the batch index of each sequence's last token."""
        batch, n, last = self._handles.batch, 0, {}
        for seq, tokens, start in parts:
            for j, token in enumerate(tokens):
                batch.token[n] = token
                batch.pos[n] = start + j
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq
                batch.logits[n] = j == len(tokens) - 1
                n += 1
            last[seq] = n - 1
        batch.n_tokens = n
        return last

    def _decode(self) -> None:
        status = int(self._lib.llama_decode(self._handles.ctx, self._handles.batch))
        self.stats.decode_calls += 1
        if status != 0:
            raise PromptoptError(
                f"llama_decode failed with status {status} on {self._handles.batch.n_tokens} "
                "tokens",
                hint="lower n_parallel or n_batch, or raise n_ctx",
            )

    def _logits(self, index: int) -> np.ndarray:
        """The logits of the batch's ``index``-th token (valid until the next decode call)."""
        pointer = self._lib.llama_get_logits_ith(self._handles.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def _next_id(self, slot: _Slot, index: int) -> int:
        """The slot's next id: the largest logit at batch index ``index`` (first on ties)."""
        return int(self._logits(index).argmax())

    def _advance(self, slot: _Slot, token: int, ending: _Ending) -> bool:
        """Record ``token`` for the slot's row; True when the row is finished."""
        if token in ending.eos:
            return True
        slot.out.append(token)
        self.stats.generated_tokens += 1
        if len(slot.out) >= ending.max_new_tokens:
            return True
        if ending.stop_check is not None and ending.stop_check(slot.row, slot.out):  # type: ignore[arg-type]
            return True
        slot.pending = [token]
        return False

    # ------------------------------------------------------------------ lifecycle

    def reset(self) -> None:
        """Forget every slot's KV cells (the next inputs are evaluated from scratch)."""
        if self._mem is not None:
            self._lib.llama_memory_clear(self._mem, True)
        self._slots = [_Slot(seq) for seq in range(self.n_parallel)]

    def close(self) -> None:
        """Free the model, its context and the batch (also done at garbage collection)."""
        self._finalizer()

    def __enter__(self) -> LlamaTokenGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
