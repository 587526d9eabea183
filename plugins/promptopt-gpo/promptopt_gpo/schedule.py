"""GPO's step count and cosine edit budget, computed as the authors' code does (RUCAIBox/GPO:
src/optimization/optimize.py for the steps, learning_rate_scheduler/consine.py for the budget)."""

from __future__ import annotations

import math

#: Steps per epoch count batches of this many training examples (the reference's batch size).
TRAIN_BATCH = 8
#: The reference trains for three epochs.
EPOCHS = 3


def steps_per_epoch(n_train: int, batch: int = TRAIN_BATCH) -> int:
    """floor(n / batch), plus one when the remainder is at least half a batch (at least 1)."""
    full, rest = divmod(n_train, batch)
    return max(1, full + (1 if rest >= batch / 2 else 0))


def total_steps(n_train: int, epochs: int = EPOCHS, batch: int = TRAIN_BATCH) -> int:
    """T, the run's step count: BBH (48 or 50 train) 18, GSM8K (100) 39, MMLU (20) 9."""
    return epochs * steps_per_epoch(n_train, batch)


def edit_budget(t: int, total: int, high: int = 50, low: int = 10) -> int:
    """N_t = int(low + (high - low) * 0.5 * (1 + cos(pi * t / T))), the words the optimizer may
    change at trajectory length ``t`` (1 at the first step); ``t`` past ``T`` counts as ``T``."""
    t = min(max(t, 0), total)
    return int(low + (high - low) * 0.5 * (1 + math.cos(math.pi * t / total)))


def budget_schedule(total: int, high: int = 50, low: int = 10) -> list[int]:
    """N_1 .. N_T: the budget of every step of a run whose trajectory grows by one per step."""
    return [edit_budget(t, total, high, low) for t in range(1, total + 1)]
