"""The hf backend on the tiny random Llama: loading, templates, batched greedy, scoring. The
Backend contract every backend keeps is checked by tests/test_kit_backends.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptopt.errors import ModelLoadError
from promptopt.whitebox import WhiteBoxBackend

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from promptopt_hf.backend import HFBackend, HFOptions  # noqa: E402

QUESTIONS = [
    "hi",
    "The quick brown fox jumps over the lazy dog, reasons carefully, and explains its answer.",
    "48 / 2 = 24. 48 + 24 = 72.",
    "Sort the following words alphabetically: apple banana cherry.",
    "Premises: All dogs are animals.",
]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> HFBackend:
    return HFBackend(str(tiny_model_dir), HFOptions(batch_size=2))


def test_loads_white_box(backend: HFBackend, tiny_model_dir: Path) -> None:
    assert isinstance(backend, WhiteBoxBackend)
    assert backend.model_id == str(tiny_model_dir.resolve())
    assert backend.device.type == "cpu" and backend.dtype == torch.float32
    assert not backend.model.training
    assert all(not p.requires_grad for p in backend.model.parameters())
    assert backend.embedding_matrix.shape == (len(backend.tokenizer), 64)


def test_chat_template_and_parts(backend: HFBackend) -> None:
    text = backend.chat("What is 2+2?")
    assert text == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    before, after = backend.chat_parts("What is 2+2?")
    assert before + "What is 2+2?" + after == text


def test_batched_generation_equals_sequential(backend: HFBackend) -> None:
    texts = [backend.chat(q) for q in QUESTIONS]
    batched = backend.generate_ids(texts, max_new_tokens=12)
    alone = [backend.generate_ids([t], max_new_tokens=12)[0] for t in texts]
    assert batched == alone
    assert len({len(backend.encode(t)) for t in texts}) > 1  # padding really happened
    assert backend.generate(texts, max_new_tokens=12) == [
        backend.decode(ids, skip_special_tokens=True) for ids in alone
    ]


def test_continuation_logprobs_match_manual_forward(backend: HFBackend) -> None:
    prefix = backend.chat("Yes or No?")
    conts = ["Yes", " No", "True or False", ""]
    got = backend.continuation_logprobs(prefix, conts)
    for cont, value in zip(conts, got, strict=True):
        p_ids, c_ids = backend.encode(prefix), backend.encode(cont)
        ids = torch.tensor([p_ids + c_ids])
        with torch.no_grad():
            logprobs = backend.model(input_ids=ids).logits[0].float().log_softmax(-1)
        manual = sum(logprobs[len(p_ids) - 1 + j, tok].item() for j, tok in enumerate(c_ids))
        assert value == pytest.approx(manual, abs=1e-4)
    assert got[-1] == 0.0 and got[2] < got[0]


def test_missing_path_is_a_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        HFBackend(str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in str(info.value)
    assert info.value.hint


def test_generate_ids_accepts_token_ids(backend: HFBackend) -> None:
    texts = [backend.chat(q) for q in QUESTIONS[:3]]
    from_text = backend.generate_ids(texts, max_new_tokens=6)
    from_ids = backend.generate_ids([backend.encode(t) for t in texts], max_new_tokens=6)
    assert from_ids == from_text
    assert all(len(ids) == 6 for ids in from_text)
    assert backend.generate([], max_new_tokens=3) == []
    assert backend.generate_ids(texts[:1], max_new_tokens=0) == [[]]


def test_generation_stops_at_eos(backend: HFBackend) -> None:
    texts = [backend.chat(q) for q in QUESTIONS]
    full = backend.generate_ids(texts[2:3], max_new_tokens=8)[0]
    third = full[2]
    original = backend.eos_ids
    backend._eos = frozenset({third})
    try:
        batched = backend.generate_ids(texts, max_new_tokens=8)
        alone = [backend.generate_ids([t], max_new_tokens=8)[0] for t in texts]
    finally:
        backend._eos = original
    assert batched[2] == full[: full.index(third)]
    # Rows that end early leave the batch; the others must not change.
    assert batched == alone
    assert len({len(ids) for ids in batched}) > 1


class _CountingProgress:
    """A Progress stand-in that records the bars opened and the units reported."""

    def __init__(self) -> None:
        self.bars: list[tuple[int | None, str, str]] = []
        self.done = 0

    def bar(self, total: int | None, desc: str, unit: str = "it", initial: int = 0):
        from contextlib import contextmanager

        outer = self

        class _Bar:
            def update(self, n: int = 1) -> None:
                outer.done += n

            def set_postfix_str(self, s: str, refresh: bool = True) -> None:
                return None

        @contextmanager
        def opened():
            self.bars.append((total, desc, unit))
            yield _Bar()

        return opened()


def test_progress_bar_counts_sequences(backend: HFBackend) -> None:
    progress = _CountingProgress()
    texts = [backend.chat(q) for q in QUESTIONS]
    backend.generate(texts, max_new_tokens=2, progress=progress)  # type: ignore[arg-type]
    assert progress.bars == [(5, "generate", "seq")]
    assert progress.done == 5


def test_plain_template_without_chat_template(tiny_model_dir: Path) -> None:
    base = HFBackend(str(tiny_model_dir))
    chat_fp = base.fingerprint()
    base.tokenizer.chat_template = None
    base._fingerprint = None
    assert base.chat("2+2?") == "2+2?\n"
    assert base.chat_parts() == ("", "\n")
    assert base.fingerprint()["template_kind"] == "plain"
    assert base.fingerprint()["template"] != chat_fp["template"]
    assert len(base.generate([base.chat("2+2?")], max_new_tokens=3)[0]) > 0


def test_template_options(tiny_model_dir: Path) -> None:
    plain = HFBackend(
        str(tiny_model_dir), HFOptions(template="plain", plain_template="Q: {user}\nA:")
    )
    assert plain.chat("2+2?") == "Q: 2+2?\nA:"
    assert plain.chat_parts("2+2?") == ("Q: ", "\nA:")
    with pytest.raises(ValueError, match="exactly once"):
        HFOptions(plain_template="no placeholder")
    with pytest.raises(ValueError, match="only use"):
        HFOptions(plain_template="{user} {other}")


def test_bos_is_added_only_when_the_tokenizer_wants_it(backend: HFBackend) -> None:
    text = backend.chat("hi")
    assert backend.encode_input(text) == backend.encode(text)  # ChatML: no BOS by default
    bos = backend.tokenizer.convert_tokens_to_ids("<|im_start|>")
    backend._bos_prefix = bos
    try:
        assert backend.encode_input("plain text") == [bos, *backend.encode("plain text")]
        assert backend.encode_input(text) == backend.encode(text)  # already starts with it
    finally:
        backend._bos_prefix = None


def test_chat_parts_with_templates_that_change_the_content(tiny_model_dir: Path) -> None:
    from promptopt.errors import PromptoptError

    other = HFBackend(str(tiny_model_dir))
    other.tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['content'] | trim }}<|im_end|>{% endfor %}"
    )
    assert other.chat_parts("  hi  ") == ("<|im_start|>", "<|im_end|>")  # located after trim
    other.tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | lower }}{% endfor %}"
    assert other.chat("Hi") == "hi"
    with pytest.raises(PromptoptError, match="drops or rewrites"):
        other.chat_parts("Hi")
    other.tokenizer.chat_template = "{% for m in messages %}<|im_start|>{% endfor %}"
    with pytest.raises(PromptoptError, match="drops or rewrites"):
        other.chat_parts()
    other.tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['content'] | replace('x', 'y') }}{% endfor %}"
    )
    assert other.chat_parts() == ("<|im_start|>", "")
    with pytest.raises(PromptoptError, match="drops or rewrites"):
        other.chat_parts("xx")


def test_samples_do_not_depend_on_the_batch_size(backend: HFBackend, tiny_model_dir: Path) -> None:
    """The seeded-sampling contract itself is checked by tests/test_kit_backends.py; here: the
    backend's own batches (``batch_size``) change no sample either."""
    texts = [backend.chat(q) for q in QUESTIONS[:3]]
    kwargs = {"max_new_tokens": 10, "temperature": 1.0, "top_p": 0.95, "seed": 7, "n": 2}
    alone = HFBackend(str(tiny_model_dir), HFOptions(batch_size=1))
    assert alone.generate(texts, **kwargs) == backend.generate(texts, **kwargs)


def test_usage_counts_tokens_requests_and_passes(backend: HFBackend) -> None:
    before = backend.usage.snapshot()
    ids = backend.generate_ids([backend.chat("hi")], max_new_tokens=5)
    spent = backend.usage.since(before)
    assert spent.requests == 1
    assert spent.generated_tokens == len(ids[0])
    assert spent.prompt_tokens == len(backend.encode_input(backend.chat("hi")))
    assert spent.forward_passes == len(ids[0]) + (len(ids[0]) < 5)
