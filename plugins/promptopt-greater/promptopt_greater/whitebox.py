"""GReaTer's access to the model: the core white-box contract
(:class:`promptopt.whitebox.WhiteBoxBackend`), the per-backend prefix KV cache, and an
eval-mode/frozen-weights guard for every forward and backward pass."""

from __future__ import annotations

import weakref
from typing import Any

from promptopt.components import Backend
from promptopt.whitebox import WhiteBoxBackend, require_white_box

#: The white-box backend GReaTer works on (the core contract, under a short name).
WhiteBox = WhiteBoxBackend


def white_box(backend: Backend) -> WhiteBoxBackend:
    """``backend`` as a white-box backend, or a one-line error naming GReaTer's need."""
    return require_white_box(backend, "the greater method")


_PREFIX_CACHES: weakref.WeakKeyDictionary[Backend, Any] = weakref.WeakKeyDictionary()


def prefix_cache(wb: WhiteBoxBackend) -> Any:
    """The KV cache of fixed row heads, shared by every component using this backend."""
    cache = _PREFIX_CACHES.get(wb)
    if cache is None:
        from promptopt_greater.prefix import PrefixCache

        cache = PrefixCache(
            wb.model, on_forward=lambda n: wb.usage.record(forward_passes=1, prompt_tokens=n)
        )
        _PREFIX_CACHES[wb] = cache
    return cache


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
