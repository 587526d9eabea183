"""What the server says about the served model: its name (``/models``), what kind of server it
is, and what identifies the model (the ``/models`` entry, llama.cpp's ``/props``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.urls import redact
from promptopt_openai.client import ServerError, ServerPool
from promptopt_openai.endpoint import Endpoint

#: ``owned_by`` values of ``/models`` entries -> server kind.
OWNERS = {
    "vllm": "vllm",
    "sglang": "sglang",
    "llamacpp": "llama.cpp",
    "me": "llama-cpp-python",
    "library": "ollama",
    "ollama": "ollama",
    "tgi": "tgi",
    "text-generation-inference": "tgi",
}
#: ``/models`` entry fields that change between calls or say nothing about the model.
VOLATILE = {"created", "object", "permission", "permissions", "id"}
#: ``/props`` fields that identify the model (not the deployment: slots, URLs).
PROPS_KEYS = ("model_path", "build_info", "chat_template")


@dataclass(frozen=True)
class ServedModel:
    """The model one endpoint serves, as the server describes it."""

    name: str
    kind: str
    info: dict[str, Any] = field(default_factory=dict)
    props: dict[str, Any] = field(default_factory=dict)

    def describe(self, endpoint: Endpoint) -> str:
        """E.g. ``the vllm server at http://gpu1:8000/v1``, for messages."""
        return f"the {self.kind} server at {endpoint.describe()}"


def _stable(value: Any) -> Any:
    """``value`` without volatile keys, recursively (dicts and lists)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def list_models(pool: ServerPool, url: str) -> list[dict[str, Any]]:
    """The ``/models`` entries of one base URL (a one-line error when it is unreachable)."""
    try:
        answer = pool.request("GET", "/models", url=url, retries=min(pool.max_retries, 1))
    except ServerError as exc:
        if exc.status in (401, 403):
            raise PromptoptError(
                f"server {redact(url)} refused the API key ({exc.status})",
                hint="set PROMPTOPT_OPENAI_API_KEY (or OPENAI_API_KEY) to the server's key",
            ) from None
        raise
    data = answer.get("data")
    if not isinstance(data, list):
        raise PromptoptError(
            f"server {redact(url)} answered /models without a model list",
            hint="is this an OpenAI-compatible API URL (usually ending in /v1)?",
        )
    return [d for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]


def read_props(pool: ServerPool, url: str) -> dict[str, Any]:
    """llama.cpp server's ``/props`` (beside ``/v1``), or {} where the server has none."""
    root = url[: -len("/v1")] if url.endswith("/v1") else url
    try:
        return pool.request("GET", "/props", url=root, retries=0)
    except ServerError:
        return {}


def discover(pool: ServerPool, endpoint: Endpoint) -> ServedModel:
    """The served model: the name asked for (checked on every base URL) or the only one."""
    served: dict[str, list[dict[str, Any]]] = {
        url: list_models(pool, url) for url in endpoint.base_urls
    }
    first_url = endpoint.base_urls[0]
    names = [m["id"] for m in served[first_url]]
    name = endpoint.model
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise PromptoptError(
                f"server {redact(first_url)} serves {len(names)} models ({listed})",
                hint="name one: --model URL#MODEL",
            )
        name = names[0]
    for url, models in served.items():
        ids = [m["id"] for m in models]
        if name not in ids:
            raise PromptoptError(
                f"model {name!r} is not served by {redact(url)} "
                f"(it serves: {', '.join(ids) or 'none'})",
                hint="use --model URL#NAME with a served name",
            )
    entry = next(m for m in served[first_url] if m["id"] == name)
    props = read_props(pool, first_url)
    owner = str(entry.get("owned_by", "")).lower()
    kind = OWNERS.get(owner) or ("llama.cpp" if props.get("chat_template") is not None else "")
    return ServedModel(
        name=name,
        kind=kind or "openai-compatible",
        info=_stable(entry),
        props={k: props[k] for k in PROPS_KEYS if k in props},
    )
