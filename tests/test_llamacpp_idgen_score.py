"""Span scoring in the llama.cpp token generator (``score_spans``) against llama.cpp's own
from-scratch evaluation of each row (``Llama.eval`` with every position's logits), a fresh
generator, and transformers on the same weights: on the tiny exported GGUF and the embedded
SmolLM2 (F32). Also that scoring after ``generate_ids`` evaluates only what the slots lack."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python

from promptopt_llamacpp.gguf_export import export_hf_llama
from promptopt_llamacpp.idgen import LlamaTokenGenerator, SpanScore
from promptopt_llamacpp.modelfiles import gguf_for

from promptopt.errors import PromptoptError

THREADS = 1  # fast on a shared machine too (ggml threads spin at barriers when a core is taken)


class FromScratch:
    """llama.cpp's own evaluation of a whole row from an empty cache, every position's logits
    kept: the reference numbers for a span."""

    def __init__(self, path: Path) -> None:
        import llama_cpp

        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=1024, n_threads=THREADS, n_threads_batch=THREADS,
            type_k=0, type_v=0, logits_all=True, verbose=False,
        )  # fmt: skip

    def logits(self, row: Sequence[int]) -> np.ndarray:
        """``[len(row), V]``: row ``p`` predicts token ``p + 1``."""
        self.llm.reset()
        self.llm.eval(list(row))
        return np.array(self.llm.scores[: len(row)], dtype=np.float64)

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def close(self) -> None:
        self.llm.close()


def expected(logits: np.ndarray, row: Sequence[int], start: int, end: int) -> tuple[Any, Any, Any]:
    """(log-probs, argmax hits, top-2 gaps) of ``row[start:end]`` from full-row logits."""
    rows = logits[start - 1 : end - 1].astype(np.float64)
    peak = rows.max(axis=1, keepdims=True)
    logprobs = rows - peak - np.log(np.exp(rows - peak).sum(axis=1, keepdims=True))
    tokens = np.array(row[start:end])
    top2 = np.sort(rows, axis=1)[:, -2:]
    return (
        logprobs[np.arange(len(tokens)), tokens],
        rows.argmax(axis=1) == tokens,
        top2[:, 1] - top2[:, 0],
    )


def assert_close(
    got: SpanScore, logits: np.ndarray, row: Sequence[int], span: tuple[int, int], atol: float
) -> None:
    logprobs, hits, gaps = expected(logits, row, *span)
    assert len(got.logprobs) == len(got.is_argmax) == span[1] - span[0]
    np.testing.assert_allclose(got.logprobs, logprobs, rtol=0, atol=atol)
    assert got.total == pytest.approx(float(logprobs.sum()), abs=atol * len(logprobs))
    clear = gaps > 1e-4  # a near-tie may go either way between implementations
    assert np.array_equal(np.array(got.is_argmax)[clear], hits[clear])
    assert got.all_argmax == all(got.is_argmax)


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_hf_llama(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf")


@pytest.fixture(scope="module")
def tiny_ref(tiny_gguf: Path) -> Iterator[FromScratch]:
    ref = FromScratch(tiny_gguf)
    yield ref
    ref.close()


def tiny_inputs(ref: FromScratch) -> list[list[int]]:
    base = ref.tokenize("<|im_start|>user\nThe quick brown fox jumps over the lazy dog. ")
    return [
        base + ref.tokenize("Use proper logical reasoning.<|im_end|>\n<|im_start|>assistant\n"),
        ref.tokenize("Premises: All dogs are animals."),
        base + ref.tokenize("Statement: The ground is wet. Options: (A) True (B) False"),
        ref.tokenize("Hi there"),
    ]


def chains(
    gen: LlamaTokenGenerator, inputs: list[list[int]], extra: list[int], new: int
) -> tuple[list[list[int]], list[tuple[int, int]]]:
    """GReaTer's exact-check rows after generation: input + generated + extra ids, the span
    covering the last two generated ids and the extra ones."""
    outs = gen.generate_ids(inputs, max_new_tokens=new, eos_ids=())
    assert all(len(o) == new for o in outs)
    rows = [ids + out + extra for ids, out in zip(inputs, outs, strict=True)]
    return rows, [(len(ids) + new - 2, len(row)) for ids, row in zip(inputs, rows, strict=True)]


def test_spans_after_generation_reuse_the_slots_and_equal_a_fresh_evaluation(
    tiny_gguf: Path, tiny_ref: FromScratch, tiny_model_dir: Path
) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    inputs = tiny_inputs(tiny_ref)
    extra = tiny_ref.tokenize(" Therefore, the answer is (A) True")
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=4) as gen:
        rows, spans = chains(gen, inputs, extra, 10)
        before = gen.stats.snapshot()
        done: list[int] = []
        got = gen.score_spans(rows, spans, on_done=done.append)
        spent = gen.stats.since(before)
    assert sum(done) == len(rows)
    # each slot held its row's input and all generated ids but the last: only the span's ids
    # (less the last, whose logits are never needed) and the one before it are evaluated
    assert spent.prompt_tokens == sum(end - start for start, end in spans)
    assert spent.reused_tokens == sum(start - 1 for start, _ in spans)
    assert spent.decode_calls == 1 and spent.kv_copies == 0 and spent.generated_tokens == 0
    assert spent.scored_tokens == sum(e - s for s, e in spans)
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=2) as fresh:
        scratch = fresh.score_spans(rows, spans)
        assert fresh.stats.reused_tokens == 0
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    for row, span, ours, theirs in zip(rows, spans, got, scratch, strict=True):
        # the generated KV cells round a little apart from a prompt evaluation of the same ids
        assert_close(ours, tiny_ref.logits(row), row, span, atol=1e-5)
        assert_close(theirs, tiny_ref.logits(row), row, span, atol=1e-6)
        assert ours.is_argmax[:2] == (True, True)  # the generated ids were greedy
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([row])).logits[0].double().numpy()
        assert_close(ours, logits, row, span, atol=1e-3)


def test_rows_whose_chains_slots_still_hold_go_first(
    tiny_gguf: Path, tiny_ref: FromScratch
) -> None:
    """More chains than slots: the slots hold the last chains generated; scoring serves those
    rows before other rows evict them, and scores the other rows whole."""
    inputs = tiny_inputs(tiny_ref)
    extra = tiny_ref.tokenize(" The answer is (B)")
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=2) as gen:
        rows, spans = chains(gen, inputs, extra, 6)
        held = sorted(range(len(inputs)), key=inputs.__getitem__)[-2:]  # admitted last
        before = gen.stats.snapshot()
        got = gen.score_spans(rows, spans)
        spent = gen.stats.since(before)
    assert spent.reused_tokens >= sum(spans[i][0] - 1 for i in held)
    for row, span, score in zip(rows, spans, got, strict=True):
        assert_close(score, tiny_ref.logits(row), row, span, atol=1e-5)


def test_rows_in_no_slot_score_alike_alone_together_and_in_pieces(
    tiny_gguf: Path, tiny_ref: FromScratch
) -> None:
    """More rows than slots, of different lengths (padded to share decode calls), rows longer
    than a batch (evaluated in pieces), one-token spans: a row's numbers are bitwise those of
    the row scored alone, and those of llama.cpp's own evaluation."""
    inputs = tiny_inputs(tiny_ref)
    rows = [*inputs, inputs[0] + inputs[2], inputs[2][:5]]
    spans = [
        (1, len(rows[0])),
        (3, 4),
        (len(rows[2]) - 6, len(rows[2]) - 1),
        (1, 2),
        (9, 40),
        (4, 5),
    ]
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=128, n_parallel=3) as gen:
        together = gen.score_spans(rows, spans)
        assert gen.stats.padding_tokens > 0  # rows of different lengths shared decode calls
        assert gen.stats.decode_calls < len(rows)
    for n_batch in (512, 16):
        with LlamaTokenGenerator(
            tiny_gguf, n_threads=THREADS, n_ctx=128, n_parallel=2, n_batch=n_batch
        ) as gen:
            alone = []
            for row, span in zip(rows, spans, strict=True):
                gen.reset()  # from an empty cache
                alone += gen.score_spans([row], [span])
            gen.reset()
            if n_batch == 16:
                assert gen.score_spans(rows, spans) == alone  # pieces of 16 tokens
        for row, span, a, b in zip(rows, spans, together, alone, strict=True):
            assert a == b  # bitwise
            assert_close(a, tiny_ref.logits(row), row, span, atol=1e-6)


def test_slots_stay_consistent_across_scoring_copies_and_generation(
    tiny_gguf: Path, tiny_ref: FromScratch
) -> None:
    """Scoring again reuses what scoring evaluated (same numbers); a row whose prefix a busy
    slot holds gets it copied; generation after scoring still equals the greedy reference."""
    inputs = tiny_inputs(tiny_ref)
    extra = tiny_ref.tokenize(" So the answer is False")
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=4) as gen:
        rows, spans = chains(gen, inputs[:2], extra, 8)
        first = gen.score_spans(rows, spans)
        before = gen.stats.snapshot()
        # the same rows again, plus a row that shares row 0's first 30 ids (held by row 0's
        # slot, busy with row 0 in the same round): copied into an idle slot
        branch = [*rows[0][:30], *extra]
        again = gen.score_spans([*rows, branch], [*spans, (31, len(branch))])
        spent = gen.stats.since(before)
        assert again[:2] == first
        # a one-token span over held cells still evaluates two tokens (a lone token is rounded
        # another way): the same number as before
        end = spans[1][1]
        last = gen.score_spans([rows[1]], [(end - 1, end)])[0]
        assert last.logprobs == first[1].logprobs[-1:]
        assert gen.stats.since(before).prompt_tokens == spent.prompt_tokens + 2
        assert spent.kv_copies == 1
        assert spent.prompt_tokens == sum(e - s for s, e in spans) + len(extra) - 1
        assert_close(again[2], tiny_ref.logits(branch), branch, (31, len(branch)), atol=1e-6)
        greedy = gen.generate_ids([rows[0][:-3], branch], max_new_tokens=6, eos_ids=())
        assert gen.stats.since(before).reused_tokens > spent.reused_tokens  # cells reused
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=4) as fresh:
        assert greedy == fresh.generate_ids([rows[0][:-3], branch], max_new_tokens=6, eos_ids=())


def prompt_span_inputs(ref: FromScratch) -> tuple[list[list[int]], list[Any]]:
    """GReaTer-like inputs: one question head, prompts that differ at one token (sharing the
    head and the prompt before it), a template tail; spans over the prompt tokens."""
    head = ref.tokenize("<|im_start|>user\nThe quick brown fox jumps over the lazy dog. Use")
    tail = ref.tokenize("<|im_end|>\n<|im_start|>assistant\n")
    prompt = ref.tokenize(" proper logical reasoning and think step by step.")
    variants = [prompt, [*prompt[:3], *ref.tokenize(" simple"), *prompt[4:]]]
    variants.append([*prompt[:5], *ref.tokenize(" first"), *prompt[6:]])
    inputs = [[*head, *p, *tail] for p in variants]
    spans: list[Any] = [(len(head), len(head) + len(p)) for p in variants]
    inputs.append(ref.tokenize("Hi there, how are you?"))
    spans.append(None)
    inputs.append([*head, *prompt])  # a span up to the input's end
    spans.append((len(head), len(head) + len(prompt)))
    return inputs, spans


def test_generate_scored_scores_input_spans_from_the_prefill_and_keeps_the_ids(
    tiny_gguf: Path, tiny_ref: FromScratch
) -> None:
    """The span log-probs equal llama.cpp's own evaluation of the input; the ids equal those
    of ``generate_ids``; inputs that share a prefix reuse its cells and its scores; a None
    span is not scored."""
    inputs, spans = prompt_span_inputs(tiny_ref)
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=4) as plain:
        expected_ids = plain.generate_ids(inputs, max_new_tokens=6, eos_ids=())
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=4) as gen:
        ids, scores = gen.generate_scored(inputs, spans, max_new_tokens=6, eos_ids=())
        first = gen.stats.snapshot()
        assert first.reused_tokens > 0  # the variants reused the head (and their scores)
        # again, in another order: every span position is served from the slots' scores
        again_ids, again = gen.generate_scored(
            inputs[::-1], spans[::-1], max_new_tokens=6, eos_ids=()
        )
    assert ids == expected_ids and again_ids == expected_ids[::-1]
    assert again == scores[::-1]
    assert scores[3] is None
    scored = [(row, span, got) for row, span, got in zip(inputs, spans, scores, strict=True)]
    for row, span, got in scored[:3] + scored[4:]:
        assert got is not None and len(got) == span[1] - span[0]
        logprobs, _, _ = expected(tiny_ref.logits(row), row, *span)
        np.testing.assert_allclose(got, logprobs, rtol=0, atol=1e-6)
    with LlamaTokenGenerator(
        tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=2, n_batch=8
    ) as small:  # prefill in pieces of 8 tokens, spans across pieces
        pieces = small.generate_scored(inputs, spans, max_new_tokens=6, eos_ids=())
    assert pieces[0] == ids
    for got, want in zip(pieces[1], scores, strict=True):
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    with (
        LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=64, n_parallel=2) as gen,
        pytest.raises(PromptoptError, match=r"span 0 \(3, 9\) lies outside input 0 of 5") as info,
    ):
        gen.generate_scored([[1, 2, 3, 4, 5]], [(3, 9)], max_new_tokens=2, eos_ids=())
    assert "\n" not in str(info.value)


def test_span_errors_are_one_line(tiny_gguf: Path) -> None:
    with LlamaTokenGenerator(tiny_gguf, n_threads=1, n_ctx=64, n_parallel=2) as gen:
        cases = [
            ([[1, 2, 3]], [(2, 2)], r"span 0 \(2, 2\) is empty"),
            ([[1, 2, 3]], [(0, 2)], r"span 0 \(0, 2\) starts at 0"),
            ([[1, 2, 3], [1, 2]], [(1, 3), (1, 3)], r"span 1 \(1, 3\) ends past the row's 2"),
            ([[1, 2, 3], [5] * 65], [(1, 2), (1, 2)], "row 1 has 65 tokens, more than the context"),
            ([[1, 10**6]], [(1, 2)], "outside the vocabulary"),
            ([[1, 2, 3]], [], "got 0 spans for 1 rows"),
        ]
        for rows, spans, message in cases:
            with pytest.raises(PromptoptError, match=message) as info:
                gen.score_spans(rows, spans)
            assert "\n" not in str(info.value)
        assert gen.score_spans([], []) == []
        assert len(gen.score_spans([[1, 2, 3]], [(1, 3)])[0].logprobs) == 2  # still usable


# ---------------------------------------------------------------------- the embedded SmolLM2


@pytest.fixture(scope="module")
def hf_backend() -> Any:
    pytest.importorskip("transformers")
    from promptopt_hf.backend import HFBackend

    return HFBackend(None)


@pytest.mark.slow
def test_smollm2_spans_after_generation_equal_transformers(
    hf_backend: Any, shared_data_dir: Path
) -> None:
    """F32 weights: GReaTer's exact check (FOLIO chat inputs, 16 generated ids, extractor and
    gold answer) scored after generation equals a fresh evaluation and transformers."""
    import torch

    from promptopt.registry import get_registry

    cls = get_registry().get("task", "folio")
    task = cls(cls.Options(data_dir=str(shared_data_dir)))  # type: ignore[call-arg]
    examples = task.examples("train")[:3]  # type: ignore[attr-defined]
    tokenizer = hf_backend.tokenizer

    def encode(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    turn = "<|im_start|>user\n{} Think step by step.<|im_end|>\n<|im_start|>assistant\n"
    inputs = [encode(turn.format(ex.question)) for ex in examples]
    extra = encode(" Therefore, the final answer is (A) True")
    path = gguf_for(None, dtype="f32")
    with LlamaTokenGenerator(path, n_threads=THREADS, n_ctx=512, n_parallel=3) as gen:
        rows, spans = chains(gen, inputs, extra, 16)
        before = gen.stats.snapshot()
        got = gen.score_spans(rows, spans)
        spent = gen.stats.since(before)
    assert spent.prompt_tokens == sum(end - start for start, end in spans)
    assert spent.decode_calls == 1
    assert spent.reused_tokens > 0.9 * sum(map(len, rows))
    with LlamaTokenGenerator(path, n_threads=THREADS, n_ctx=512, n_parallel=3) as fresh:
        scratch = fresh.score_spans(rows, spans)
    for row, span, ours, theirs in zip(rows, spans, got, scratch, strict=True):
        np.testing.assert_allclose(ours.logprobs, theirs.logprobs, rtol=0, atol=1e-4)
        assert ours.is_argmax == theirs.is_argmax and ours.is_argmax[:2] == (True, True)
        with torch.no_grad():
            logits = hf_backend.model(input_ids=torch.tensor([row])).logits[0]
        assert_close(ours, logits.double().numpy(), row, span, atol=1e-3)
        assert_close(theirs, logits.double().numpy(), row, span, atol=1e-3)
