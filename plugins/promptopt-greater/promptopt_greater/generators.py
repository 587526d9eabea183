"""Where GReaTer's greedy generation runs: in torch on the white-box model itself, or in llama.cpp
on the same weights (the GGUF the model came from, or an export of it), while proposals and
gradients stay in torch. On a CPU llama.cpp generates several times faster; its chains can differ
from torch's in rare tokens, so the first call cross-checks a few chains and records the share
that agree token for token.

llama.cpp is reached through the core's token-generator interface (:mod:`promptopt.tokengen`),
which the llamacpp plugin provides under the name ``llamacpp``; nothing here imports it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from promptopt.errors import PromptoptError
from promptopt.tokengen import TokenGeneratorProvider, token_generator_provider
from promptopt_greater.batching import BatchSize
from promptopt_greater.generation import greedy_generate
from promptopt_greater.whitebox import WhiteBox

if TYPE_CHECKING:
    from promptopt_greater.layout import Row
    from promptopt_greater.tensors import ExactScore

log = logging.getLogger("promptopt.greater")


#: ``(start, end)`` positions of an input's prompt tokens, or None (no prompt).
Span = tuple[int, int] | None


class Generator(Protocol):
    """Greedy continuations of exact token ids (EOS excluded), in input order; and, where the
    runtime can, the exact check of rows whose chains it just generated and the NLL of the
    prompt spans it was given."""

    name: str

    def score(self, rows: Sequence[Row]) -> list[ExactScore] | None: ...

    def prompt_nlls(self, rows: Sequence[Row]) -> list[float | None]: ...

    def generate_ids(
        self,
        inputs: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        on_done: Callable[[int], object] | None = None,
        spans: Sequence[Span] | None = None,
    ) -> list[list[int]]: ...

    def describe(self) -> dict[str, Any]: ...


class TorchGenerator:
    """The white-box model's own batched greedy decoding."""

    name = "torch"

    def score(self, rows: Sequence[Row]) -> list[ExactScore] | None:
        """None: the exact check runs as a torch forward."""
        return None

    def prompt_nlls(self, rows: Sequence[Row]) -> list[float | None]:
        """None each: the prompt NLL comes from the exact check's torch forward."""
        return [None] * len(rows)

    def __init__(self, wb: WhiteBox, batch: BatchSize) -> None:
        self.wb, self.batch = wb, batch

    def generate_ids(
        self,
        inputs: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        on_done: Callable[[int], object] | None = None,
        spans: Sequence[Span] | None = None,
    ) -> list[list[int]]:
        return greedy_generate(
            self.wb, inputs, max_new_tokens=max_new_tokens, batch=self.batch, on_done=on_done
        )

    def describe(self) -> dict[str, Any]:
        import torch

        return {"generator": "torch", "torch_threads": torch.get_num_threads()}


class LlamaCppGenerator:
    """Batched greedy decoding in llama.cpp from a GGUF of the white-box model's weights; the
    usage it does is added to the white-box backend's counters. The log-probs of the prompt
    spans it is given are read from the logits its prefill computes anyway and kept for the
    exact check (the two latest calls' inputs), so no torch forward is needed for the prompt
    NLL."""

    #: Calls whose prompt log-probs are kept (the exact check may use chains of the call
    #: before: the current prompt's, generated when it was a candidate).
    KEPT_CALLS = 2

    name = "llamacpp"

    def __init__(
        self, wb: WhiteBox, *, weights: str, threads: int, n_ctx: int, parallel: int
    ) -> None:
        provider = runtime(self.name)
        self.wb = wb
        self.weights = weights
        self.path = gguf_of(wb, weights, provider)
        self.engine = provider.open(self.path, n_threads=threads, n_ctx=n_ctx, n_parallel=parallel)
        self._span_logprobs: list[dict[tuple[tuple[int, ...], Span], tuple[float, ...]]] = []

    def generate_ids(
        self,
        inputs: Sequence[Sequence[int]],
        *,
        max_new_tokens: int,
        on_done: Callable[[int], object] | None = None,
        spans: Sequence[Span] | None = None,
    ) -> list[list[int]]:
        before = self.engine.stats.snapshot()
        out, logprobs = self.engine.generate_scored(
            inputs,
            spans if spans is not None else [None] * len(inputs),
            max_new_tokens=max_new_tokens,
            eos_ids=self.wb.eos_ids,
            on_done=on_done,
        )
        self.wb.usage.add(self.engine.stats.since(before).usage())
        if spans is not None:
            kept = {
                (tuple(ids), span): lps
                for ids, span, lps in zip(inputs, spans, logprobs, strict=True)
                if lps is not None
            }
            self._span_logprobs = [*self._span_logprobs[-(self.KEPT_CALLS - 1) :], kept]
        return out

    def prompt_nlls(self, rows: Sequence[Row]) -> list[float | None]:
        """Mean NLL of each row's prompt tokens given its head, where a recent generation
        scored that prompt span (None where none did)."""
        out: list[float | None] = []
        for row in rows:
            context = row.context
            key = (tuple(context.ids), prompt_span(context.head, context.prompt))
            found = next((m[key] for m in reversed(self._span_logprobs) if key in m), None)
            out.append(-sum(found) / len(found) if found else None)
        return out

    def score(self, rows: Sequence[Row]) -> list[ExactScore]:
        """The exact check's answer part in llama.cpp, reusing the KV cells the chains'
        generation left (only extractor and answer tokens are evaluated): per row, whether every
        gold answer token is the argmax and their mean cross-entropy. The prompt NLL is left at
        0 for the caller to fill (from :meth:`prompt_nlls`, else a torch forward)."""
        from promptopt_greater.tensors import ExactScore

        before = self.engine.stats.snapshot()
        answers = self.engine.score_spans(
            [row.ids for row in rows], [(row.target_start, len(row)) for row in rows]
        )
        self.wb.usage.add(self.engine.stats.since(before).usage())
        return [
            ExactScore(answer.all_argmax, 0.0, -answer.total / len(row.target))
            for row, answer in zip(rows, answers, strict=True)
        ]

    def describe(self) -> dict[str, Any]:
        return {"generator": "llamacpp", "weights": self.weights, **self.engine.describe()}

    def close(self) -> None:
        self.engine.close()


def prompt_span(head: Sequence[int], prompt: Sequence[int]) -> Span:
    """Where ``prompt`` sits in ``head + prompt + tail`` (None for an empty prompt)."""
    return (len(head), len(head) + len(prompt)) if prompt else None


def runtime(name: str) -> TokenGeneratorProvider:
    """The token-generator provider ``name`` (``-o generator=NAME``); a one-line error when no
    installed plugin provides it."""
    provider = token_generator_provider(name)
    if provider is None:
        raise PromptoptError(
            f"generator={name} needs a plugin that provides the {name!r} token generator, "
            "and none is installed",
            hint="install plugins/promptopt-llamacpp (with llama-cpp-python), "
            "or use -o generator=torch",
        )
    return provider


def gguf_of(wb: WhiteBox, weights: str, provider: TokenGeneratorProvider) -> Path:
    """The GGUF llama.cpp runs for ``wb``: ``orig`` is the file the model was loaded from (the
    embedded SmolLM2 is one); ``f32``/``f16`` hold the loaded weights in floats (a GGUF source
    dequantized, a folder exported), made by ``provider`` and cached by content. Only float
    weights make llama.cpp compute like torch: on quantized weights it also quantizes
    activations."""
    source = wb.weights_file()
    if weights == "orig":
        if source is None or source.suffix != ".gguf":
            raise PromptoptError(
                f"generator_weights=orig needs a model loaded from a GGUF file, not {wb.model_id}",
                hint="use -o generator_weights=f32 (the loaded weights in floats)",
            )
        return source
    local = source if source is not None else wb.weights_folder()
    if local is None:
        raise PromptoptError(
            f"cannot make a GGUF of {wb.model_id} for llama.cpp: no local weights",
            hint="use -o generator=torch",
        )
    return provider.weights_file(local, "f16" if weights == "f16" else "f32")


def choose(requested: str, wb: WhiteBox, reference_mode: bool) -> str:
    """``auto``: llama.cpp for a CPU model when a plugin provides the ``llamacpp`` token
    generator and its runtime imports (llama-cpp-python), else torch; reference mode always
    generates in torch, as the authors' code does."""
    if reference_mode or requested == "torch":
        return "torch"
    if requested == "llamacpp":
        return "llamacpp"
    if getattr(wb.device, "type", "cpu") != "cpu":
        return "torch"
    provider = token_generator_provider(LlamaCppGenerator.name)
    if provider is None or not provider.available():
        return "torch"
    return "llamacpp"
