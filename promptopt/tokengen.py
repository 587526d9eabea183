"""Token-id generators: greedy continuations of exact token ids, computed by another runtime on
the weights of a white-box model, for methods that keep proposals and gradients in torch but
want generation fast (GReaTer generates its reasoning chains with one on a CPU).

A backend plugin offers its runtime by registering a :class:`TokenGeneratorProvider` with the
``register_token_generators`` hook; a method finds it by name with
:func:`token_generator_provider` and never imports the plugin.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from promptopt.accounting import Usage

#: The hook that registers :class:`TokenGeneratorProvider` objects.
HOOK = "register_token_generators"

#: ``(start, end)`` positions of an input's tokens to score, or None (nothing to score).
Span = tuple[int, int] | None


class SpanScore(Protocol):
    """The score of one row's span: the sum of its tokens' log-probabilities, and whether every
    token of it is the argmax at its position (greedy decoding would produce the span)."""

    @property
    def total(self) -> float: ...

    @property
    def all_argmax(self) -> bool: ...


class GenerationCounters(Protocol):
    """A generator's cumulative counters: a frozen copy, what was added since one, and that as
    :class:`~promptopt.accounting.Usage` (for the white-box backend's accounting)."""

    def snapshot(self) -> GenerationCounters: ...

    def since(self, before: Any) -> GenerationCounters: ...

    def usage(self) -> Usage: ...


class TokenGenerator(Protocol):
    """A loaded model generating and scoring exact token ids (see
    :meth:`TokenGeneratorProvider.open`)."""

    @property
    def stats(self) -> GenerationCounters:
        """What it computed so far."""
        ...

    def generate_scored(
        self,
        inputs: Sequence[Sequence[int]],
        spans: Sequence[Span],
        *,
        max_new_tokens: int,
        eos_ids: Collection[int],
        on_done: Callable[[int], object] | None = None,
    ) -> tuple[list[list[int]], list[tuple[float, ...] | None]]:
        """Greedy new ids for each input, in input order (argmax, ties to the lowest id; a row
        ends at an id in ``eos_ids``, not returned, or after ``max_new_tokens``), and for each
        input with a span the log-probability of each of its tokens in that span given the
        tokens before (None for a None span). ``on_done(k)``: ``k`` more rows finished."""
        ...

    def score_spans(
        self, rows: Sequence[Sequence[int]], spans: Sequence[tuple[int, int]]
    ) -> Sequence[SpanScore]:
        """The score of each row's span, reusing what earlier calls computed for its prefix."""
        ...

    def describe(self) -> dict[str, Any]:
        """The settings in use, for logs and ``config.json``."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


class TokenGeneratorProvider(Protocol):
    """What a backend plugin registers with ``register_token_generators``."""

    #: What methods choose it by (GReaTer's ``-o generator=NAME``).
    name: str

    def available(self) -> bool:
        """Whether its runtime can run in this process (its libraries import), without
        loading a model."""
        ...

    def weights_file(self, source: Path, dtype: Literal["f32", "f16"]) -> Path:
        """A file :meth:`open` loads holding the weights of ``source`` (a model file or a
        local model folder) in ``dtype``, made once and cached."""
        ...

    def open(self, path: Path, *, n_threads: int, n_ctx: int, n_parallel: int) -> TokenGenerator:
        """A generator on the model file ``path`` with ``n_threads`` CPU threads, at most
        ``n_ctx`` positions per sequence and ``n_parallel`` sequences decoded together."""
        ...


def token_generator_provider(name: str) -> TokenGeneratorProvider | None:
    """The registered provider called ``name``, or None when no plugin provides it."""
    from promptopt.pluginmanager import registered_providers

    providers: dict[str, TokenGeneratorProvider] = registered_providers(HOOK, "name")
    return providers.get(name)
