"""``-o endpoint=chat`` on the openai backend against a real ``python -m llama_cpp.server`` (the
tiny random Llama): generation through ``/v1/chat/completions`` with the server's own template,
the assistant prefix where the server cannot continue a message (``prepend``), one-line errors
for what the chat endpoint cannot do, and a GPO run whose optimizer model is served that way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("llama_cpp.server.app")  # protection only: CI installs the [server] extra

from llama_server import API_KEY, LlamaServer
from promptopt_openai.backend import OpenAIBackend, OpenAIOptions
from promptopt_openai.chatturns import Turn, messages, reply_text

from promptopt.errors import PromptoptError

QUESTION = "Write a better prompt for counting steps."


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PROMPTOPT_OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def test_chat_completions_answer_like_the_completions_endpoint(tiny_server: LlamaServer) -> None:
    """Greedy, the server's template gives the text the client-side template gives through the
    completions endpoint; the prefix is not sent to llama-cpp-python (it cannot continue an
    assistant message), so the reply is read as what follows it."""
    chat = OpenAIBackend(tiny_server.url, OpenAIOptions(endpoint="chat", concurrency=1))
    plain = OpenAIBackend(tiny_server.url, OpenAIOptions(concurrency=1))
    try:
        assert chat.served.kind == "llama-cpp-python" and chat._prefill == "prepend"
        assert chat.fingerprint()["endpoint"] == "chat" and "endpoint" not in plain.fingerprint()
        asked = chat.pool.stats.requests
        (reply,) = chat.generate([chat.chat(QUESTION)], max_new_tokens=6)
        assert chat.pool.stats.requests == asked + 1
        assert reply == plain.generate([plain.chat(QUESTION)], max_new_tokens=6)[0]
        assert chat.generate([chat.chat(QUESTION, "<START>")], max_new_tokens=6) == [reply]
        sampled = chat.generate([chat.chat(QUESTION, "<START>")], max_new_tokens=6,
                                temperature=1.0, seed=3, n=2)  # fmt: skip
        assert len(sampled) == 2 and sampled == chat.generate(
            [chat.chat(QUESTION, "<START>")], max_new_tokens=6, temperature=1.0, seed=3, n=2
        )
        assert chat.usage.generated_tokens > 0
        # what the chat endpoint cannot do: one line, nothing sent
        asked = chat.pool.stats.requests
        with pytest.raises(PromptoptError, match="no prompt log-probabilities"):
            chat.continuation_logprobs(chat.chat(QUESTION), [" Yes"])
        with pytest.raises(PromptoptError, match="cannot continue an assistant message"):
            chat.generate([chat.chat(QUESTION) + "Reasoning. The answer is"], max_new_tokens=2)
        with pytest.raises(PromptoptError, match="only answer texts made by this backend"):
            chat.generate(["not from chat()"], max_new_tokens=2)
        assert chat.pool.stats.requests == asked
    finally:
        chat.close()
        plain.close()


def test_the_prefix_reaches_servers_that_continue_a_message() -> None:
    """vLLM/SGLang get ``continue_final_message``, llama-server a trailing assistant message;
    with ``prepend`` a reply that repeats the prefix loses that copy."""
    turn = Turn(QUESTION, "<START>")
    sent, fields = messages(turn, "continue")
    assert sent[-1] == {"role": "assistant", "content": "<START>"}
    assert fields == {"continue_final_message": True, "add_generation_prompt": False}
    assert messages(turn, "message") == (sent, {})
    assert messages(turn, "prepend") == ([{"role": "user", "content": QUESTION}], {})
    assert reply_text(" <START>Count the steps.", "<START>", "prepend") == "Count the steps."
    assert reply_text("Count the steps.", "<START>", "prepend") == "Count the steps."
    assert reply_text("<START>x", "<START>", "continue") == "<START>x"
    with pytest.raises(ValueError, match="extra_body may not set continue_final_message"):
        OpenAIOptions(extra_body={"continue_final_message": False})


def test_gpo_small_runs_with_its_optimizer_on_the_chat_endpoint(
    tiny_server: LlamaServer, promptopt_fakes: Any, promptopt_run: Callable[..., Any]
) -> None:
    out = promptopt_run(
        "gpo-small", task="fake/yes-no", backend="fake", optimizer_backend="openai",
        optimizer_model=tiny_server.url, optimizer__endpoint="chat",
        optimizer__concurrency=1, steps=1, samples=2, retries=0, optimizer_max_tokens=12,
    )  # fmt: skip
    (step,) = out.steps
    notes = step["notes"]
    assert notes["prefill"] == "<START>" and len(notes["optimizer_outputs"]) == 2
    assert notes["valid_candidates"] + len(notes["rejected"]) >= 2
    assert out.result["optimizer_model"].endswith(".gguf")  # the model the server reports
    optimizer = out.result["compute"]["models"]["optimizer"]
    assert optimizer["requests"] >= 1 and optimizer["generated_tokens"] > 0
    config = (out.path / "config.json").read_text()
    assert '"optimizer.endpoint": "chat"' in config and API_KEY not in config
    assert API_KEY not in (out.path / "run.log").read_text()
    settings = json.loads(config)
    assert (settings["optimizer_backend"], settings["optimizer_model"]) == (
        "openai",
        tiny_server.url,
    )
