"""What GReaTer's exact check may ask of the reasoner whose chains it scores: the declared
interface between the ``greater`` loss extractor and a reasoner that can score the rows of its own
latest chains in the runtime that generated them (llama.cpp: only the extractor and answer tokens
after the KV cells the chains left, and the prompt log-probs its prefill computed anyway).

:class:`~promptopt_greater.reasoner.GreaterReasoner` implements it; any reasoner may, and the loss
extractor asks nothing else of it. Without it (or when :meth:`ChainScorer.score_rows` answers
None) the exact check is one torch forward over the rows, with the same results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from promptopt_greater.layout import Row
    from promptopt_greater.tensors import ExactScore
    from promptopt_greater.whitebox import WhiteBox


@runtime_checkable
class ChainScorer(Protocol):
    """A reasoner that scores rows built from the chains its latest ``reason`` calls returned
    (their exact ids: ``Chain.ids``), where it generated them. The rows' chains must come from
    the reasoner's two latest calls (the call the exact check just made and, for chains it
    reused, the one before); the loss extractor builds the rows right after asking for them."""

    def score_rows(self, wb: WhiteBox, rows: Sequence[Row]) -> list[ExactScore] | None:
        """The exact check's answer part per row, in order: whether every gold answer token is
        the argmax and their mean cross-entropy, ``prompt_nll`` left 0 (see
        :meth:`prompt_nlls`); None when this reasoner's runtime cannot score (torch then
        does)."""
        ...

    def prompt_nlls(self, wb: WhiteBox, rows: Sequence[Row]) -> list[float | None]:
        """Mean NLL of each row's prompt tokens given its head, where this reasoner's generation
        scored that prompt span; None where it did not (a torch forward fills those)."""
        ...
