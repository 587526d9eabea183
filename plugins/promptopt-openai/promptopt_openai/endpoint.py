"""Where the served model lives: base URLs and model name from ``--model`` or the environment,
and the API key from an environment variable (never from the model reference or options)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from promptopt.errors import PromptoptError
from promptopt.urls import has_credentials, redact, redact_text

#: Comma-separated base URLs used when ``--model`` is only a model name (or absent).
BASE_URL_ENV = "PROMPTOPT_OPENAI_BASE_URL"
#: The served model name used when ``--model`` does not name one.
MODEL_ENV = "PROMPTOPT_OPENAI_MODEL"
#: Where the API key is read from by default; ``OPENAI_API_KEY`` is the fallback.
API_KEY_ENV = "PROMPTOPT_OPENAI_API_KEY"
FALLBACK_API_KEY_ENV = "OPENAI_API_KEY"

_FORMS = "--model http://host:port/v1[#model-name] (several URLs: comma-separated)"


@dataclass(frozen=True)
class Endpoint:
    """One served model behind one or more base URLs (requests are balanced over them)."""

    base_urls: tuple[str, ...]
    model: str | None

    def describe(self) -> str:
        """The URLs for messages (redacted, although URLs with credentials are refused)."""
        return ",".join(redact(url) for url in self.base_urls)


def _is_url(text: str) -> bool:
    """True for an http(s) URL, the scheme in any case (``HTTP://`` too)."""
    return text[:8].lower().startswith(("http://", "https://"))


def _shown(url: str) -> str:
    """``url`` quoted for a message, credentials masked."""
    return repr(redact(url))


def normalize_base_url(url: str) -> str:
    """``url`` without a trailing slash, with ``/v1`` added when it has no path and a
    lower-case scheme; a one-line error (the URL redacted) for anything that is not a plain
    http(s) URL without credentials."""
    import httpx

    url = url.strip()
    if has_credentials(url):
        raise PromptoptError(
            f"server URL {_shown(url)} carries credentials",
            hint=f"put the API key in ${API_KEY_ENV} instead",
        )
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        reason = " ".join(redact_text(str(exc)).replace(url, redact(url)).split())
        raise PromptoptError(f"bad server URL {_shown(url)}: {reason}", hint=_FORMS) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise PromptoptError(f"bad server URL {_shown(url)}", hint=_FORMS)
    if parsed.userinfo:
        raise PromptoptError(
            f"server URL {_shown(url)} carries credentials",
            hint=f"put the API key in ${API_KEY_ENV} instead",
        )
    if parsed.query or parsed.fragment:
        raise PromptoptError(f"bad server URL {_shown(url)} (query or fragment)", hint=_FORMS)
    path = parsed.path.rstrip("/")
    if not path:
        path = "/v1"
    return str(parsed.copy_with(path=path)).rstrip("/")


def parse_model_ref(ref: str | None) -> Endpoint:
    """``http://a/v1[,http://b/v1][#name]``; or a bare model name (or nothing) with the URLs
    from ``$PROMPTOPT_OPENAI_BASE_URL`` and the name from ``$PROMPTOPT_OPENAI_MODEL``."""
    ref = (ref or "").strip()
    if "://" in ref.partition("#")[0] and not _is_url(ref):
        raise PromptoptError(f"bad server URL {_shown(ref)} (not http or https)", hint=_FORMS)
    if _is_url(ref):
        urls, _, name = ref.partition("#")
        model = name.strip() or None
    else:
        urls = os.environ.get(BASE_URL_ENV, "")
        model = ref or os.environ.get(MODEL_ENV, "").strip() or None
        if not urls.strip():
            raise PromptoptError(
                "the openai backend needs the server's URL",
                hint=f"{_FORMS}, or set ${BASE_URL_ENV}",
            )
    base_urls = tuple(dict.fromkeys(normalize_base_url(u) for u in urls.split(",") if u.strip()))
    if not base_urls:
        raise PromptoptError(f"no server URL in {_shown(ref)}", hint=_FORMS)
    return Endpoint(base_urls, model)


def api_key(env_name: str = API_KEY_ENV) -> str | None:
    """The API key from ``$env_name`` (default ``PROMPTOPT_OPENAI_API_KEY``), else
    ``$OPENAI_API_KEY``; None when neither is set (local servers need none)."""
    for name in (env_name, FALLBACK_API_KEY_ENV):
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None
