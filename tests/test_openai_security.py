"""The ``openai`` backend against servers that misbehave: a small OpenAI-compatible server
written here (http.server on 127.0.0.1) reports a file's path as its model id, echoes the
API key in its errors, answers malformed JSON, or accepts connections and never answers.
Nothing here needs a model; the real ``llama_cpp.server`` tests are in test_openai_backend.py."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("httpx")  # protection only: the plugin's own dependency

from promptopt_openai.backend import OpenAIBackend, OpenAIOptions
from promptopt_openai.endpoint import parse_model_ref
from test_openai_backend import one_line_error, promptopt

from promptopt.assembly import build_options
from promptopt.errors import PromptoptError

API_KEY = "sk-test-91d0c4"
PASSWORD = "pw-5e3b71"
TASK = "bbh/boolean_expressions"
PLAIN = OpenAIOptions(template="plain", retry_backoff=0.01)

#: A completions answer: (HTTP status, JSON value, or bytes sent as they are).
Answer = tuple[int, Any]


def completion(text: str = "Yes") -> dict[str, Any]:
    """A well-formed completions answer with ``text``."""
    return {
        "object": "text_completion",
        "choices": [{"index": 0, "text": text, "finish_reason": "length", "logprobs": None}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


class FakeServer:
    """An OpenAI-compatible server on 127.0.0.1: ``/v1/models`` lists ``model_id`` (as
    llama-cpp-python's server does: owned by "me"), ``/v1/completions`` answers with
    ``answer(body)``; every completions body is kept in ``bodies``."""

    def __init__(self, model_id: str = "fake-model") -> None:
        self.model_id = model_id
        self.bodies: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], Answer] = lambda body: (200, completion())
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _send(self, status: int, value: Any) -> None:
                content = value if isinstance(value, bytes) else json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                if self.path == "/v1/models":
                    model = {"id": fake.model_id, "object": "model", "owned_by": "me"}
                    self._send(200, {"object": "list", "data": [model]})
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/completions":
                    self._send(404, {"detail": "Not Found"})
                    return
                fake.bodies.append(body)
                self._send(*fake.answer(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def sent(self) -> str:
        """Every completions body received, as one JSON text."""
        return json.dumps(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SilentServer:
    """A TCP socket on 127.0.0.1 that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


class FullBacklog:
    """A listening socket on 127.0.0.1 that accepts nothing, its backlog already full: a new
    connection's handshake never completes (a connect that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        self.fillers: list[socket.socket] = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # the handshake completes later
                filler.connect(("127.0.0.1", port))
            self.fillers.append(filler)
        time.sleep(0.2)

    def close(self) -> None:
        for sock in (*self.fillers, self.sock):
            sock.close()


@pytest.fixture
def fake() -> Iterator[FakeServer]:
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PROMPTOPT_OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("PROMPTOPT_OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("PROMPTOPT_OPENAI_MODEL", raising=False)


def eval_args(model: str, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("eval", "--task", TASK, "--backend", "openai", "--model", model, "--split", "test"),
        *("--prompt", "Think.", "--data-dir", str(data), "--out", str(out), "--limit", "2"),
        *extra,
    ]


def one_line(exc: BaseException) -> str:
    """``exc`` as the CLI prints it, checked to be a PromptoptError on one line."""
    assert isinstance(exc, PromptoptError), repr(exc)
    text = str(exc)
    assert "\n" not in text, text
    return text


# --------------------------------------------------------------------------- 2: files


def test_reported_model_path_is_never_read_as_a_template(
    fake: FakeServer, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """A server reporting a text file, a .jinja file or a folder that is no model folder as
    its model id gets none of their text back in prompts."""
    secret = "TOPSECRET-0d3f"
    text_file = tmp_path / "secret.txt"
    text_file.write_text(f"{secret}\n")
    jinja_file = tmp_path / "notes.jinja"
    jinja_file.write_text(f"{secret} {{{{ messages[0]['content'] }}}}")
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "chat_template.jinja").write_text(f"{secret} {{{{ messages[0]['content'] }}}}")
    for reported in (text_file, jinja_file, folder):
        fake.model_id = str(reported)
        for options in (OpenAIOptions(), PLAIN):
            try:
                backend = OpenAIBackend(fake.url, options)
            except PromptoptError as exc:
                assert secret not in one_line(exc) and "-o tokenizer=" in str(exc)
                continue
            assert secret not in backend.chat("hello")
            backend.generate([backend.chat("hello")], max_new_tokens=2)
            backend.close()
    assert fake.bodies and secret not in fake.sent()
    # a model folder on this machine still gives its template
    fake.model_id = str(tiny_model_dir)
    backend = OpenAIBackend(fake.url)
    assert backend.chat("hello") == "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    backend.close()


def test_a_jinja_file_named_by_the_user_is_used(fake: FakeServer, tmp_path: Path) -> None:
    template = tmp_path / "mine.jinja"
    template.write_text("[{{ messages[0]['content'] }}]")
    backend = OpenAIBackend(fake.url, OpenAIOptions(tokenizer=str(template)))
    assert backend.chat("hello") == "[hello]"
    backend.close()


# --------------------------------------------------------------------------- 4: credentials


@pytest.mark.parametrize(
    "ref",
    [
        f"HTTP://user:{PASSWORD}@127.0.0.1:1/v1",
        f"hTTps://user:{PASSWORD}@127.0.0.1:1/v1#model",
        f"ftp://user:{PASSWORD}@127.0.0.1/v1",
        f"http://u:{PASSWORD}@[::1/v1",
        f"http://127.0.0.1:1/v1?api_key={PASSWORD}",
        f"http://127.0.0.1:1/v1?x=1&token={PASSWORD}#model",
    ],
)
def test_urls_with_credentials_are_one_line_without_them(ref: str) -> None:
    with pytest.raises(PromptoptError) as info:
        parse_model_ref(ref)
    assert PASSWORD not in one_line(info.value)


def test_credentials_in_the_base_url_variable_are_not_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PROMPTOPT_OPENAI_BASE_URL", f"HTTP://u:{PASSWORD}@127.0.0.1:1/v1")
    with pytest.raises(PromptoptError) as info:
        parse_model_ref("served-name")
    assert PASSWORD not in one_line(info.value) and "carries credentials" in str(info.value)


def test_upper_case_scheme_is_accepted(fake: FakeServer) -> None:
    ref = parse_model_ref("HTTP://127.0.0.1:5/v1#name")
    assert ref.base_urls == ("http://127.0.0.1:5/v1",) and ref.model == "name"
    backend = OpenAIBackend(fake.url.replace("http://", "HTTP://"), PLAIN)
    assert backend.generate([backend.chat("hello")], max_new_tokens=2) == ["Yes"]
    backend.close()


def test_cli_url_errors_print_no_password(shared_data_dir: Path, tmp_path: Path) -> None:
    cases = {
        f"HTTP://user:{PASSWORD}@127.0.0.1:1/v1": "carries credentials",  # http, upper case
        f"ftp://user:{PASSWORD}@127.0.0.1/v1": "not http or https",
    }
    for ref, reason in cases.items():
        line = one_line_error(promptopt(*eval_args(ref, shared_data_dir, tmp_path / "o")))
        assert PASSWORD not in line and reason in line


@pytest.mark.parametrize(
    "answer",
    [
        (
            400,
            {"error": {"message": f"bad request; headers {{'authorization': 'Bearer {API_KEY}'}}"}},
        ),
        (422, {"detail": [{"msg": "invalid", "input": {"Authorization": f"Bearer {API_KEY}"}}]}),
        (400, {"error": f"key {API_KEY} has no access to http://admin:{PASSWORD}@10.0.0.1/v1"}),
        (503, f"upstream http://127.0.0.1:9/v1?api_key={PASSWORD} is down".encode()),
    ],
)
def test_server_error_bodies_are_printed_without_secrets(fake: FakeServer, answer: Answer) -> None:
    """A server (or a proxy) that echoes the Authorization header, the key or a URL with
    credentials in its error body."""
    fake.answer = lambda body: answer
    backend = OpenAIBackend(fake.url, OpenAIOptions(template="plain", max_retries=0))
    with pytest.raises(PromptoptError) as info:
        backend.generate([backend.chat("hello")], max_new_tokens=2)
    text = one_line(info.value)
    assert API_KEY not in text and PASSWORD not in text and f"HTTP {answer[0]}" in text
    backend.close()


# --------------------------------------------------------------------------- 5: answers


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({}, "no 'choices'"),
        ([completion()], "the answer is a list"),
        ({"choices": "Yes"}, "'choices' is a string"),
        ({"choices": []}, "'choices' is empty"),
        ({"choices": [None]}, "'choices[0]' is null"),
        ({"choices": [{"text": 123}]}, "'choices[0].text' is 123"),
        ({"choices": [{"text": None}]}, "'choices[0].text' is null"),
        ({**completion(), "usage": []}, "'usage' is a list"),
        ({**completion(), "usage": {"prompt_tokens": "many"}}, "'usage.prompt_tokens' is 'many'"),
        ({**completion(), "usage": {"completion_tokens": -1}}, "'usage.completion_tokens' is -1"),
    ],
)
def test_malformed_answers_are_one_line_errors(fake: FakeServer, answer: Any, problem: str) -> None:
    fake.answer = lambda body: (200, answer)
    backend = OpenAIBackend(fake.url, PLAIN)
    with pytest.raises(PromptoptError) as info:
        backend.generate([backend.chat("hello")], max_new_tokens=2)
    text = one_line(info.value)
    assert fake.url in text and "malformed" in text and problem in text, text
    assert backend.usage.generated_tokens == 0  # nothing of it was counted or used
    backend.close()


def test_malformed_answer_while_scoring_is_one_line(fake: FakeServer) -> None:
    fake.answer = lambda body: (200, {"choices": [{"text": ["a"]}]})
    backend = OpenAIBackend(fake.url, PLAIN)
    with pytest.raises(PromptoptError) as info:
        backend.continuation_logprobs(backend.chat("hello"), [" Yes", " No"])
    assert "'choices[0].text' is a list" in one_line(info.value)
    backend.close()


# --------------------------------------------------------------------------- 9: silence


def test_silent_server_exits_with_one_line_quickly(shared_data_dir: Path, tmp_path: Path) -> None:
    silent = SilentServer()
    try:
        start = time.monotonic()
        result = promptopt(
            *eval_args(silent.url, shared_data_dir, tmp_path / "o"),
            *("-o", "request_timeout=1", "-o", "max_retries=0"),
        )
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    line = one_line_error(result)
    assert silent.url in line and "timed out" in line
    assert elapsed < 60, elapsed  # the CLI's start included; the wait itself is 1 s


def test_request_timeout_also_caps_the_connect_timeout() -> None:
    from promptopt_openai.client import client_timeout

    assert client_timeout(600, 10).connect == 10 and client_timeout(600, 10).read == 600
    assert client_timeout(1, 10).connect == 1 and client_timeout(1, 10).read == 1
    hanging = FullBacklog()
    try:
        start = time.monotonic()
        with pytest.raises(PromptoptError) as info:
            OpenAIBackend(hanging.url, OpenAIOptions(request_timeout=1, max_retries=0))
        elapsed = time.monotonic() - start
    finally:
        hanging.close()
    assert "ConnectTimeout" in one_line(info.value)
    assert elapsed < 5, elapsed  # not the default connect_timeout of 10 s


def test_silent_server_shows_that_it_is_waiting(shared_data_dir: Path, tmp_path: Path) -> None:
    silent = SilentServer()
    try:
        result = promptopt(
            *eval_args(silent.url, shared_data_dir, tmp_path / "o"),
            *("-o", "request_timeout=4", "-o", "max_retries=0", "-o", "wait_notice=1"),
        )
    finally:
        silent.close()
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    waiting = [line for line in lines if line.startswith(f"promptopt: waiting for {silent.url} (")]
    assert len(waiting) >= 2, result.stderr
    assert "time-out after 4 s" in waiting[0]
    assert lines[-1].startswith("promptopt: error:") and "timed out" in lines[-1]
    assert len(lines) == len(waiting) + 1, result.stderr


# --------------------------------------------------------------------------- 11: extra_body


@pytest.mark.parametrize(
    "key",
    [
        "temperature", "top_p", "top_k", "min_p", "repeat_penalty", "repetition_penalty",
        "max_tokens", "seed", "stop", "n", "logprobs", "echo", "model", "prompt", "stream",
        "messages",
    ],
)  # fmt: skip
def test_extra_body_may_not_set_what_promptopt_sets(key: str) -> None:
    with pytest.raises(PromptoptError) as info:
        build_options(OpenAIBackend, {"extra_body": {key: 1, "presence_penalty": 0.0}})
    text = one_line(info.value)
    assert f"extra_body may not set {key}" in text
    assert build_options(OpenAIBackend, {"extra_body": {"presence_penalty": 0.0}}).extra_body


def test_every_field_the_backend_sends_is_reserved(fake: FakeServer) -> None:
    from promptopt_openai.backend import reserved_fields

    backend = OpenAIBackend(fake.url, PLAIN)
    text = backend.chat("hello")
    backend.generate([text], max_new_tokens=2, stop=["\n"])
    backend.generate([text], max_new_tokens=2, temperature=0.7, top_p=0.9, n=2)
    backend.close()
    sent = {key for body in fake.bodies for key in body}
    assert {"temperature", "max_tokens", "top_k", "stop"} <= sent
    assert sent <= reserved_fields()


def test_cli_refuses_extra_body_temperature(shared_data_dir: Path, tmp_path: Path) -> None:
    result = promptopt(
        *eval_args("http://127.0.0.1:1/v1", shared_data_dir, tmp_path / "o"),
        *("-o", 'extra_body={"temperature": 0.7}'),
    )
    assert "extra_body may not set temperature" in one_line_error(result)


def test_unknown_optimizer_backend_names_its_flag(shared_data_dir: Path, tmp_path: Path) -> None:
    result = promptopt(
        *("run", "gpo", "--task", TASK, "--data-dir", str(shared_data_dir)),
        *("--backend", "openai", "--model", "http://127.0.0.1:1/v1"),
        *("--optimizer-backend", "nope", "--out", str(tmp_path / "run"), "--dry-run"),
    )
    line = one_line_error(result)
    assert "for --optimizer-backend" in line and "--backend " not in line


def test_a_template_the_sandbox_blocks_is_one_line(fake: FakeServer, tmp_path: Path) -> None:
    """A chat template that reaches for Python internals is stopped by Jinja's sandbox; the
    user sees one line naming the template, not a SecurityError traceback."""
    template = tmp_path / "hostile.jinja"
    template.write_text("{{ messages[0]['content'].__class__.__mro__ }}")
    with pytest.raises(PromptoptError) as info:
        backend = OpenAIBackend(fake.url, OpenAIOptions(tokenizer=str(template)))
        try:
            backend.chat("hello")
        finally:
            backend.close()
    assert "cannot be rendered" in info.value.message and str(template) in info.value.message
    assert "\n" not in str(info.value)
