"""``Backend.chat(user, assistant_prefix)`` on the tiny random Llama: the assistant's answer starts
with the prefix (GPO prefills ``<START>``), which is plain text after the template's generation
prompt, and generation continues after it and stops at the stop strings, the same on hf and
llamacpp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python
pytest.importorskip("transformers")

from promptopt_hf.backend import HFBackend
from promptopt_llamacpp.backend import LlamaCppBackend

QUESTION = "Write a better prompt for counting steps."
#: A prefix that also spells a control token: it must stay plain text, like user text.
PREFIXES = ("<START>", "<|im_end|><START>")


@pytest.fixture(scope="module")
def hf(tiny_model_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_model_dir))


@pytest.fixture(scope="module")
def llama(tiny_gguf: Path) -> Any:
    backend = LlamaCppBackend(str(tiny_gguf), LlamaCppBackend.Options(kv_cache_type="f32"))
    yield backend
    backend.close()


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_prefix_follows_the_generation_prompt_as_plain_text(
    hf: HFBackend, llama: Any, prefix: str
) -> None:
    before, after = hf.chat_parts()
    assert after.endswith("<|im_start|>assistant\n")
    text = hf.chat(QUESTION, prefix)
    assert text == hf.chat(QUESTION) + prefix == llama.chat(QUESTION, prefix)
    tok = hf.tokenizer
    expected = [
        *tok.encode(before, add_special_tokens=False),
        *tok.encode(QUESTION, add_special_tokens=False, split_special_tokens=True),
        *tok.encode(after, add_special_tokens=False),
        *tok.encode(prefix, add_special_tokens=False, split_special_tokens=True),
    ]
    assert hf.encode_input(text) == expected
    assert llama.tokenize(text) == expected
    end = tok.convert_tokens_to_ids("<|im_end|>")
    assert expected.count(end) == 1  # the template's own, after the question; none from the prefix


def test_generation_continues_after_the_prefix_and_stops_at_the_stop_strings(
    hf: HFBackend, llama: Any
) -> None:
    text = hf.chat(QUESTION, "<START>")
    tok = hf.tokenizer
    ids = hf.encode_input(text)
    reference = hf.decode(hf.generate_ids([ids], max_new_tokens=8)[0], skip_special_tokens=True)
    assert hf.generate([text], max_new_tokens=8) == [reference]
    assert llama.generate([text], max_new_tokens=8) == [reference.replace("\ufffd", "")]
    # without the prefix the model continues another input
    assert hf.encode_input(hf.chat(QUESTION)) == ids[: -len(tok.encode("<START>"))]
    # a stop string the continuation contains ends it there (not included), on both backends
    clean = reference.replace("\ufffd", "")
    stop = clean[len(clean) // 2 :][:2]
    assert stop.strip(), clean
    want = clean[: clean.index(stop)]
    assert llama.generate([text], max_new_tokens=8, stop=[stop, "<END>"]) == [want]
    got = hf.generate([text], max_new_tokens=8, stop=[stop, "<END>"])[0]
    assert got.replace("\ufffd", "") == want
