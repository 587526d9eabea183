"""Sequence slots and their KV-cache cells in one llama.cpp context, for the token generator
(:mod:`promptopt_llamacpp.idgen`) and its span scoring (:mod:`promptopt_llamacpp.idscore`).

Each slot is a sequence id with its own KV stream (so its numbers are those of a
single-sequence run) and remembers which tokens its cells hold, so that a later input can reuse
a computed prefix in place or copy it from another slot. :class:`SlotCache` owns the model, the
context and the batch; it sizes the cache, copies and trims cells, and runs decode calls whose
rows are padded to one length. Which rows run when is the caller's business.
llama_cpp is imported when a model loads, never at import.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from promptopt.accounting import Counters, Usage
from promptopt.errors import ModelLoadError, PromptoptError
from promptopt_llamacpp.modelfiles import captured_stderr

log = logging.getLogger(__name__)

#: ggml tensor types for the KV cache.
KV_TYPES = {"f32": 0, "f16": 1, "q8_0": 8}
#: Non-empty once llama.cpp's backend is initialized in this process.
_BACKEND_READY: list[bool] = []
#: One row of a decode call: ``(sequence, tokens, first position, indices whose logits are
#: read)``.
Part = tuple[int, list[int], int, list[int]]


@dataclass
class GenerationStats(Counters):
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

    def usage(self) -> Usage:
        """These counters as a :class:`~promptopt.accounting.Usage` (one decode = one pass)."""
        return Usage(
            prompt_tokens=self.prompt_tokens,
            generated_tokens=self.generated_tokens,
            forward_passes=self.decode_calls,
            requests=self.calls,
        )


@dataclass
class Slot:
    """One sequence id (= one KV stream): the tokens its cells hold and what it runs now."""

    seq: int
    cells: list[int] = field(default_factory=list)  # tokens at positions 0.. with KV computed
    pending: list[int] = field(default_factory=list)  # tokens to evaluate next
    row: int | None = None  # the input it is generating for, None when idle
    out: list[int] = field(default_factory=list)
    stamp: int = 0  # when it last took an input (the least recently used is evicted first)
    #: log-probability of ``cells[p]`` given ``cells[:p]``, for the positions a span asked for
    scores: dict[int, float] = field(default_factory=dict)
    span: tuple[int, int] | None = None  # the input positions to score, for the running row
    next_id: int = -1  # the greedy id after the input, once its prefill is done

    @property
    def running(self) -> int:
        """The input this slot generates for; only asked of a slot that runs one."""
        if self.row is None:
            raise RuntimeError(f"slot {self.seq} runs no input")
        return self.row


def llama_cpp_lib() -> Any:
    """llama_cpp with the KV-memory functions the slots need, its backend initialized once
    (and its log quiet unless configured); a one-line error when it is missing or too old."""
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
    """The llama.cpp objects a slot cache owns, freed together (also at garbage collection)."""

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


class SlotCache:
    """A GGUF model in llama.cpp and a context with ``n_parallel`` sequence slots, one KV stream
    each. The cache is sized by what the inputs need (powers of two from 512 cells per
    sequence, at most ``n_ctx``) and made again when longer inputs come. Decode calls,
    padding and copies are counted in ``stats``."""

    def __init__(
        self,
        path: Path,
        *,
        n_threads: int,
        n_threads_batch: int,
        n_ctx: int,
        n_parallel: int,
        n_batch: int,
        n_gpu_layers: int,
        kv_cache_type: Literal["f16", "f32", "q8_0"],
        flash_attn: bool,
        stats: GenerationStats,
    ) -> None:
        llama_cpp = self.lib = llama_cpp_lib()
        self.path = path
        self.n_threads, self.n_threads_batch = n_threads, n_threads_batch
        self.n_ctx, self.n_parallel, self.n_batch = n_ctx, n_parallel, n_batch
        self.n_gpu_layers = n_gpu_layers
        self.kv_cache_type, self.flash_attn = kv_cache_type, flash_attn
        self.stats = stats
        self._handles = _Handles(llama_cpp)
        self._finalizer = weakref.finalize(self, self._handles.free)
        self._load_model()
        vocab = llama_cpp.llama_model_get_vocab(self._handles.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        #: the model's end-of-generation ids (EOS and EOT, where it has them)
        self.eos_ids = frozenset(
            int(t)
            for t in (llama_cpp.llama_vocab_eos(vocab), llama_cpp.llama_vocab_eot(vocab))
            if t >= 0
        )
        self.cells = 0  # KV cells per sequence; 0 until the first call sizes the cache
        self._mem: Any = None
        self.slots = [Slot(seq) for seq in range(n_parallel)]
        #: increasing stamps: when a slot took an input
        self.tick = itertools.count(1).__next__

    def _load_model(self) -> None:
        llama_cpp, handles = self.lib, self._handles
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

    def ensure_context(self, need: int) -> None:
        """A KV cache with at least ``need`` cells per sequence (a new one drops the slots'
        cached prefixes: :attr:`slots` is a new list then)."""
        if need <= self.cells:
            return
        cells = 512
        while cells < need:
            cells *= 2
        cells = min(cells, -(-self.n_ctx // 256) * 256)  # llama.cpp pads contexts to 256
        llama_cpp, handles = self.lib, self._handles
        handles.free_context()
        self.cells, self._mem = 0, None
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
        self.cells = int(llama_cpp.llama_n_ctx_seq(handles.ctx))
        self.slots = [Slot(seq) for seq in range(self.n_parallel)]
        log.info("llama.cpp token generator: KV cache of %d x %d cells", self.n_parallel, cells)

    # ------------------------------------------------------------------ cells

    def copy(self, source: Slot, target: Slot) -> None:
        """Make ``target`` hold ``source``'s cells (and their scores); done by llama.cpp
        before the next decode."""
        llama_cpp = self.lib
        llama_cpp.llama_memory_seq_rm(self._mem, target.seq, -1, -1)
        # across KV streams llama.cpp copies whole streams
        llama_cpp.llama_memory_seq_cp(self._mem, source.seq, target.seq, -1, -1)
        target.cells = list(source.cells)
        target.scores = dict(source.scores)
        self.stats.kv_copies += 1

    def trim(self, slot: Slot, keep: int) -> None:
        """Keep the slot's first ``keep`` cells (all of them dropped where llama.cpp cannot
        drop a tail)."""
        if keep >= len(slot.cells):
            return
        llama_cpp = self.lib
        if keep == 0 or not llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, keep, -1):
            llama_cpp.llama_memory_seq_rm(self._mem, slot.seq, -1, -1)
            keep = 0
        del slot.cells[keep:]
        slot.scores = {p: lp for p, lp in slot.scores.items() if p < keep}

    def drop_from(self, seq: int, position: int) -> None:
        """Drop sequence ``seq``'s KV cells from ``position`` on (throw-away tokens)."""
        self.lib.llama_memory_seq_rm(self._mem, seq, position, -1)

    def clear(self) -> None:
        """Forget every slot's KV cells."""
        if self._mem is not None:
            self.lib.llama_memory_clear(self._mem, True)
        self.slots = [Slot(seq) for seq in range(self.n_parallel)]

    # ------------------------------------------------------------------ decode calls

    def decode_padded(self, parts: list[Part]) -> list[int]:
        """One decode call for ``(sequence, tokens, first position, reads)`` parts: in
        sequence-id order (llama.cpp puts consecutive ids in one ubatch), each padded at its end
        to the longest with throw-away copies of its last token (so its tokens share one ubatch
        under the equal split), logits at the ``reads`` indices; the padding's cells are dropped
        after. The batch index of each part's first token, in the order given."""
        width = max(len(tokens) for _, tokens, _, _ in parts)
        batch, n, firsts = self._handles.batch, 0, [0] * len(parts)
        for i in sorted(range(len(parts)), key=lambda i: parts[i][0]):
            seq, tokens, start, reads = parts[i]
            firsts[i] = n
            wanted = set(reads)
            for j, token in enumerate(tokens + [tokens[-1]] * (width - len(tokens))):
                batch.token[n] = token
                batch.pos[n] = start + j
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = seq
                batch.logits[n] = j in wanted
                n += 1
            self.stats.padding_tokens += width - len(tokens)
        batch.n_tokens = n
        self.decode()
        for seq, tokens, start, _ in parts:
            if len(tokens) < width:
                self.drop_from(seq, start + len(tokens))
        return firsts

    def decode(self) -> None:
        """Run ``llama_decode`` on the batch as filled."""
        status = int(self.lib.llama_decode(self._handles.ctx, self._handles.batch))
        self.stats.decode_calls += 1
        if status != 0:
            raise PromptoptError(
                f"llama_decode failed with status {status} on {self._handles.batch.n_tokens} "
                "tokens",
                hint="lower n_parallel or n_batch, or raise n_ctx",
            )

    def logits(self, index: int) -> np.ndarray:
        """The logits of the batch's ``index``-th token (valid until the next decode call)."""
        pointer = self.lib.llama_get_logits_ith(self._handles.ctx, index)
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    def close(self) -> None:
        """Free the model, its context and the batch (also done at garbage collection)."""
        self._finalizer()
