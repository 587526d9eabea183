"""A character n-gram language model over UTF-8 bytes, in pure Python.

Symbols are the 256 byte values and ``END``, the end of a document. The probability of the
next symbol after the last ``k`` bytes mixes what followed those bytes in the corpus with the
estimate from ``k - 1`` bytes (interpolated Witten-Bell smoothing), down to a uniform
distribution: every byte string has a finite log-probability, and unseen text is just unlikely.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence

END = 256
SYMBOLS = 257

#: What the model learns when ``--model`` names no file: a few chats in the default template.
BUILTIN_CORPUS = """\
### User:
Is 23 + 48 greater than 70? Answer Yes or No. Let's think step by step.
### Assistant:
23 + 48 = 71, and 71 is greater than 70. Therefore, the final answer is $ Yes

### User:
Is 12 + 15 greater than 30? Answer Yes or No. Let's think step by step.
### Assistant:
12 + 15 = 27, and 27 is not greater than 30. Therefore, the final answer is $ No

### User:
not ( True ) and ( False ) is. Let's think step by step.
### Assistant:
not ( True ) is False. False and False is False. So the answer is False.

### User:
True or not ( False ) is. Think step by step.
### Assistant:
not ( False ) is True. True or True is True. So the answer is True.

### User:
If you follow these instructions, do you return to the starting point? Take 2 steps. Turn \
around. Take 2 steps. Options: - Yes - No. Let's think step by step.
### Assistant:
We walk 2 steps, turn around and walk 2 steps back. We are where we started. So the answer is Yes.

### User:
Is 9 + 9 greater than 17? Answer Yes or No. Check each step.
### Assistant:
9 + 9 = 18, and 18 is greater than 17. Therefore, the final answer is $ Yes
"""


def documents(text: str) -> list[str]:
    """The documents of a corpus file: blocks of text separated by blank lines."""
    blocks = [block.strip("\n") for block in text.replace("\r\n", "\n").split("\n\n")]
    return [block for block in blocks if block.strip()]


class CharNgram:
    """Counts of the symbols that follow every context of up to ``order - 1`` bytes."""

    def __init__(self, order: int) -> None:
        self.order = order
        #: counts[k][context] = {symbol: count} for the contexts of k bytes
        self.counts: list[dict[bytes, dict[int, int]]] = [{} for _ in range(order)]
        self._cache: dict[bytes, list[float]] = {}

    @classmethod
    def train(cls, texts: Iterable[str], order: int) -> CharNgram:
        model = cls(order)
        for text in texts:
            data = text.encode("utf-8")
            for i, symbol in enumerate([*data, END]):
                for k in range(min(order - 1, i) + 1):
                    followers = model.counts[k].setdefault(data[i - k : i], {})
                    followers[symbol] = followers.get(symbol, 0) + 1
        return model

    def distribution(self, history: bytes) -> list[float]:
        """P(symbol | the last ``order - 1`` bytes of ``history``) for every symbol."""
        context = history[len(history) - min(len(history), self.order - 1) :]
        probs = self._cache.get(context)
        if probs is None:
            probs = [1.0 / SYMBOLS] * SYMBOLS
            for k in range(len(context) + 1):
                followers = self.counts[k].get(context[len(context) - k :])
                if not followers:  # a longer context was never seen either
                    break
                total, kinds = sum(followers.values()), len(followers)
                probs = [
                    (followers.get(s, 0) + kinds * p) / (total + kinds) for s, p in enumerate(probs)
                ]
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[context] = probs
        return probs

    def logprob(self, history: bytes, continuation: bytes) -> float:
        """log P(``continuation`` | ``history``), summed over its bytes (0.0 for none)."""
        data = history + continuation
        start = len(history)
        return sum(math.log(self.distribution(data[:i])[data[i]]) for i in range(start, len(data)))

    def generate(
        self,
        history: bytes,
        max_new: int,
        *,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        top_p: float = 1.0,
        rng: random.Random | None = None,
    ) -> tuple[str, int]:
        """Up to ``max_new`` bytes after ``history`` (greedy, or sampled with ``rng``), ending at
        END or before the first stop string; (text, symbols drawn)."""
        out = bytearray()
        drawn = 0
        while len(out) < max_new:
            probs = self.distribution(history + out)
            drawn += 1
            symbol = argmax(probs) if rng is None else sample(probs, temperature, top_p, rng)
            if symbol == END:
                break
            out.append(symbol)
            text = out.decode("utf-8", errors="ignore")
            cut = min((text.find(s) for s in stop if s and s in text), default=-1)
            if cut >= 0:
                return text[:cut], drawn
        return out.decode("utf-8", errors="ignore"), drawn


def argmax(probs: Sequence[float]) -> int:
    """The most likely symbol; the lowest one on a tie."""
    return max(range(len(probs)), key=lambda s: (probs[s], -s))


def sample(probs: Sequence[float], temperature: float, top_p: float, rng: random.Random) -> int:
    """A symbol drawn from ``probs`` sharpened by ``temperature``, within the smallest set of
    most likely symbols holding ``top_p`` of the mass (nucleus sampling)."""
    weights = [p ** (1.0 / temperature) for p in probs]
    total = sum(weights)
    ranked = sorted(range(len(weights)), key=lambda s: -weights[s])
    kept, mass = [], 0.0
    for s in ranked:
        kept.append(s)
        mass += weights[s] / total
        if mass >= top_p:
            break
    point = rng.random() * sum(weights[s] for s in kept)
    for s in kept:
        point -= weights[s]
        if point <= 0:
            return s
    return kept[-1]
