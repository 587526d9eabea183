"""``python -m llama_cpp.server`` for the tests that need a real OpenAI-compatible server
(tests/test_openai_backend.py, tests/test_kit_backends.py). Started by the ``llama_server``
fixture of conftest.py or directly; always on 127.0.0.1, one thread, API key required."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

#: The key every test server requires (tests put it in ``PROMPTOPT_OPENAI_API_KEY``).
API_KEY = "sk-test-7c1e5f"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on a free port, one thread, API key required."""

    def __init__(self, gguf: Path, log: Path) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--n_threads",
                "1",
                "--n_threads_batch",
                "1",
                "--api_key",
                API_KEY,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        headers = {"Authorization": f"Bearer {API_KEY}"}
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/models", headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("llama_cpp.server did not become ready in 120 s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._log.close()
