"""HTTP to one served model behind one or more base URLs (httpx): many requests in flight,
least-busy balancing, timeouts, retries with exponential backoff on 429/5xx/connection errors,
a "waiting for" line while a server stays silent, answers checked before use, and one-line
errors naming the server (URLs, error bodies and the API key redacted)."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx

from promptopt.errors import PromptoptError
from promptopt.progress import Progress
from promptopt.urls import MASK, redact, redact_text
from promptopt_openai.answers import token_counts

#: Status codes worth another try: rate limits and server-side trouble.
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0


class ServerError(PromptoptError):
    """A request the server refused, or that failed after every retry."""

    def __init__(self, message: str, *, hint: str | None = None, status: int | None = None):
        super().__init__(message, hint=hint)
        self.status = status


@dataclass
class PoolStats:
    """Totals since the pool was made (read by progress bars and tests)."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    max_in_flight: int = 0
    per_url: dict[str, int] = field(default_factory=dict)


def error_text(response: httpx.Response, scrub: Callable[[str], str] = redact_text) -> str:
    """The server's own error message, on one line (OpenAI, FastAPI and plain-text shapes),
    passed through ``scrub`` (a server may echo URLs or the Authorization header) before it is
    shortened, so no cut leaves part of a secret."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    message: Any = body
    if isinstance(body, dict):
        message = body.get("error", body.get("detail", body.get("message", body)))
        if isinstance(message, dict):
            message = message.get("message", message)
    text = " ".join(scrub(str(message)).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _transport_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200] or 'connection lost'}"


def _stderr_line(line: str) -> None:
    """``line`` on stderr, above any progress bar."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


class WaitNotices:
    """Writes ``waiting for URL (N s ...) ...`` on stderr while a base URL has requests in flight
    and has answered none of them for ``interval_s`` seconds, then every ``interval_s``: a
    server that accepts connections and never answers shows long before the request timeout."""

    def __init__(
        self,
        interval_s: float,
        timeout_s: float,
        write: Callable[[str], None] = _stderr_line,
    ) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._write = write
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._quiet_since: dict[str, float] = {}
        self._written: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def started(self, url: str) -> None:
        """A request to ``url`` is on its way (an idle URL's silence starts now)."""
        if self.interval_s <= 0:
            return
        with self._lock:
            if not self._in_flight.get(url):
                self._quiet_since[url] = time.monotonic()
                self._written[url] = 0
            self._in_flight[url] = self._in_flight.get(url, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="promptopt-openai-wait", daemon=True
                )
                self._thread.start()

    def finished(self, url: str) -> None:
        """A request to ``url`` got an answer or failed: its silence ends."""
        if self.interval_s <= 0:
            return
        with self._lock:
            self._in_flight[url] = max(0, self._in_flight.get(url, 0) - 1)
            self._quiet_since[url] = time.monotonic()
            self._written[url] = 0

    def due(self, now: float) -> list[str]:
        """The lines to write at ``now`` (each URL silent for another ``interval_s``)."""
        lines = []
        with self._lock:
            for url, n in self._in_flight.items():
                quiet = now - self._quiet_since[url]
                if n and quiet >= self.interval_s * (self._written[url] + 1):
                    self._written[url] += 1
                    lines.append(
                        f"promptopt: waiting for {redact(url)} ({quiet:.0f} s without an answer, "
                        f"{n} request{'s' if n > 1 else ''} in flight, time-out after "
                        f"{self.timeout_s:g} s) ..."
                    )
        return lines

    def _watch(self) -> None:
        tick = min(1.0, self.interval_s / 4)
        while not self._stop.wait(tick):
            for line in self.due(time.monotonic()):
                self._write(line)

    def close(self) -> None:
        """Stop watching."""
        self._stop.set()


class ServerPool:
    """Sends JSON requests to the base URLs of one served model."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        api_key: str | None = None,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        concurrency: int = 8,
        wait_notice_s: float = 30.0,
    ) -> None:
        self.base_urls = tuple(base_urls)
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.concurrency = max(1, concurrency)
        self._api_key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        connections = self.concurrency * len(self.base_urls) + 4
        self._client = httpx.Client(
            headers=headers,
            timeout=client_timeout(timeout_s, connect_timeout_s),
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self.notices = WaitNotices(wait_notice_s, timeout_s)
        self._lock = threading.Lock()
        self._in_flight = dict.fromkeys(self.base_urls, 0)
        self._turn = 0
        self.stats = PoolStats(per_url=dict.fromkeys(self.base_urls, 0))

    # ------------------------------------------------------------------ one request

    def _pick(self, avoid: str | None) -> str:
        """The base URL with the fewest requests in flight (round-robin among ties), not
        ``avoid`` (where the last try failed) when there is another."""
        with self._lock:
            self._turn += 1
            urls = [u for u in self.base_urls if u != avoid] or list(self.base_urls)
            order = sorted(
                range(len(urls)),
                key=lambda i: (self._in_flight[urls[i]], (i - self._turn) % len(urls)),
            )
            url = urls[order[0]]
            self._in_flight[url] += 1
            self.stats.per_url[url] += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, sum(self._in_flight.values()))
            return url

    def _done(self, url: str) -> None:
        with self._lock:
            self._in_flight[url] -= 1

    def scrub(self, text: str) -> str:
        """``text`` (a message, a server's error body) with URL credentials, echoed
        ``Authorization`` values and the API key itself masked."""
        text = redact_text(text)
        return text.replace(self._api_key, MASK) if self._api_key else text

    def _error(self, message: str, **kwargs: Any) -> ServerError:
        return ServerError(self.scrub(message), **kwargs)

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        url: str | None = None,
        retries: int | None = None,
        on_retry: Callable[[], None] | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> dict[str, Any]:
        """The JSON answer of ``method path`` on ``url`` (else a balanced pick), retrying
        429/5xx and connection errors with exponential backoff; ServerError otherwise. ``check``
        says what is wrong with an answer (None: nothing), which is then an error, not retried."""
        retries = self.max_retries if retries is None else retries
        avoid: str | None = None
        for attempt in range(retries + 1):
            base = url or self._pick(avoid)
            if url is not None:
                with self._lock:
                    self._in_flight[base] = self._in_flight.get(base, 0) + 1
            self.notices.started(base)
            try:
                response = self._client.request(method, base + path, json=body)
            except httpx.TransportError as exc:
                failure = self._error(
                    f"server {redact(base)} {_transport_reason(exc)} on {path}",
                    hint="start the server, or check the URL given to --model",
                )
                wait_s = None
            else:
                if response.status_code < 400:
                    return self._answer(base, path, response, check)
                failure = self._error(
                    f"server {redact(base)} answered {path} with HTTP {response.status_code}: "
                    f"{error_text(response, self.scrub)}",
                    status=response.status_code,
                )
                if response.status_code not in RETRY_STATUS:
                    raise failure from None
                wait_s = _retry_after(response)
            finally:
                self.notices.finished(base)
                self._done(base)
            if attempt == retries:
                tries = f" (after {retries + 1} tries)" if retries else ""
                raise ServerError(failure.message + tries, hint=failure.hint, status=failure.status)
            avoid = base
            with self._lock:
                self.stats.retries += 1
            if on_retry is not None:
                on_retry()
            delay = min(MAX_BACKOFF_S, self.backoff_s * 2**attempt)
            time.sleep(max(delay, wait_s or 0.0) * random.uniform(1.0, 1.25))
        raise AssertionError("unreachable")

    def _answer(
        self,
        base: str,
        path: str,
        response: httpx.Response,
        check: Callable[[Any], str | None] | None,
    ) -> dict[str, Any]:
        """A 2xx answer's JSON, checked by ``check``; a one-line error when it is not JSON or
        fails the check."""
        try:
            data = response.json()
        except ValueError:
            raise self._error(
                f"server {redact(base)} answered {path} with something other than JSON",
                hint="is this URL an OpenAI-compatible API (usually ending in /v1)?",
            ) from None
        problem = check(data) if check is not None else None
        if problem is not None:
            raise self._error(
                f"server {redact(base)} answered {path} with a malformed answer: {problem}",
                hint="nothing of it was used or cached; fix the server (or what is in front "
                "of it) and run again",
            )
        return data if isinstance(data, dict) else {"data": data}

    def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """``request("POST", path, body)``; counts requests and token usage."""
        data = self.request("POST", path, body, **kwargs)
        prompt_tokens, completion_tokens = token_counts(data)
        with self._lock:
            self.stats.requests += 1
            self.stats.prompt_tokens += prompt_tokens
            self.stats.completion_tokens += completion_tokens
        return data

    # ------------------------------------------------------------------ many requests

    def post_many(
        self,
        path: str,
        bodies: Sequence[dict[str, Any]],
        *,
        progress: Progress | None = None,
        desc: str = "requests",
        check: Callable[[Any], str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Answers to ``bodies`` in order (each passing ``check``), up to ``concurrency``
        requests per base URL in flight; the first failure cancels what has not started and is
        raised."""
        if not bodies:
            return []
        results: list[dict[str, Any] | None] = [None] * len(bodies)
        width = min(len(bodies), self.concurrency * len(self.base_urls))
        start = time.monotonic()
        tokens0, retries0 = self.stats.completion_tokens, self.stats.retries
        with (progress or Progress(enabled=False)).bar(len(bodies), desc, unit="req") as bar:

            def note() -> None:
                elapsed = max(time.monotonic() - start, 1e-6)
                rate = (self.stats.completion_tokens - tokens0) / elapsed
                bar.set_postfix_str(f"{rate:.1f} tok/s, {self.stats.retries - retries0} retries")

            def one(i: int) -> None:
                results[i] = self.post(path, bodies[i], on_retry=note, check=check)

            if width == 1:
                for i in range(len(bodies)):
                    one(i)
                    bar.update(1)
                    note()
                return [r for r in results if r is not None]
            pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="promptopt-openai")
            try:
                pending: set[Future[None]] = {pool.submit(one, i) for i in range(len(bodies))}
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for future in done:
                        future.result()  # raises the first failure
                    bar.update(len(done))
                    note()
            finally:
                pool.shutdown(wait=False, cancel_futures=True)
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Close the connections and stop the waiting notices."""
        self.notices.close()
        self._client.close()


def client_timeout(timeout_s: float, connect_timeout_s: float) -> httpx.Timeout:
    """Read, write and pool time-outs of ``timeout_s``; connecting may take
    ``connect_timeout_s`` but never longer than a whole request may."""
    return httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s))


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return min(MAX_BACKOFF_S, float(value)) if value else None
    except ValueError:
        return None
