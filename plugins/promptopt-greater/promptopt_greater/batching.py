"""Run work in batches and halve the batch size when the accelerator runs out of memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class BatchSize:
    """A batch size that shrinks after an out-of-memory error and stays shrunk for later calls."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))

    def shrink(self) -> bool:
        """Halve the size; False when it is already 1 (the error must propagate)."""
        if self.size <= 1:
            return False
        self.size = max(1, self.size // 2)
        return True


def is_oom(error: BaseException) -> bool:
    """True for CUDA/MPS/CPU allocation failures raised by torch."""
    name = type(error).__name__
    return name == "OutOfMemoryError" or (
        isinstance(error, RuntimeError) and "out of memory" in str(error).lower()
    )


def _free_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_batched(
    fn: Callable[[Sequence[T]], list[R]],
    items: Sequence[T],
    batch: BatchSize,
    on_done: Callable[[int], object] | None = None,
) -> list[R]:
    """``fn`` over consecutive chunks of ``items``; results concatenated in order.

    A chunk that fails with out-of-memory is retried with half the batch size."""
    results: list[R] = []
    start = 0
    while start < len(items):
        chunk = items[start : start + batch.size]
        try:
            out = fn(chunk)
        except Exception as error:  # only OOM is handled; the rest is re-raised
            if is_oom(error) and batch.shrink():
                _free_memory()
                continue
            raise
        results.extend(out)
        start += len(chunk)
        if on_done is not None:
            on_done(len(chunk))
    return results
