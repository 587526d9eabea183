"""KV cache of the fixed per-example prefix (template + question + "Use"), reused every step.

The head of a row never changes during a run, so its keys and values are computed once and
spliced, left-padded, into every later forward (proposal, gradient, exact evaluation). The last
head token is always recomputed, so logits predicting prompt position 0 stay available.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch

from promptopt.whitebox import output_cache

KV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [1, heads, T, dim]


def supports_prefix_cache(model: Any) -> bool:
    """Only plain full-attention decoders (no sliding windows) use the cache."""
    config = (
        model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    )
    layer_types = getattr(config, "layer_types", None)
    if layer_types and any(t != "full_attention" for t in layer_types):
        return False
    return not getattr(config, "sliding_window", None)


class PrefixCache:
    """Keys/values of ``head[:-1]`` per distinct head, on the model's device (LRU-bounded)."""

    def __init__(
        self,
        model: Any,
        max_entries: int = 512,
        on_forward: Callable[[int], object] | None = None,
    ) -> None:
        self.model = model
        self.max_entries = max_entries
        self.on_forward = on_forward  # called with the tokens read, for compute accounting
        self._entries: OrderedDict[tuple[int, ...], KV] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every cached head."""
        self._entries.clear()

    @torch.no_grad()
    def _fill(self, heads: Sequence[tuple[int, ...]], device: Any, batch_size: int) -> None:
        missing = [h for h in dict.fromkeys(heads) if h not in self._entries and len(h) > 1]
        for start in range(0, len(missing), max(1, batch_size)):
            chunk = missing[start : start + batch_size]
            width = max(len(h) - 1 for h in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for i, head in enumerate(chunk):
                ids[i, : len(head) - 1] = torch.tensor(head[:-1])
                mask[i, : len(head) - 1] = 1
            decoder = self.model.get_decoder()
            out = decoder(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=True)
            if self.on_forward is not None:
                self.on_forward(int(mask.sum()))
            layers = _cache_layers(output_cache(out))
            for i, head in enumerate(chunk):
                n = len(head) - 1
                self._entries[head] = [
                    (k[i : i + 1, :, :n].clone(), v[i : i + 1, :, :n].clone()) for k, v in layers
                ]
        for head in heads:
            if head in self._entries:
                self._entries.move_to_end(head)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def batch(
        self, heads: Sequence[tuple[int, ...]], device: Any, batch_size: int = 8
    ) -> tuple[Any, torch.Tensor, list[int]]:
        """``(past_key_values, past_mask [B, P], cut per row)``: the cached heads left-padded to
        one width ``P``; row ``b`` continues from full-sequence position ``cut[b]``."""
        from transformers import DynamicCache

        self._fill(heads, device, batch_size)
        cuts = [max(len(h) - 1, 0) for h in heads]
        width = max(cuts)
        mask = torch.zeros((len(heads), width), dtype=torch.long)
        for b, cut in enumerate(cuts):
            if cut:
                mask[b, width - cut :] = 1
        if width == 0:
            return None, mask, cuts
        reference = next(iter(self._entries[h] for h in heads if len(h) > 1))
        layers = []
        for layer, (k0, v0) in enumerate(reference):
            keys = k0.new_zeros((len(heads), k0.shape[1], width, k0.shape[3]))
            values = v0.new_zeros((len(heads), v0.shape[1], width, v0.shape[3]))
            for b, head in enumerate(heads):
                if cuts[b]:
                    k, v = self._entries[head][layer]
                    keys[b, :, width - cuts[b] :] = k[0]
                    values[b, :, width - cuts[b] :] = v[0]
            layers.append((keys, values))
        return DynamicCache(layers), mask, cuts


def _cache_layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return [(k, v) for k, v, *_ in cache]
