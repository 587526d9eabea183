"""GReaTer's one-hot gradient and exact check against independent computations (tiny model)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from promptopt_greater.layout import Row, build_context, build_rows  # noqa: E402
from promptopt_greater.method import GreaterMethod  # noqa: E402
from promptopt_greater.prefix import PrefixCache  # noqa: E402
from promptopt_greater.tensors import exact_scores, next_token_logprobs, onehot_gradient  # noqa: E402
from promptopt_greater.whitebox import WhiteBox, white_box  # noqa: E402

from promptopt.testing.fakes import ListTask  # noqa: E402

TEMPERATURE, FLUENCY = 0.2, 0.2


@pytest.fixture(scope="module")
def wb(tiny_model_dir: Path) -> WhiteBox:
    from promptopt_hf.backend import HFBackend

    return white_box(HFBackend(str(tiny_model_dir), HFBackend.Options()))


@pytest.fixture(scope="module")
def rows(wb: WhiteBox) -> list[Row]:
    """Three rows with different question lengths and reasoning of different lengths."""
    return make_rows(wb)


@pytest.fixture(scope="module")
def gemma_wb(tmp_path_factory: pytest.TempPathFactory) -> WhiteBox:
    """A tiny random Gemma-2: it scales input embeddings by sqrt(hidden) inside the module."""
    from promptopt_hf.backend import HFBackend

    from promptopt.testing.tiny_model import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("tiny-gemma2"), architecture="gemma2")
    return white_box(HFBackend(str(path), HFBackend.Options()))


def make_rows(wb: WhiteBox) -> list[Row]:
    task = ListTask()
    prompt = GreaterMethod().initial_prompt(task, wb)
    examples = task.examples("train")[:3]
    contexts = [build_context(wb, task, e, prompt) for e in examples]
    reasonings = [wb.encode(" We compare the two numbers."), wb.encode(" So"), []]
    return build_rows(wb, task, examples, contexts, reasonings)


def row_loss(row: Row, logits):
    """CE(answer / temperature) + fluency * prompt NLL, from a row's full logits."""
    n, start = len(row.context.prompt), row.prompt_start
    nll = torch.nn.functional.cross_entropy(
        logits[start - 1 : start - 1 + n], torch.tensor(row.context.prompt)
    )
    t0 = row.target_start
    ce = torch.nn.functional.cross_entropy(
        logits[t0 - 1 : t0 - 1 + len(row.target)] / TEMPERATURE, torch.tensor(row.target)
    )
    return ce + FLUENCY * nll


def reference_loss(wb: WhiteBox, row: Row, position: int, cands: list[int], one_hot):
    """The loss written out directly: embeddings of the whole row, full logits, no cache."""
    emb = wb.embedding_matrix.detach()
    ids = torch.tensor(row.ids)
    embeds = emb[ids].clone()
    embeds[row.prompt_start + position] = one_hot @ emb[torch.tensor(cands)]
    return row_loss(row, wb.model(inputs_embeds=embeds[None]).logits[0].float())


def plain_loss(wb: WhiteBox, row: Row) -> float:
    """The row's loss from token ids alone: the model embeds them itself, so no embedding
    arithmetic of ours is involved."""
    with torch.no_grad():
        logits = wb.model(input_ids=torch.tensor([row.ids])).logits[0].float()
    return float(row_loss(row, logits))


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_gradient_pass_sees_the_same_inputs_as_the_model(request, arch):
    """At the current one-hot the gradient pass's loss is the loss of the real token ids, also
    for a model that scales its embeddings (Gemma): the one-hot is mixed from what the model
    embeds, not from raw weight rows."""
    box = request.getfixturevalue("wb" if arch == "llama" else "gemma_wb")
    if arch == "gemma2" and type(box.input_embeddings).__name__ != "Embedding":
        # recent transformers scale Gemma's embeddings inside the module (5.0 in the forward):
        # either way the gradient pass must see what a forward over the real ids sees
        ids = torch.tensor([5, 17, 42])
        assert not torch.allclose(box.input_embeddings(ids), box.embedding_matrix[ids])
    rows = make_rows(box)
    position = 1
    cands, current = candidates_at(rows[0], position)
    _, total = onehot_gradient(
        box.model, box.input_embeddings, rows, position=position, candidates=cands,
        current=current, temperature=TEMPERATURE, fluency_weight=FLUENCY,
        pad_id=box.pad_id, device=box.device, cache=PrefixCache(box.model),
    )  # fmt: skip
    assert total == pytest.approx(sum(plain_loss(box, row) for row in rows), rel=1e-4)


def candidates_at(row: Row, position: int) -> tuple[list[int], int]:
    current = row.context.prompt[position]
    others = [t for t in (300, 320, 341, 396, 424, 437) if t != current]
    return [*others[:3], current, *others[3:]], 3


@pytest.mark.parametrize("position", [0, 4])
@pytest.mark.parametrize("use_cache", [False, True])
def test_onehot_gradient_matches_direct_autograd(wb, rows, position, use_cache):
    cands, current = candidates_at(rows[0], position)
    cache = PrefixCache(wb.model) if use_cache else None
    grad, total = onehot_gradient(
        wb.model, wb.input_embeddings, rows, position=position, candidates=cands,
        current=current, temperature=TEMPERATURE, fluency_weight=FLUENCY,
        pad_id=wb.pad_id, device=wb.device, cache=cache,
    )  # fmt: skip
    expected = torch.zeros(len(cands))
    expected_total = 0.0
    for row in rows:
        one_hot = torch.zeros(len(cands))
        one_hot[current] = 1.0
        one_hot.requires_grad_(True)
        loss = reference_loss(wb, row, position, cands, one_hot)
        expected += torch.autograd.grad(loss, one_hot)[0]
        expected_total += float(loss.detach())
    assert total == pytest.approx(expected_total, rel=1e-4)
    torch.testing.assert_close(grad, expected, rtol=1e-3, atol=1e-4)
    assert grad.abs().max() > 0


def test_gradient_predicts_small_moves_of_the_one_hot(wb, rows):
    """Finite differences of the directly computed loss along (e_c - e_current) agree with the
    gradient: the gradient really is the derivative of the loss we evaluate."""
    position = 2
    cands, current = candidates_at(rows[1], position)
    grad, _ = onehot_gradient(
        wb.model, wb.input_embeddings, rows[1:2], position=position, candidates=cands,
        current=current, temperature=TEMPERATURE, fluency_weight=FLUENCY,
        pad_id=wb.pad_id, device=wb.device,
    )  # fmt: skip
    eps = 1e-2
    with torch.no_grad():
        for c in (0, 4):
            direction = torch.zeros(len(cands))
            direction[c], direction[current] = 1.0, -1.0
            base = torch.zeros(len(cands))
            base[current] = 1.0
            up = reference_loss(wb, rows[1], position, cands, base + eps * direction)
            down = reference_loss(wb, rows[1], position, cands, base - eps * direction)
            numeric = float(up - down) / (2 * eps)
            assert numeric == pytest.approx(float(grad[c] - grad[current]), rel=2e-2, abs=1e-3)


def test_model_weights_get_no_gradient(wb, rows):
    cands, current = candidates_at(rows[0], 1)
    onehot_gradient(
        wb.model, wb.input_embeddings, rows, position=1, candidates=cands, current=current,
        temperature=TEMPERATURE, fluency_weight=FLUENCY, pad_id=wb.pad_id, device=wb.device,
    )  # fmt: skip
    assert all(p.grad is None for p in wb.model.parameters())


def test_exact_scores_match_plain_forward(wb, rows):
    for cache in (None, PrefixCache(wb.model)):
        scores = exact_scores(wb.model, rows, pad_id=wb.pad_id, device=wb.device, cache=cache)
        for row, score in zip(rows, scores, strict=True):
            with torch.no_grad():
                logits = wb.model(input_ids=torch.tensor([row.ids])).logits[0]
            t0, m = row.target_start, len(row.target)
            argmax = logits[t0 - 1 : t0 - 1 + m].argmax(-1).tolist()
            assert score.correct == (argmax == list(row.target))
            start, n = row.prompt_start, len(row.context.prompt)
            nll = torch.nn.functional.cross_entropy(
                logits[start - 1 : start - 1 + n], torch.tensor(row.context.prompt)
            )
            assert score.prompt_nll == pytest.approx(float(nll), rel=1e-4)


def test_exact_check_sees_a_correct_answer(wb, rows):
    """A row whose target is the model's own greedy answer counts as correct."""
    row = rows[0]
    prefix = row.ids[: row.target_start]
    with torch.no_grad():
        token = int(wb.model(input_ids=torch.tensor([prefix])).logits[0, -1].argmax())
    forced = Row(row.context, row.reasoning, row.extractor, (token,))
    wrong = Row(row.context, row.reasoning, row.extractor, ((token + 1) % wb.vocab_size,))
    scores = exact_scores(wb.model, [forced, wrong], pad_id=wb.pad_id, device=wb.device)
    assert [s.correct for s in scores] == [True, False]


def test_prefix_cache_gives_the_same_next_token_distribution(wb, rows):
    seqs = [[*r.context.head, *r.context.prompt[:3]] for r in rows]
    heads = [r.context.head for r in rows]
    plain = next_token_logprobs(wb.model, seqs, pad_id=wb.pad_id, device=wb.device)
    cache = PrefixCache(wb.model)
    cached = next_token_logprobs(
        wb.model, seqs, pad_id=wb.pad_id, device=wb.device, heads=heads, cache=cache
    )
    torch.testing.assert_close(plain, cached, rtol=1e-4, atol=1e-4)
    assert len(cache) == len({tuple(h) for h in heads})
    for seq, row in zip(seqs, plain, strict=True):
        with torch.no_grad():
            alone = torch.log_softmax(wb.model(input_ids=torch.tensor([seq])).logits[0, -1], -1)
        torch.testing.assert_close(row, alone, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("weight", [0.0, 3.0])
def test_loss_extractor_scores_are_the_normalized_gradient_with_its_weight(
    wb, weight, fake_registry
):
    """The configured fluency weight reaches the gradient (a reference quirk dropped it)."""
    from promptopt_greater.loss import chain_rows

    from promptopt.testing.steps import step_context_for

    comps, ctx = step_context_for(
        "greater",
        task="fake/yes-no",
        backend=wb,
        registry=fake_registry,
        max_new_tokens=5,
        fluency_weight=weight,
    )
    prompt = ctx.prompt
    candidates = comps.proposer.propose(ctx, prompt)
    scores = comps.loss_extractor.score_candidates(ctx, prompt, candidates)
    rows = chain_rows(ctx, wb, prompt, ctx.train, ctx.chains(prompt))
    ids = [c.meta["token_id"] for c in candidates]
    grad, _ = onehot_gradient(
        wb.model, wb.input_embeddings, rows, position=0, candidates=ids, current=0,
        temperature=TEMPERATURE, fluency_weight=weight, pad_id=wb.pad_id, device=wb.device,
    )  # fmt: skip
    torch.testing.assert_close(torch.tensor(scores), grad / grad.norm(), rtol=1e-3, atol=1e-5)
    assert abs(float(torch.tensor(scores).norm()) - 1.0) < 1e-4
