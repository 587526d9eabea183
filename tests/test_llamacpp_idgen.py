"""The batched llama.cpp token generator against llama.cpp's own one-sequence greedy decoding
(tiny exported GGUF and the embedded SmolLM2), and against transformers greedy on the same
weights; plus ``gguf_for``, which finds the GGUF for a model the hf backend loaded."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python

from promptopt_llamacpp.gguf_export import export_hf_llama
from promptopt_llamacpp.idgen import LlamaTokenGenerator
from promptopt_llamacpp.modelfiles import gguf_for

from promptopt.errors import ModelLoadError, PromptoptError

THREADS = 2


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_hf_llama(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf")


class Reference:
    """llama.cpp's own greedy decoding, one sequence at a time, each from an empty cache (with
    the generator's default F32 KV cache, so both compute the same numbers)."""

    def __init__(self, path: Path, kv_type: int = 0) -> None:
        import llama_cpp

        self.llm = llama_cpp.Llama(
            model_path=str(path), n_ctx=1024, n_threads=THREADS, n_threads_batch=THREADS,
            type_k=kv_type, type_v=kv_type, verbose=False,
        )  # fmt: skip

    def greedy(self, ids: Sequence[int], max_new: int, eos: set[int]) -> list[int]:
        self.llm.reset()  # no prefix reuse: the whole input is evaluated
        out: list[int] = []
        for token in self.llm.generate(list(ids), top_k=1, temp=0.0, repeat_penalty=1.0):
            if token in eos or len(out) == max_new:
                break
            out.append(int(token))
            if len(out) == max_new:
                break
        return out

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def close(self) -> None:
        self.llm.close()


@pytest.fixture(scope="module")
def tiny_ref(tiny_gguf: Path) -> Iterator[Reference]:
    ref = Reference(tiny_gguf)
    yield ref
    ref.close()


def tiny_inputs(ref: Reference) -> list[list[int]]:
    """Inputs of different lengths; several share long prefixes (one differs in the last
    token, one in the middle, one is a duplicate, one extends another)."""
    base = ref.tokenize("<|im_start|>user\nThe quick brown fox jumps over the lazy dog. ")
    a = base + ref.tokenize("Use proper logical reasoning.<|im_end|>\n<|im_start|>assistant\n")
    b = [*a[:-3], a[-2], *a[-2:]]  # one token changed near the end
    c = base + ref.tokenize("Statement: The ground is wet. Options: (A) True (B) False")
    return [a, ref.tokenize("Premises: All dogs are animals."), b, c, list(a), c[:-4], a[:2], a[:1]]


def test_batched_equals_one_sequence_greedy_on_tiny_model(
    tiny_gguf: Path, tiny_ref: Reference
) -> None:
    inputs = tiny_inputs(tiny_ref)
    expected = [tiny_ref.greedy(ids, 12, set()) for ids in inputs]
    assert all(len(e) == 12 for e in expected)
    # fewer slots than inputs (continuous batching), a slot each, inputs longer than a batch
    for n_parallel, n_batch in ((3, 512), (8, 512), (4, 8)):
        with LlamaTokenGenerator(
            tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=n_parallel, n_batch=n_batch
        ) as gen:
            assert gen.generate_ids(inputs, max_new_tokens=12, eos_ids=()) == expected
            stats = gen.stats
            assert stats.reused_tokens > 0
            assert stats.prompt_tokens + stats.reused_tokens == sum(map(len, inputs))
            assert stats.generated_tokens == 12 * len(inputs)
            assert stats.decode_calls < 12 * len(inputs)  # rows shared decode calls
            # again: the ids do not change; with a slot per input every prefix is cached
            before = stats.snapshot()
            assert gen.generate_ids(inputs, max_new_tokens=12, eos_ids=()) == expected
            if n_parallel >= len(inputs):
                assert gen.stats.since(before).prompt_tokens <= 2 * len(inputs)


class LogitsRecorder(LlamaTokenGenerator):
    """The generator, keeping a copy of the logits each row's ids were taken from."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[int, list[Any]] = {}

    def _next_id(self, slot: Any, index: int) -> int:
        self.seen.setdefault(slot.row, []).append(self.kv.logits(index).copy())
        return super()._next_id(slot, index)


def test_ids_do_not_depend_on_what_runs_beside_them(tiny_gguf: Path, tiny_ref: Reference) -> None:
    """A row's logits are bitwise the same alone, beside others, and after other calls.
    llama.cpp multiplies F32/F16 weights by a one-row ubatch another way (1e-6 to 2e-5 apart,
    enough to flip a near-tie), so a lone row gets a throw-away companion."""
    import numpy as np

    inputs = tiny_inputs(tiny_ref)[:4]
    with LogitsRecorder(tiny_gguf, n_threads=THREADS, n_ctx=256, n_parallel=4) as gen:
        alone = gen.generate_ids(inputs[:1], max_new_tokens=6, eos_ids=())[0]
        first = gen.seen.pop(0)
        beside = gen.generate_ids(inputs[::-1], max_new_tokens=6, eos_ids=())[3]
        second = gen.seen[3]
    assert alone == beside and len(first) == len(second) == 6
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a, b)


def test_without_prefix_reuse_evaluates_every_token(tiny_gguf: Path, tiny_ref: Reference) -> None:
    inputs = tiny_inputs(tiny_ref)
    inputs.append((inputs[3] * 2)[:17])  # two batches of 8 and one token: chunked 8 + 7 + 2
    expected = [tiny_ref.greedy(ids, 6, set()) for ids in inputs]
    with LlamaTokenGenerator(
        tiny_gguf, n_threads=THREADS, n_ctx=128, n_parallel=4, n_batch=8, reuse_prefixes=False
    ) as gen:
        for _ in range(2):
            assert gen.generate_ids(inputs, max_new_tokens=6, eos_ids=()) == expected
        assert gen.stats.reused_tokens == 0 and gen.stats.kv_copies == 0
        assert gen.stats.prompt_tokens == 2 * sum(map(len, inputs))
        usage = gen.stats.usage()
        assert usage.prompt_tokens == gen.stats.prompt_tokens and usage.requests == 2
        assert usage.forward_passes == gen.stats.decode_calls
        assert usage.generated_tokens == 2 * 6 * len(inputs)


def test_rows_admitted_together_share_their_prefill_call(
    tiny_gguf: Path, tiny_ref: Reference
) -> None:
    """Inputs of similar length that share no prefix are evaluated in one decode call (padded
    to one length), then decoded together: 1 + (new tokens - 1) calls for all of them, and the
    ids of one-sequence greedy decoding. Inputs that share a long prefix with an input being
    evaluated wait a round and copy it instead of evaluating it again."""
    texts = ["The quick brown fox jumps.", "Premises: All dogs are animals.", "Hi there, friend!"]
    texts += ["Statement: the ground is wet.", "Use proper logical reasoning now."]
    inputs = [tiny_ref.tokenize(text) for text in texts]
    assert max(map(len, inputs)) - min(map(len, inputs)) <= 4
    expected = [tiny_ref.greedy(ids, 5, set()) for ids in inputs]
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=128, n_parallel=8) as gen:
        assert gen.generate_ids(inputs, max_new_tokens=5, eos_ids=()) == expected
        assert gen.stats.decode_calls == 1 + 4
        assert gen.stats.padding_tokens == sum(max(map(len, inputs)) - len(i) for i in inputs)
        # two inputs extending the same 12 tokens: the second waits, then copies them
        stem = tiny_ref.tokenize("<|im_start|>user\nThe quick brown fox jumps over the lazy")
        pair = [[*stem, *tiny_ref.tokenize(end)] for end in (" dog today.", " cat again.")]
        before = gen.stats.snapshot()
        assert gen.generate_ids(pair, max_new_tokens=5, eos_ids=()) == [
            tiny_ref.greedy(ids, 5, set()) for ids in pair
        ]
        spent = gen.stats.since(before)
        assert spent.kv_copies == 1 and spent.reused_tokens >= len(stem)


def test_eos_stop_check_and_progress(tiny_gguf: Path, tiny_ref: Reference) -> None:
    inputs = tiny_inputs(tiny_ref)[:4]
    full = [tiny_ref.greedy(ids, 10, set()) for ids in inputs]
    eos = full[0][4]  # a token row 0 produces: it ends row 0 there (and others where it occurs)
    expected = [chain[: chain.index(eos)] if eos in chain else chain for chain in full]
    expected[1] = expected[1][:3]  # the stop check ends row 1 after its third token
    seen: list[tuple[int, int]] = []
    done: list[int] = []

    def stop(row: int, ids: list[int]) -> bool:
        seen.append((row, len(ids)))
        return row == 1 and len(ids) == 3

    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=128, n_parallel=2) as gen:
        got = gen.generate_ids(
            inputs, max_new_tokens=10, eos_ids={eos}, stop_check=stop, on_done=done.append
        )
        assert got == expected and len(got[0]) == full[0].index(eos)
        assert sum(done) == len(inputs)
        assert {row for row, _ in seen} == {i for i, e in enumerate(expected) if e}
        # a failing stop check propagates, and the generator stays usable
        with pytest.raises(ZeroDivisionError):
            gen.generate_ids(inputs, max_new_tokens=10, eos_ids=(), stop_check=lambda r, i: 1 / 0)
        assert gen.generate_ids(inputs, max_new_tokens=10, eos_ids=()) == full
        assert gen.generate_ids([], max_new_tokens=10, eos_ids=()) == []
        assert gen.generate_ids(inputs, max_new_tokens=0, eos_ids=()) == [[]] * len(inputs)


def test_input_errors_are_one_line(tiny_gguf: Path, tmp_path: Path) -> None:
    with LlamaTokenGenerator(tiny_gguf, n_threads=1, n_ctx=64, n_parallel=2) as gen:
        with pytest.raises(PromptoptError, match="input 1 is empty"):
            gen.generate_ids([[1, 2], []], max_new_tokens=4, eos_ids=())
        with pytest.raises(PromptoptError, match="more than the context of 64") as info:
            gen.generate_ids([[1, 2], [5] * 70], max_new_tokens=4, eos_ids=())
        assert "\n" not in str(info.value) and "n_ctx" in str(info.value)
        with pytest.raises(PromptoptError, match="more than the context"):
            gen.generate_ids([[5] * 60], max_new_tokens=8, eos_ids=())
        with pytest.raises(PromptoptError, match="outside the vocabulary"):
            gen.generate_ids([[1, 10**6]], max_new_tokens=4, eos_ids=())
        assert len(gen.generate_ids([[1, 2, 3]], max_new_tokens=4, eos_ids=())[0]) == 4
    with pytest.raises(PromptoptError, match="threads must be at least 1"):
        LlamaTokenGenerator(tiny_gguf, n_threads=0)
    with pytest.raises(ModelLoadError, match="does not exist"):
        LlamaTokenGenerator(tmp_path / "missing.gguf", n_threads=1)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_gguf.read_bytes()[:5000])  # GGUF magic, truncated
    with pytest.raises(ModelLoadError, match=r"llama\.cpp could not load") as load:
        LlamaTokenGenerator(broken, n_threads=1)
    assert "\n" not in str(load.value)


def test_threads_are_explicit_and_logged(tiny_gguf: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="promptopt_llamacpp.idgen"):
        gen = LlamaTokenGenerator(tiny_gguf, n_threads=1, n_threads_batch=2, n_parallel=3)
    settings = gen.describe()
    assert settings["n_threads"] == 1 and settings["n_threads_batch"] == 2
    assert settings["n_parallel"] == 3 and settings["n_gpu_layers"] in (0, -1)
    assert "'n_threads': 1" in caplog.text and "'n_threads_batch': 2" in caplog.text
    assert settings["kv_cells_per_sequence"] == 0  # no KV cache before the first call
    gen.close()
    gen.close()  # idempotent


def test_kv_cache_is_sized_by_the_inputs_and_grows(tiny_gguf: Path, tiny_ref: Reference) -> None:
    short = tiny_inputs(tiny_ref)[:3]
    long = (short[0] * 40)[:600]
    expected = [tiny_ref.greedy(ids, 8, set()) for ids in [*short, long]]
    with LlamaTokenGenerator(tiny_gguf, n_threads=THREADS, n_ctx=4096, n_parallel=2) as gen:
        assert gen.generate_ids(short, max_new_tokens=8, eos_ids=()) == expected[:3]
        assert gen.describe()["kv_cells_per_sequence"] == 512  # not the 4096 allowed
        assert gen.generate_ids([*short, long], max_new_tokens=8, eos_ids=()) == expected
        assert gen.describe()["kv_cells_per_sequence"] == 1024


# ---------------------------------------------------------------------- the embedded SmolLM2


def smollm2_inputs(ref: Reference, shared_data_dir: Path) -> list[list[int]]:
    """Chat inputs from real FOLIO questions: 3 questions under 2 prompts that differ in one
    token (GReaTer's candidates), plus a short one."""
    from promptopt.registry import get_registry

    cls = get_registry().get("task", "folio")
    task = cls(cls.Options(data_dir=str(shared_data_dir)))  # type: ignore[call-arg]
    questions = [ex.question for ex in task.examples("train")[:3]]  # type: ignore[attr-defined]
    inputs = []
    for question in questions:
        for prompt in ("Think step by step.", "Think step by step!"):
            inputs.append(
                ref.tokenize(
                    f"<|im_start|>user\n{question} {prompt}<|im_end|>\n<|im_start|>assistant\n"
                )
            )
    return [*inputs, ref.tokenize("<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n")]


@pytest.mark.slow
def test_smollm2_batched_equals_one_sequence_greedy(smollm2: Path, shared_data_dir: Path) -> None:
    """On the Q4_1 file with an F16 KV cache (llama-cpp-python's defaults), where llama.cpp's
    numbers depend most on how a prompt is split into decode calls: a token evaluated on its own
    inside a prompt moves later logits by ~0.4 and flips these chains."""
    ref = Reference(smollm2, kv_type=1)
    inputs = smollm2_inputs(ref, shared_data_dir)
    eos = {2}  # <|im_end|>
    expected = [ref.greedy(ids, 16, eos) for ids in inputs]
    ref.close()
    with LlamaTokenGenerator(
        smollm2, n_threads=THREADS, n_ctx=512, n_parallel=3, kv_cache_type="f16"
    ) as gen:
        assert eos <= gen.default_eos_ids  # <|im_end|> (and <|endoftext|>)
        assert gen.generate_ids(inputs, max_new_tokens=16, eos_ids=eos) == expected
        assert gen.stats.reused_tokens > 100 * 3  # each question's prefix computed once


@pytest.fixture(scope="module")
def hf_backend() -> Any:
    pytest.importorskip("transformers")
    from promptopt_hf.backend import HFBackend

    return HFBackend(None)


@pytest.mark.slow
def test_smollm2_agrees_with_transformers_greedy(
    smollm2: Path, shared_data_dir: Path, hf_backend: Any
) -> None:
    """On the F32 GGUF of the weights transformers runs, with an F32 KV cache, llama.cpp's
    chains equal transformers' (measured: 7/7; 6/7 over 24 tokens with an F16 cache; the Q4_1
    file itself agrees on ~1/3, since llama.cpp quantizes activations for quantized weights).
    Asserted: every first token, and at least 3 chains in 4 whole."""
    path = gguf_for(hf_backend.source)
    assert path != smollm2 and path.stat().st_size > 4 * smollm2.stat().st_size  # F32
    ref = Reference(smollm2)
    inputs = smollm2_inputs(ref, shared_data_dir)
    ref.close()
    theirs = hf_backend.generate_ids(inputs, max_new_tokens=16)
    with LlamaTokenGenerator(path, n_threads=THREADS, n_ctx=512, n_parallel=4) as gen:
        ours = gen.generate_ids(inputs, max_new_tokens=16, eos_ids=hf_backend.eos_ids)
    assert [o[:1] for o in ours] == [t[:1] for t in theirs]
    same = sum(o == t for o, t in zip(ours, theirs, strict=True))
    assert same >= 0.75 * len(inputs), f"{same}/{len(inputs)} chains identical"


# ---------------------------------------------------------------------- gguf_for


def test_gguf_for_embedded_source_folder_and_errors(
    smollm2: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from promptopt_llamacpp.quantize import file_type

    assert gguf_for(None, dtype="native") == smollm2
    assert gguf_for("smollm2-135m-instruct", dtype="native") == smollm2

    class Source:  # the shape of promptopt_hf's ModelSource
        def __init__(self, gguf: Path | None, folder: Path | None, hub_id: str | None) -> None:
            self.gguf, self.folder, self.hub_id = gguf, folder, hub_id

    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    tiny = gguf_for(Source(None, tiny_model_dir, None))
    assert file_type(tiny) == 0 and tiny.parent == tmp_path / "cache" / "gguf"
    stamp = tiny.stat().st_mtime_ns
    assert gguf_for(str(tiny_model_dir)) == tiny and tiny.stat().st_mtime_ns == stamp  # cached
    half = gguf_for(tiny_model_dir, dtype="f16")
    assert half != tiny and file_type(half) == 1
    assert gguf_for(half, dtype="f16") == half  # already F16: the file itself
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        gguf_for("no-such-org/no-such-model-xyz")
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache"):
        gguf_for(Source(None, None, "no-such-org/no-such-model-xyz"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        gguf_for(tmp_path / "missing.gguf")
