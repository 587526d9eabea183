"""The white-box backend contract: a transformers causal LM with its tokenizer, exact token ids
in and out, and the chat template split around the user text. Gradient methods (GReaTer) need
exactly this; a backend that subclasses :class:`WhiteBoxBackend` promises all of it.

Also small helpers to call such a model the same way across transformers releases (the KV-cache
argument was renamed from ``past_key_values`` to ``cache``).
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.components import Backend, OptionsT

if TYPE_CHECKING:
    from promptopt.progress import Progress


class WhiteBoxBackend(Backend[OptionsT]):
    """A backend whose model can be run on token ids and differentiated.

    ``model`` is a transformers causal LM (``forward(input_ids | inputs_embeds, attention_mask,
    position_ids, <cache>, use_cache, logits_to_keep)``) and ``tokenizer`` its tokenizer."""

    model: Any
    tokenizer: Any
    device: Any

    # ------------------------------------------------------------------ text <-> ids

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added. The chat template's own markup
        (from :meth:`chat` / :meth:`chat_parts`) is parsed into control tokens; control-token
        text anywhere else (a question, a prompt, model output) is plain text."""

    @abstractmethod
    def encode_input(self, text: str) -> list[int]:
        """Ids of a text that starts a model input (BOS put in front where the model wants it)."""

    @abstractmethod
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        """Text of ``ids``."""

    @abstractmethod
    def chat_parts(self, user: str | None = None) -> tuple[str, str]:
        """(text before, text after) the user content in :meth:`chat`'s output, so that
        ``chat(u) == before + u + after`` and token methods can splice ids."""

    @abstractmethod
    def generate_ids(
        self,
        inputs: Sequence[str | Sequence[int]],
        *,
        max_new_tokens: int,
        stop: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> list[list[int]]:
        """Greedy new token ids (EOS excluded) for each input, given as text or exact ids."""

    # ------------------------------------------------------------------ vocabulary facts

    @property
    @abstractmethod
    def eos_ids(self) -> frozenset[int]:
        """Ids that end a generation."""

    @property
    @abstractmethod
    def pad_id(self) -> int:
        """The id used to pad batches (masked out)."""

    @property
    @abstractmethod
    def special_ids(self) -> frozenset[int]:
        """Ids that never belong in a prompt: BOS/EOS/PAD/UNK and added special tokens."""

    def weights_file(self) -> Path | None:
        """The one file the weights were loaded from (a GGUF), if any: another runtime
        (llama.cpp) can then run the very same weights."""
        return None

    def weights_folder(self) -> Path | None:
        """The local folder holding the loaded weights (config + safetensors), if any."""
        return None

    @property
    def context_length(self) -> int | None:
        """The most tokens the model reads at once (None when the model does not say)."""
        value = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        return int(value) if isinstance(value, int) and value > 0 else None

    @property
    def vocab_size(self) -> int:
        """Rows of the input-embedding matrix."""
        return int(self.model.get_input_embeddings().weight.shape[0])

    @property
    def input_embeddings(self) -> Any:
        """The model's input-embedding module (ids -> vectors, with any scaling the model applies
        there, e.g. Gemma's sqrt(hidden size))."""
        return self.model.get_input_embeddings()


def require_white_box(backend: Backend, method: str) -> WhiteBoxBackend:
    """``backend`` as a :class:`WhiteBoxBackend`, or a one-line error naming ``method``."""
    if not isinstance(backend, WhiteBoxBackend):
        from promptopt.errors import PromptoptError

        raise PromptoptError(
            f"{method} needs a white-box backend (logits and gradients), got {backend.name!r}",
            hint="use --backend hf",
        )
    return backend


# --------------------------------------------------------------------------- calling the model


@lru_cache(maxsize=64)
def _forward_params(forward: Any) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(forward).parameters)
    except (TypeError, ValueError):
        return frozenset()


def cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """The KV-cache keyword for ``model.forward``: ``cache`` (transformers >= 5.24) or
    ``past_key_values`` (earlier releases)."""
    params = _forward_params(type(model).forward)
    return {"cache": cache} if "cache" in params else {"past_key_values": cache}


def output_cache(output: Any) -> Any:
    """The KV cache a forward returned, whichever name the release gives it."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)
