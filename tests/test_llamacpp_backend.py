"""The llama.cpp backend on real GGUF files: the tiny random Llama exported by our GGUF writer
(checked against transformers on the HF folder) and the embedded SmolLM2-135M-Instruct. The
Backend contract every backend keeps is checked by tests/test_kit_backends.py."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python

from promptopt_llamacpp.backend import LlamaCppBackend, LlamaCppOptions
from promptopt_llamacpp.gguf_export import export_hf_llama

from promptopt.errors import ModelLoadError, PromptoptError

#: |llama.cpp - transformers| per summed continuation log-probability, tiny model in F32:
#: with an F32 KV cache both compute in float32 (observed ~1e-6) ...
F32_TOL = 1e-4
#: ... and with llama.cpp's default F16 KV cache (observed ~3e-3).
F16_KV_TOL = 2e-2
#: SmolLM2: the Q4_1 file dequantized to F32 by llama.cpp's quantizer vs transformers'
#: float32 dequantization of the same file: the same numbers (observed < 6e-5) ...
SMOLLM2_F32_TOL = 1e-3
#: ... while llama.cpp running the Q4_1 file directly multiplies quantized blocks (activations
#: rounded to Q8_1), so per-option sums differ more (observed up to 0.46 on 3-token options).
SMOLLM2_Q4_TOL = 0.75

CONTINUATIONS = [" the lazy dog", "A", " B", "$42$", " True"]


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def hf_tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype="float32").eval()
    return model, AutoTokenizer.from_pretrained(tiny_model_dir)


def hf_continuation_logprob(model: Any, prefix_ids: list[int], cont_ids: list[int]) -> float:
    import torch

    full = prefix_ids + cont_ids
    with torch.no_grad():
        logits = model(torch.tensor([full])).logits[0].double()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[p - 1, full[p]] for p in range(len(prefix_ids), len(full))))


def compare_logprobs(backend: LlamaCppBackend, model: Any, prefix: str) -> list[float]:
    """Absolute differences between the backend's and transformers' option log-probs."""
    ours = backend.continuation_logprobs(prefix, CONTINUATIONS)
    prefix_ids = backend.tokenize(prefix)
    theirs = [
        hf_continuation_logprob(model, prefix_ids, backend.continuation_tokens(prefix, c))
        for c in CONTINUATIONS
    ]
    assert all(math.isfinite(x) and x < 0 for x in ours)
    return [abs(a - b) for a, b in zip(ours, theirs, strict=True)]


def test_tokenization_matches_transformers(tiny_gguf: Path, hf_tiny: tuple[Any, Any]) -> None:
    _, tokenizer = hf_tiny
    backend = LlamaCppBackend(str(tiny_gguf))
    for text in ["The quick brown fox, 1,000 clips.", backend.chat("Is 48 / 2 = 24? Yes or No?")]:
        assert backend.tokenize(text) == tokenizer(text, add_special_tokens=False).input_ids
    backend.close()


def test_chat_template_matches_transformers(tiny_gguf: Path, hf_tiny: tuple[Any, Any]) -> None:
    _, tokenizer = hf_tiny
    backend = LlamaCppBackend(str(tiny_gguf))
    messages = [{"role": "user", "content": "Question?\nUse logic."}]
    expected = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert backend.chat("Question?\nUse logic.") == expected
    plain = LlamaCppBackend(str(tiny_gguf), LlamaCppBackend.Options(template="plain"))
    assert plain.chat("Question?") == "Question?\n"
    backend.close()
    plain.close()


def test_base_model_without_chat_template_uses_plain_template(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import shutil

    base_dir = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base_dir)
    (base_dir / "chat_template.jinja").unlink()
    base = export_hf_llama(base_dir, tmp_path / "base.gguf")
    auto = LlamaCppBackend(str(base))
    assert auto.chat("Q: 2+2?") == "Q: 2+2?\n"
    assert auto.fingerprint()["template_kind"] == "plain"
    custom = LlamaCppBackend(str(base), LlamaCppBackend.Options(plain_template="Q: {user}\nA:"))
    assert custom.chat("2+2?") == "Q: 2+2?\nA:"
    with pytest.raises(PromptoptError, match="no chat template"):
        LlamaCppBackend(str(base), LlamaCppBackend.Options(template="chat"))
    auto.close()
    custom.close()


@pytest.mark.parametrize(("kv", "tol"), [("f32", F32_TOL), ("f16", F16_KV_TOL)])
def test_logprobs_match_transformers_on_tiny_model(
    tiny_gguf: Path, hf_tiny: tuple[Any, Any], kv: Literal["f32", "f16"], tol: float
) -> None:
    model, _ = hf_tiny
    backend = LlamaCppBackend(str(tiny_gguf), LlamaCppBackend.Options(kv_cache_type=kv))
    for prefix in ["The quick brown fox jumps over", backend.chat("All dogs are animals.")]:
        diffs = compare_logprobs(backend, model, prefix)
        assert max(diffs) < tol, diffs
    backend.close()


def test_greedy_text_matches_transformers(tiny_gguf: Path, hf_tiny: tuple[Any, Any]) -> None:
    """Greedy continuations agree; prompts whose transformers decode is not clean text (the
    random model emits partial UTF-8 bytes) are skipped, at least two must remain."""
    import torch

    model, tokenizer = hf_tiny
    backend = LlamaCppBackend(str(tiny_gguf), LlamaCppBackend.Options(kv_cache_type="f32"))
    compared = 0
    for text in [
        "Today is Christmas Eve of",
        "The quick brown fox jumps over",
        "Therefore, the final answer is",
        "Premises: All dogs are animals.",
        "Sort the following words alphabetically:",
        backend.chat("What is 48 / 2?"),
    ]:
        ids = tokenizer(text, add_special_tokens=False).input_ids
        with torch.no_grad():
            out = model.generate(
                torch.tensor([ids]),
                max_new_tokens=8,
                do_sample=False,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        expected = tokenizer.decode(out[0][len(ids) :], skip_special_tokens=True)
        if "\ufffd" in expected or not expected.strip():
            continue
        assert backend.generate([text], max_new_tokens=8) == [expected]
        compared += 1
    assert compared >= 2
    backend.close()


def test_option_scoring_picks_highest_logprob(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(str(tiny_gguf))
    prefix = backend.chat("not ( True ) and ( False ) is") + "The answer is $"
    options = ["A", "B", "C", " True", " False"]
    scores = backend.continuation_logprobs(prefix, options)
    assert len(set(scores)) == len(scores)
    # each option alone (fresh state, no prefix reuse) gives the same numbers
    fresh = LlamaCppBackend(str(tiny_gguf))
    singles = [fresh.continuation_logprobs(prefix, [o])[0] for o in reversed(options)][::-1]
    assert singles == pytest.approx(scores, abs=1e-5)
    best = max(range(len(options)), key=lambda i: scores[i])
    assert options[best] == options[scores.index(max(scores))]
    backend.close()
    fresh.close()


def test_prefix_reuse_after_generation(tiny_gguf: Path) -> None:
    """Scores stay right when the KV cache holds a longer, different sequence (after generate)."""
    backend = LlamaCppBackend(str(tiny_gguf))
    prefix = backend.chat("Question: Natalia sold clips.")
    before = backend.continuation_logprobs(prefix, CONTINUATIONS)
    backend.generate([prefix + "48 / 2"], max_new_tokens=6)
    backend.continuation_logprobs("Sort the following words", ["A", " apple"])
    assert backend.continuation_logprobs(prefix, CONTINUATIONS) == pytest.approx(before, abs=1e-5)
    backend.close()


def test_fingerprint_names_file_quantization_sampling_template(tiny_gguf: Path) -> None:
    from promptopt_llamacpp.modelfiles import file_sha256

    backend = LlamaCppBackend(str(tiny_gguf))
    fp = backend.fingerprint()
    assert fp["model_sha256"] == file_sha256(tiny_gguf)
    assert fp["quantization"] == "all F32"
    assert fp["sampling"] == {"temperature": 0.0, "seed": 0}
    # prompt evaluation uses the generation thread count unless told otherwise
    assert backend.llm.context_params.n_threads_batch == backend.n_threads >= 1
    other = LlamaCppBackend(str(tiny_gguf), LlamaCppBackend.Options(template="plain", seed=3))
    fp2 = other.fingerprint()
    assert fp2["template"] != fp["template"] and fp2["sampling"]["seed"] == 3
    backend.close()
    other.close()


@pytest.mark.parametrize("kind", ["missing", "truncated", "not-gguf"])
def test_bad_gguf_is_one_line_model_load_error(tiny_gguf: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.gguf"
    if kind == "truncated":
        path.write_bytes(tiny_gguf.read_bytes()[:5000])
    elif kind == "not-gguf":
        path.write_text('{"model_type": "llama"}')
    with pytest.raises(ModelLoadError) as info:
        LlamaCppBackend(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert info.value.hint


def test_cli_reports_bad_gguf_in_one_line(tmp_path: Path, shared_data_dir: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    main = "import sys; from promptopt.cli import main; main(sys.argv[1:])"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            main,
            "eval",
            "--task",
            "bbh/boolean_expressions",
            "--backend",
            "llamacpp",
            "--model",
            str(bad),
            "--prompt",
            "x",
            "--limit",
            "1",
            "--data-dir",
            str(shared_data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("promptopt: error: llama.cpp could not load")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("template", ["Q: {foo}", "no placeholder"])
def test_cli_refuses_a_bad_plain_template_in_one_line(template: str, shared_data_dir: Path) -> None:
    """The same check as the hf and openai backends: ``{user}`` exactly once, nothing else."""
    main = "import sys; from promptopt.cli import main; main(sys.argv[1:])"
    args = ["eval", "--task", "bbh/boolean_expressions", "--backend", "llamacpp"]
    args += ["--model", "smollm2", "--prompt", "x", "--limit", "1"]
    args += ["--data-dir", str(shared_data_dir), "-o", f"plain_template={template}"]
    proc = subprocess.run(
        [sys.executable, "-c", main, *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("promptopt: error: option backend.plain_template=")
    assert "{user}" in lines[-1] and "Traceback" not in proc.stderr
    with pytest.raises(ValueError, match="plain_template"):
        LlamaCppOptions(plain_template=template)


def test_plugin_import_does_not_load_llama_cpp_or_torch() -> None:
    code = (
        "import sys, promptopt_llamacpp.plugin as p\n"
        "from promptopt.cli import build_app\n"
        "build_app()\n"
        "from promptopt.registry import get_registry\n"
        "assert get_registry().get('backend', 'llamacpp').__name__ == 'LlamaCppBackend'\n"
        "print('llama_cpp' in sys.modules, 'torch' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- embedded SmolLM2


@pytest.mark.slow
def test_smollm2_logprobs_match_transformers(
    smollm2: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from promptopt_llamacpp.quantize import quantize
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        smollm2.parent, gguf_file=smollm2.name, dtype="float32"
    ).eval()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path_factory.mktemp("smollm2-f32")))
        f32 = quantize(smollm2, "f32")
    assert f32.requantized
    for path, tol in [(f32.path, SMOLLM2_F32_TOL), (smollm2, SMOLLM2_Q4_TOL)]:
        backend = LlamaCppBackend(str(path), LlamaCppBackend.Options(kv_cache_type="f32"))
        for prefix in [
            backend.chat("not ( True ) and ( False ) is") + "Therefore, the answer is $",
            "The quick brown fox jumps over",
        ]:
            diffs = compare_logprobs(backend, model, prefix)
            assert max(diffs) < tol, (path.name, diffs)
        backend.close()
    f32.path.unlink()


@pytest.mark.slow
def test_smollm2_generates_and_scores(smollm2: Path) -> None:
    backend = LlamaCppBackend(str(smollm2))
    assert backend.fingerprint()["quantization"] == "Q4_1"
    text = backend.generate([backend.chat("What is 2+2? Answer briefly.")], max_new_tokens=12)[0]
    assert "4" in text
    prefix = backend.chat("What is 2+2?") + "The answer is "
    scores = backend.continuation_logprobs(prefix, ["4", "7"])
    assert scores[0] > scores[1]
    backend.close()


def test_a_sample_does_not_depend_on_what_the_cache_holds(tiny_gguf: Path) -> None:
    """llama-cpp-python reuses the cached prefix; with the whole prompt cached it would evaluate
    the last prompt token alone, multiplied another way, and the tiny model's near-uniform
    sampling picked another token (seen with the F32 KV cache). The seeded-sampling contract
    itself is checked by tests/test_kit_backends.py."""
    kwargs: dict[str, Any] = {"max_new_tokens": 8, "temperature": 1.0, "top_p": 0.95, "n": 1}
    backend = LlamaCppBackend(str(tiny_gguf), LlamaCppOptions(kv_cache_type="f32"))
    text = backend.chat("Is 48 / 2 = 24? Think step by step, then answer Yes or No.")
    fresh = backend.generate([text], seed=7, **kwargs)
    for seed in range(6):  # the same prompt, fully cached, before every call
        backend.generate([text], seed=seed, **{**kwargs, "n": 2})
        assert backend.generate([text], seed=7, **kwargs) == fresh
    backend.close()


def test_usage_counts_what_the_batched_engine_evaluates(tiny_gguf: Path) -> None:
    backend = LlamaCppBackend(str(tiny_gguf), LlamaCppOptions())
    texts = [backend.chat("hello there"), backend.chat("sort these words")]
    before = backend.usage.snapshot()
    backend.generate(texts, max_new_tokens=4)
    spent = backend.usage.since(before)
    # the batched engine counts the prompt tokens it evaluated (a shared prefix only once)
    assert spent.requests == 1 and 0 < spent.prompt_tokens <= sum(
        len(backend.tokenize(t)) for t in texts
    )
    assert 0 < spent.generated_tokens <= 8
    backend.close()


@pytest.mark.parametrize("stop", [(), ("\n",), (".",)])
def test_batched_engine_generates_what_one_at_a_time_does(smollm2: Path, stop: tuple) -> None:
    """The default batched engine gives the very texts ``create_completion`` gives, one by one."""
    questions = [
        "What is 2+2? Answer briefly.",
        "Name three colors.",
        "Is the sky green? Think step by step, then answer Yes or No.",
        "Sort these words: pear, apple, fig.",
        "Write one sentence about rivers.",
    ]
    batched = LlamaCppBackend(str(smollm2), LlamaCppOptions(parallel=3))
    single = LlamaCppBackend(str(smollm2), LlamaCppOptions(engine="single"))
    texts = [batched.chat(q) for q in questions]
    assert single.chat(questions[0]) == texts[0]
    before = batched.usage.snapshot()
    got = batched.generate(texts, max_new_tokens=40, stop=stop, n=2)
    want = single.generate(texts, max_new_tokens=40, stop=stop)
    assert got[0::2] == got[1::2] == want
    spent = batched.usage.since(before)
    assert spent.generated_tokens > 0 and spent.forward_passes < spent.generated_tokens
    assert batched.fingerprint()["engine"] == "batched"
    assert single.fingerprint()["engine"] == "single"
    batched.close()
    single.close()


@pytest.mark.slow
def test_float_weights_generate_what_transformers_generates(smollm2: Path) -> None:
    """``-o weights=f32`` runs the embedded model's weights dequantized, as transformers loads
    them: greedy texts then match the hf backend's (on the Q4_1 file they often do not)."""
    from promptopt_hf.backend import HFBackend

    f32 = LlamaCppBackend(None, LlamaCppOptions(weights="f32"))
    assert f32.path != smollm2 and "F32" in f32.quantization()
    hf = HFBackend(None, HFBackend.Options())
    questions = ["What is 2+2? Answer briefly.", "Name three colors.", "Is fire cold? Yes or No."]
    texts = [f32.chat(q) for q in questions]
    assert f32.generate(texts, max_new_tokens=24) == hf.generate(texts, max_new_tokens=24)
    f32.close()
