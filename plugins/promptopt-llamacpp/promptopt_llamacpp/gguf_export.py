"""Write a llama-architecture GGUF from a Hugging Face Llama folder (safetensors + tokenizer.json).

Lets the white-box model a run optimized on be evaluated (and quantized) in llama.cpp. Uses the
``gguf`` package's GGUFWriter; the q/k projection rows are permuted into llama.cpp's rotary
layout, the BPE tokenizer is written gpt2-style (token list, types, merges, pre-tokenizer name).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from promptopt.errors import ModelLoadError

#: llama.cpp token types (``llama_token_type``).
TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED = 1, 3, 4, 5

EXPORT_DTYPES = ("f32", "f16")


def permute_qk(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Reorder q/k projection rows from HF's rotate-half layout to llama.cpp's interleaved pairs.

    HF keeps each head's rotary dimensions as [first half | second half]; llama.cpp rotates
    adjacent pairs, so rows (i, i + d/2) become (2i, 2i + 1) within every head.
    """
    rows = weights.shape[0]
    head_dim = rows // n_head
    return (
        weights.reshape(n_head, 2, head_dim // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(
            f"{path.name} not found in {str(path.parent)!r}",
            hint="pass a Hugging Face model folder saved with save_pretrained",
        ) from None
    except ValueError as exc:
        raise ModelLoadError(f"{str(path)!r} is not valid JSON: {exc}", hint="re-save it") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{str(path)!r} is not a JSON object", hint="re-save it")
    return data


def detect_pre_tokenizer(tokenizer_json: dict[str, Any]) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenization regex (``tokenizer.ggml.pre``)."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [p.get("type") for p in parts]
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"
    if kinds and kinds[0] == "Split":
        pattern = str((parts[0].get("pattern") or {}).get("Regex", ""))
        if "(?i:'s|'t|'re|'ve|'m|'ll|'d)" in pattern and "\\p{N}{1,3}" in pattern:
            return "llama-bpe"
    raise ModelLoadError(
        f"unrecognized pre-tokenizer {kinds or 'none'} in tokenizer.json",
        hint="pass pre='<llama.cpp pre-tokenizer name>' (e.g. gpt-2, llama-bpe, smollm)",
    )


def _merges(model: dict[str, Any]) -> list[str]:
    return [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]


def _vocab(tokenizer_json: dict[str, Any], vocab_size: int) -> tuple[list[str], list[int]]:
    """Token strings and llama.cpp token types, indexed by id, padded to ``vocab_size``."""
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "BPE":
        raise ModelLoadError(
            f"tokenizer model {model.get('type')!r} is not supported by the GGUF export",
            hint="only byte-level BPE (gpt2-style) tokenizers are exported",
        )
    by_id: dict[int, tuple[str, int]] = {i: (t, TOKEN_NORMAL) for t, i in model["vocab"].items()}
    for added in tokenizer_json.get("added_tokens", []):
        kind = TOKEN_CONTROL if added.get("special") else TOKEN_USER_DEFINED
        by_id[int(added["id"])] = (added["content"], kind)
    size = max(vocab_size, max(by_id) + 1)
    tokens, types = [], []
    for i in range(size):
        text, kind = by_id.get(i, (f"[PAD{i}]", TOKEN_UNUSED))
        tokens.append(text)
        types.append(kind)
    return tokens, types


def _chat_template(model_dir: Path, tok_config: dict[str, Any]) -> str | None:
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = tok_config.get("chat_template")
    return template if isinstance(template, str) else None


def _token_id(tokens: list[str], value: Any) -> int | None:
    if isinstance(value, dict):
        value = value.get("content")
    if isinstance(value, str) and value in tokens:
        return tokens.index(value)
    return None


def _adds_bos(model_dir: Path, bos_id: int | None) -> bool:
    """Whether the HF tokenizer puts BOS in front of plain text (its post-processor decides)."""
    if bos_id is None:
        return False
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode("a").ids
    return bool(ids) and ids[0] == bos_id


def _rope_theta(config: dict[str, Any]) -> float:
    params = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or {}
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind != "default":
        raise ModelLoadError(
            f"rope scaling {kind!r} is not supported by the GGUF export",
            hint="export a model with default rotary embeddings, or use llama.cpp's converter",
        )
    return float(params.get("rope_theta") or config.get("rope_theta") or 10000.0)


def _hf_tensors(model_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 array) for every tensor in the folder's safetensors files."""
    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(
            f"no .safetensors files in {str(model_dir)!r}",
            hint="save the model with save_pretrained(safe_serialization=True)",
        )
    import torch
    from safetensors import safe_open

    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open has keys(), no __iter__
                yield name, handle.get_tensor(name).to(torch.float32).numpy()


def export_hf_llama(
    model_dir: str | Path, out_path: str | Path, *, dtype: str = "f32", pre: str | None = None
) -> Path:
    """Write ``model_dir`` (an HF ``LlamaForCausalLM`` folder) as a GGUF file at ``out_path``.

    ``dtype`` is ``f32`` or ``f16`` for the 2-D weights (norms always stay F32); ``pre`` names
    llama.cpp's pre-tokenizer when it cannot be detected from tokenizer.json.
    """
    import gguf

    model_dir, out_path = Path(model_dir), Path(out_path)
    if dtype not in EXPORT_DTYPES:
        raise ModelLoadError(f"unknown GGUF export dtype {dtype!r}", hint="use f32 or f16")
    config = _read_json(model_dir / "config.json")
    if config.get("model_type") != "llama":
        raise ModelLoadError(
            f"model type {config.get('model_type')!r} in {str(model_dir)!r} is not llama",
            hint="the GGUF export writes llama-architecture models only",
        )
    tok_json = _read_json(model_dir / "tokenizer.json")
    tok_config = _read_json(model_dir / "tokenizer_config.json")

    n_embd = int(config["hidden_size"])
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    n_layer = int(config["num_hidden_layers"])
    head_dim = int(config.get("head_dim") or n_embd // n_head)
    tokens, types = _vocab(tok_json, int(config["vocab_size"]))
    bos_id = config.get("bos_token_id")
    if bos_id is None:
        bos_id = _token_id(tokens, tok_config.get("bos_token"))
    eos_id = config.get("eos_token_id")
    if isinstance(eos_id, list):
        eos_id = eos_id[0] if eos_id else None
    if eos_id is None:
        eos_id = _token_id(tokens, tok_config.get("eos_token"))
    pad_id = config.get("pad_token_id")
    if pad_id is None:
        pad_id = _token_id(tokens, tok_config.get("pad_token"))

    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out_path), "llama")
    writer.add_name(model_dir.name)
    writer.add_context_length(int(config.get("max_position_embeddings") or 4096))
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    if head_dim != n_embd // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps") or 1e-5))
    writer.add_vocab_size(len(tokens))
    file_type = gguf.LlamaFileType.ALL_F32 if dtype == "f32" else gguf.LlamaFileType.MOSTLY_F16
    writer.add_file_type(file_type)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre or detect_pre_tokenizer(tok_json))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(_merges(tok_json["model"]))
    if bos_id is not None:
        writer.add_bos_token_id(int(bos_id))
    if eos_id is not None:
        writer.add_eos_token_id(int(eos_id))
    if pad_id is not None:
        writer.add_pad_token_id(int(pad_id))
    writer.add_add_bos_token(_adds_bos(model_dir, bos_id))
    writer.add_add_eos_token(False)
    template = _chat_template(model_dir, tok_config)
    if template:
        writer.add_chat_template(template)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    tied = bool(config.get("tie_word_embeddings"))
    for hf_name, array in _hf_tensors(model_dir):
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ModelLoadError(
                f"tensor {hf_name!r} has no llama GGUF name", hint="is this a plain Llama model?"
            )
        if hf_name.endswith("q_proj.weight"):
            array = permute_qk(array, n_head)
        elif hf_name.endswith("k_proj.weight"):
            array = permute_qk(array, n_head_kv)
        if dtype == "f16" and array.ndim > 1:
            array = array.astype(np.float16)
        writer.add_tensor(name, np.ascontiguousarray(array))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path
