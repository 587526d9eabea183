"""What the greater loss extractor asks of a reasoner is a declared protocol (ChainScorer), not
a concrete class: GReaTer's reasoner implements it, another reasoner may."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptopt_greater.reasoner import GreaterReasoner
from promptopt_greater.scoring import ChainScorer

from promptopt.reasoners import ChatReasoner


class OwnScorer(ChatReasoner):
    """A reasoner of another plugin that scores its own chains."""

    def score_rows(self, wb: Any, rows: Sequence[Any]) -> list[Any] | None:
        return None

    def prompt_nlls(self, wb: Any, rows: Sequence[Any]) -> list[float | None]:
        return [None] * len(rows)


def test_reasoners_that_score_their_chains_declare_it_structurally() -> None:
    assert isinstance(GreaterReasoner(), ChainScorer)
    assert isinstance(OwnScorer(), ChainScorer)
    assert not isinstance(ChatReasoner(), ChainScorer)
