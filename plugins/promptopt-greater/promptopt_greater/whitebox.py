"""A thin view of a white-box backend: the model, its tokenizer and the chat template parts.

GReaTer builds exact token-id sequences, so it needs the raw model and tokenizer. This adapter
reads them from the backend (``promptopt_hf``'s ``HFBackend`` exposes ``model``, ``tokenizer``,
``encode``, ``decode``, ``chat_parts``) and falls back to the tokenizer where a method is missing.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from promptopt.components import Backend
from promptopt.errors import PromptoptError

_SENTINEL = "\x00PROMPTOPT_USER\x00"


class WhiteBox:
    """Model, tokenizer and template access for one backend (cached per backend object)."""

    def __init__(self, backend: Backend) -> None:
        model = getattr(backend, "model", None)
        tokenizer = getattr(backend, "tokenizer", None)
        if model is None or tokenizer is None:
            raise PromptoptError(
                f"the greater method needs a white-box backend with a model and tokenizer, "
                f"got backend {backend.name!r}",
                hint="use --backend hf",
            )
        self.backend = backend
        self.model: Any = model
        self.tokenizer: Any = tokenizer

    # ----------------------------------------------------------------- device and weights

    @property
    def device(self) -> Any:
        device = getattr(self.backend, "device", None)
        return device if device is not None else next(self.model.parameters()).device

    @property
    def embedding_matrix(self) -> Any:
        """Input embedding weights ``[V, d]`` (frozen)."""
        matrix = getattr(self.backend, "embedding_matrix", None)
        return matrix if matrix is not None else self.model.get_input_embeddings().weight

    @property
    def input_embeddings(self) -> Any:
        """The model's input-embedding module (ids -> vectors, including any scaling the model
        applies there, e.g. Gemma's sqrt(hidden size))."""
        return self.model.get_input_embeddings()

    @property
    def vocab_size(self) -> int:
        return int(self.embedding_matrix.shape[0])

    @cached_property
    def prefix_cache(self) -> Any:
        """The KV cache of fixed row heads, shared by every component using this backend."""
        from promptopt_greater.prefix import PrefixCache

        return PrefixCache(self.model)

    # ----------------------------------------------------------------- text <-> ids

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` without added special tokens (special-token text is parsed)."""
        encode = getattr(self.backend, "encode", None)
        if encode is not None:
            return list(encode(text))
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_input(self, text: str) -> list[int]:
        """Ids of a text that starts a model input (BOS added where the backend adds one)."""
        encode_input = getattr(self.backend, "encode_input", None)
        if encode_input is not None:
            return list(encode_input(text))
        return self.encode(text)

    def decode(self, ids: Sequence[int], *, skip_special_tokens: bool = False) -> str:
        if skip_special_tokens:
            return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))
        decode = getattr(self.backend, "decode", None)
        if decode is not None:
            return str(decode(list(ids)))
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False))

    @cached_property
    def chat_parts(self) -> tuple[str, str]:
        """Template text before and after the user content (generation prompt included)."""
        parts = getattr(self.backend, "chat_parts", None)
        if parts is not None:
            before, after = parts(_SENTINEL)
            return str(before), str(after)
        full = self.backend.chat(_SENTINEL)
        if full.count(_SENTINEL) != 1:
            raise PromptoptError(
                "cannot locate the user content in the backend's chat template",
                hint="use a backend whose chat template places the user message once",
            )
        before, after = full.split(_SENTINEL)
        return before, after

    # ----------------------------------------------------------------- special tokens

    @cached_property
    def special_ids(self) -> frozenset[int]:
        """Ids that must never appear in a prompt: BOS/EOS/PAD/UNK and added special tokens."""
        ids = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
            value = getattr(self.tokenizer, name, None)
            if isinstance(value, int):
                ids.add(value)
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        ids.update(int(i) for i, tok in added.items() if getattr(tok, "special", True))
        return frozenset(ids)

    @cached_property
    def eos_ids(self) -> frozenset[int]:
        """Ids that end a generation (tokenizer EOS and the model's generation config)."""
        ids: set[int] = set()
        value = getattr(self.tokenizer, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        config = getattr(self.model, "generation_config", None)
        eos = getattr(config, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif isinstance(eos, (list, tuple)):
            ids.update(int(i) for i in eos)
        return frozenset(ids)

    @cached_property
    def pad_id(self) -> int:
        pad = getattr(self.tokenizer, "pad_token_id", None)
        if isinstance(pad, int):
            return pad
        return min(self.eos_ids) if self.eos_ids else 0


_CACHE: weakref.WeakKeyDictionary[Backend, WhiteBox] = weakref.WeakKeyDictionary()


def white_box(backend: Backend) -> WhiteBox:
    """The :class:`WhiteBox` view of ``backend`` (built once per backend object)."""
    view = _CACHE.get(backend)
    if view is None:
        view = WhiteBox(backend)
        _CACHE[backend] = view
    return view


class eval_mode:
    """Run the model in eval mode with frozen weights (restored afterwards)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.training = bool(self.model.training)
        self.model.eval()
        self.frozen = [p for p in self.model.parameters() if p.requires_grad]
        for param in self.frozen:
            param.requires_grad_(False)

    def __exit__(self, *exc: object) -> None:
        for param in self.frozen:
            param.requires_grad_(True)
        self.model.train(self.training)
