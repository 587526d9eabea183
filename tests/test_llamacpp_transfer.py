"""GGUF export, in-process quantization and ``promptopt transfer`` end to end on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from promptopt_llamacpp.gguf_export import detect_pre_tokenizer, export_hf_llama, permute_qk

from promptopt.errors import ModelLoadError, PromptoptError


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_hf_llama(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf")


# ----------------------------------------------------------------------------- GGUF writer


def rope_rotate_half(x: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """HF rotary: dims (i, i + d/2) form a pair."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    cos, sin = np.cos(angles), np.sin(angles)
    return np.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)


def rope_interleaved(x: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """llama.cpp rotary (normal mode): dims (2i, 2i + 1) form a pair."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = np.cos(angles), np.sin(angles)
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def test_qk_permutation_turns_hf_rotary_into_llamacpp_rotary() -> None:
    rng = np.random.default_rng(0)
    n_head, head_dim, n_embd = 3, 8, 12
    weight = rng.normal(size=(n_head * head_dim, n_embd))
    hidden = rng.normal(size=n_embd)
    angles = 5.0 * 10000.0 ** (-np.arange(head_dim // 2) / (head_dim // 2))
    hf = [rope_rotate_half(h, angles) for h in (weight @ hidden).reshape(n_head, head_dim)]
    ours = (permute_qk(weight, n_head) @ hidden).reshape(n_head, head_dim)
    cpp = [rope_interleaved(h, angles) for h in ours]
    # same attention scores: q.k per head is invariant to the shared permutation of dims
    for h_hf, h_cpp in zip(hf, cpp, strict=True):
        assert sorted(np.round(h_hf, 10)) == sorted(np.round(h_cpp, 10))
        assert np.dot(h_hf, h_hf) == pytest.approx(np.dot(h_cpp, h_cpp))
    # and without the permutation the rotation pairs the wrong dimensions
    wrong = [rope_interleaved(h, angles) for h in (weight @ hidden).reshape(n_head, head_dim)]
    assert not np.allclose(sorted(np.round(wrong[0], 10)), sorted(np.round(hf[0], 10)))


def test_export_writes_llama_metadata_tokenizer_and_tensors(
    tiny_gguf: Path, tiny_model_dir: Path
) -> None:
    from gguf import GGUFReader
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    reader = GGUFReader(str(tiny_gguf))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.architecture"] == "llama"
    assert fields["general.file_type"] == 0
    assert fields["llama.block_count"] == 2
    assert fields["llama.attention.head_count_kv"] == 2
    assert fields["tokenizer.ggml.model"] == "gpt2"
    assert fields["tokenizer.ggml.pre"] == "gpt-2"
    vocab = tokenizer.get_vocab()
    assert fields["tokenizer.ggml.tokens"] == sorted(vocab, key=vocab.__getitem__)
    assert fields["tokenizer.ggml.token_type"][:3] == [3, 3, 3]  # control tokens
    assert fields["tokenizer.ggml.merges"][0] == "h e"
    assert fields["tokenizer.ggml.bos_token_id"] == tokenizer.bos_token_id
    assert fields["tokenizer.ggml.add_bos_token"] is False
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template
    names = {t.name for t in reader.tensors}
    assert {"token_embd.weight", "blk.1.attn_q.weight", "output_norm.weight"} <= names
    assert "output.weight" not in names  # tied embeddings


def test_f16_export_keeps_norms_in_f32(tiny_model_dir: Path, tmp_path: Path) -> None:
    from gguf import GGUFReader

    reader = GGUFReader(str(export_hf_llama(tiny_model_dir, tmp_path / "t.gguf", dtype="f16")))
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == "F16" and types["blk.0.attn_norm.weight"] == "F32"


def test_export_rejects_what_it_cannot_write(tiny_model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="dtype"):
        export_hf_llama(tiny_model_dir, tmp_path / "x.gguf", dtype="q4")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        export_hf_llama(tmp_path, tmp_path / "x.gguf")
    with pytest.raises(ModelLoadError, match="pre-tokenizer"):
        detect_pre_tokenizer({"pre_tokenizer": {"type": "Whitespace"}})
    sequence = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "use_regex": True},
        ],
    }
    assert detect_pre_tokenizer({"pre_tokenizer": sequence}) == "smollm"


# ----------------------------------------------------------------------------- quantization


def test_quantize_tiny_model_in_process_and_cache(tiny_gguf: Path) -> None:
    pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python
    from promptopt_llamacpp.backend import LlamaCppBackend
    from promptopt_llamacpp.quantize import file_type, quantize

    q8 = quantize(tiny_gguf, "q8_0")
    assert file_type(q8.path) == 7 and not q8.requantized
    mtime = q8.path.stat().st_mtime_ns
    assert quantize(tiny_gguf, "q8_0").path == q8.path and q8.path.stat().st_mtime_ns == mtime
    q4 = quantize(q8.path, "q4_0")
    assert q4.requantized and file_type(q4.path) == 2

    prefix, options = "The quick brown fox jumps over", [" the lazy dog", "A"]
    scores = {}
    for label, path in [("f32", tiny_gguf), ("q8_0", q8.path), ("q4_0", q4.path)]:
        backend = LlamaCppBackend(str(path), LlamaCppBackend.Options(kv_cache_type="f32"))
        scores[label] = backend.continuation_logprobs(prefix, options)
        backend.close()
    assert scores["q8_0"] != scores["f32"]
    assert scores["q8_0"] == pytest.approx(scores["f32"], abs=0.5)


def test_parse_quants() -> None:
    from promptopt_llamacpp.quantize import parse_quants

    assert parse_quants(None) == ["orig"]
    assert parse_quants("F16, q8_0,q4_k_m") == ["f16", "q8_0", "q4_k_m"]
    with pytest.raises(PromptoptError, match="q3_x"):
        parse_quants("f16,q3_x")
    with pytest.raises(PromptoptError, match="names no quantization"):
        parse_quants(" , ")


# ----------------------------------------------------------------------------- transfer command


def run_cli(args: list[str]) -> None:
    from promptopt.cli import main

    try:
        main(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    result = {"initial_prompt": "Think step by step.", "best_prompt": "Use logic. Answer now."}
    (run / "result.json").write_text(json.dumps(result))
    return run


def test_transfer_writes_matrix_markdown_heatmap_and_reuses_cache(
    tiny_gguf: Path,
    tiny_model_dir: Path,
    shared_data_dir: Path,
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python
    out = tmp_path / "out"
    args = [
        "transfer",
        "--run",
        str(run_dir),
        "--models",
        f"{tiny_gguf},{tiny_model_dir}",
        "--quants",
        "f16,q8_0",
        "--task",
        "bbh/boolean_expressions",
        "--limit",
        "2",
        "--max-new-tokens",
        "4",
        "--data-dir",
        str(shared_data_dir),
        "--out",
        str(out),
        "--no-progress",
    ]
    run_cli(args)
    matrix: dict[str, Any] = json.loads((out / "transfer.json").read_text())
    assert matrix["prompts"] == {
        "initial": "Think step by step.",
        "optimized": "Use logic. Answer now.",
    }
    assert [(r["model"], r["quant"]) for r in matrix["rows"]] == [
        (tiny_gguf.name, "f16"),
        (tiny_gguf.name, "q8_0"),
        (tiny_model_dir.name, "f16"),
        (tiny_model_dir.name, "q8_0"),
    ]
    for row in matrix["rows"]:
        for column in ("initial", "optimized"):
            cell = row[column]
            assert cell["n"] == 2 and 0 <= cell["ci_low"] <= cell["accuracy"] <= cell["ci_high"]
        assert row["delta"] == pytest.approx(
            row["optimized"]["accuracy"] - row["initial"]["accuracy"]
        )
        assert not row["requantized"]
    # the F32 GGUF quantized to F16 by llama.cpp and the HF folder exported to F16 by our writer
    # are byte-identical, so the content-addressed cache already serves the second one
    rows = matrix["rows"]
    assert rows[0]["sha256"] == rows[2]["sha256"] and rows[2]["initial"]["cache_hits"] == 2
    assert len({row["sha256"] for row in rows}) == 3
    markdown = (out / "transfer.md").read_text()
    assert markdown.count("\n| ") == 5 and "q8_0" in markdown
    assert (out / "transfer.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    capsys.readouterr()
    run_cli(args)  # the rerun is served from the evaluation cache
    rerun = json.loads((out / "transfer.json").read_text())
    assert all(r[c]["cache_hits"] == 2 for r in rerun["rows"] for c in ("initial", "optimized"))


def test_transfer_progress_names_the_prompt_of_every_line(
    smollm2: Path, shared_data_dir: Path, run_dir: Path, tmp_path: Path
) -> None:
    """Each progress line says which prompt it scored, as transfer.md does (a real CLI run)."""
    args = ["transfer", "--run", str(run_dir), "--models", "smollm2", "--task", "bbh/navigate"]
    args += ["--limit", "2", "--max-new-tokens", "4", "--data-dir", str(shared_data_dir)]
    proc = subprocess.run(
        [sys.executable, "-m", "promptopt", *args, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env={**os.environ, "PROMPTOPT_PROGRESS": "0"},  # the cache: this module's fixture
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if ": accuracy " in line]
    assert [line.partition(": accuracy ")[0] for line in lines] == [
        "smollm2 orig, initial prompt",
        "smollm2 orig, optimized prompt",
    ], proc.stderr
    assert "**initial** prompt" in (tmp_path / "out" / "transfer.md").read_text()


def test_transfer_without_result_json_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(["transfer", "--run", str(tmp_path), "--models", "x.gguf", "--task", "folio"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("promptopt: error:") and "result.json" in err and "\n" not in err


def transfer_args(tiny_gguf: Path, shared_data_dir: Path, run_dir: Path, out: Path) -> list[str]:
    return [
        "transfer",
        "--run",
        str(run_dir),
        "--models",
        str(tiny_gguf),
        "--task",
        "bbh/boolean_expressions",
        "--limit",
        "2",
        "--max-new-tokens",
        "4",
        "--data-dir",
        str(shared_data_dir),
        "--out",
        str(out),
        "--no-progress",
    ]


def one_error_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        run_cli(args)
    assert info.value.code == 2
    lines = [ln for ln in capsys.readouterr().err.strip().splitlines() if "accuracy" not in ln]
    assert len(lines) == 1 and lines[0].startswith("promptopt: error:"), lines
    return lines[0]


def test_transfer_checks_out_before_any_work(
    tiny_gguf: Path,
    shared_data_dir: Path,
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("llama_cpp")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = one_error_line(
        capsys, transfer_args(tiny_gguf, shared_data_dir, run_dir, blocker / "out")
    )
    assert "--out" in line and str(blocker / "out") in line
    assert not (tmp_path / "cache" / "evals").exists()  # nothing evaluated


def test_transfer_write_failure_names_the_file_and_keeps_the_cache(
    tiny_gguf: Path,
    shared_data_dir: Path,
    run_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("llama_cpp")
    out = tmp_path / "out"
    (out / "transfer.json").mkdir(parents=True)  # in the way of the first report file
    line = one_error_line(capsys, transfer_args(tiny_gguf, shared_data_dir, run_dir, out))
    assert "transfer.json" in line and "cached" in line
    run_cli(transfer_args(tiny_gguf, shared_data_dir, run_dir, tmp_path / "ok"))
    rows = json.loads((tmp_path / "ok" / "transfer.json").read_text())["rows"]
    assert all(r[c]["cache_hits"] == 2 for r in rows for c in ("initial", "optimized"))
