"""Exact id layouts and the reasoner: the spliced ids equal what a text consumer would feed the
model, chains are kept as ids, and the latest chains survive a checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptopt.testing.fakes import ListTask

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def setup(tiny_model_dir: Path):
    from promptopt_greater.method import GreaterMethod
    from promptopt_greater.whitebox import white_box
    from promptopt_hf.backend import HFBackend

    backend = HFBackend(str(tiny_model_dir), HFBackend.Options())
    task = ListTask()
    return backend, task, GreaterMethod().initial_prompt(task, backend), white_box(backend)


def test_context_ids_equal_the_tokenized_chat_text(setup):
    from promptopt_greater.layout import build_context

    backend, task, prompt, wb = setup
    for example in task.examples("train"):
        context = build_context(wb, task, example, prompt)
        text = backend.chat(task.user_turn(example, prompt))
        assert context.ids == backend.encode_input(text)
        assert context.prompt == prompt.tokens
        assert wb.decode(context.head).endswith(example.question + " Use")  # questions end in "?"


def test_rows_end_with_extractor_then_gold_answer(setup):
    from promptopt_greater.layout import build_context, build_rows

    _, task, prompt, wb = setup
    example = task.examples("train")[0]
    context = build_context(wb, task, example, prompt)
    reasoning = wb.encode(" The answer is clear.")
    (row,) = build_rows(wb, task, [example], [context], [reasoning])
    assert row.ids[row.target_start :] == list(row.target)
    assert wb.decode(row.target) == task.target(example)
    tail = wb.decode(row.ids[len(context.ids) :])
    assert tail == " The answer is clear. " + task.extractor(example) + task.target(example)
    assert len(row) == len(row.ids)


def test_reasoner_chains_match_backend_generation_and_survive_a_checkpoint(setup, fake_registry):
    from promptopt_greater.reasoner import GreaterReasoner

    from promptopt.testing.steps import step_context_for

    backend, task, prompt, _ = setup
    comps, ctx = step_context_for(
        "greater", task="fake/yes-no", backend=backend, registry=fake_registry, max_new_tokens=7
    )
    (chains,) = comps.reasoner.reason(ctx, [prompt], ctx.train)
    texts = [backend.chat(task.user_turn(e, prompt)) for e in ctx.train]
    assert [c.reasoning for c in chains] == backend.generate(texts, max_new_tokens=7)
    assert [c.context for c in chains] == texts
    assert [list(c.ids) for c in chains] == backend.generate_ids(texts, max_new_tokens=7)
    assert ctx.notes["generated_tokens"] > 0

    state = json.loads(json.dumps(comps.reasoner.state_dict()))
    restored = GreaterReasoner(GreaterReasoner.Options(max_new_tokens=7))
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    before = ctx.notes["generated_tokens"]
    again = restored.reason(ctx, [prompt], ctx.train)[0]  # restored chains: no generation
    assert [c.ids for c in again] == [c.ids for c in chains]
    assert ctx.notes["generated_tokens"] == before
    assert ctx.notes["chains_reused"] == len(ctx.train)
