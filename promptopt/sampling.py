"""Seeds for sampled generation that do not depend on batching: sample ``j`` of input ``i``
always gets the same seed, whichever backend, batch size or resume point produced it."""

from __future__ import annotations

import hashlib


def sample_seed(seed: int, index: int, sample: int) -> int:
    """The 31-bit seed of sample ``sample`` of input ``index`` in a call made with ``seed``."""
    digest = hashlib.sha256(f"promptopt-sample:{seed}:{index}:{sample}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def is_greedy(temperature: float) -> bool:
    """Temperature 0 means greedy decoding (argmax), which needs no seed."""
    return temperature <= 0.0
