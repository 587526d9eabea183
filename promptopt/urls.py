"""Credentials never leave through a URL: every URL that is logged, stored or printed goes
through :func:`redact` (one URL) or :func:`redact_text` (any text that may hold URLs)."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from promptopt.errors import PromptoptError

#: Query parameters whose values are secrets (matched case-insensitively, ``-`` and ``_`` alike).
SECRET_PARAMS = frozenset(
    {
        "key",
        "apikey",
        "api_key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "sig",
        "signature",
        "x-api-key",
    }
)
MASK = "***"

#: ``scheme://`` followed by anything up to whitespace, a quote or a comma (``--model`` takes
#: comma-separated URLs): a URL inside free text.
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s'"<>`,]+""")
#: ``Bearer <token>`` and ``Authorization: <value>`` as a server may echo them back.
_AUTH_IN_TEXT = re.compile(
    r"""(?i)(bearer\s+|authorization["']?\s*[:=]\s*["']?(?:bearer\s+)?)[^\s'",}]+"""
)


def _secret_param(name: str) -> bool:
    lowered = name.strip().lower().replace("-", "_")
    return lowered in {p.replace("-", "_") for p in SECRET_PARAMS} or lowered.endswith(
        ("_key", "_token", "_secret", "password")
    )


def redact(url: str) -> str:
    """``url`` with its user name and password masked and credential-like query values masked;
    works on malformed URLs too (it never raises), since those are what error messages show."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _redact_query(url)
    cut = len(rest)
    for mark in "/?#":
        index = rest.find(mark)
        if index != -1:
            cut = min(cut, index)
    authority, tail = rest[:cut], rest[cut:]
    if "@" in authority:
        authority = f"{MASK}@{authority.rpartition('@')[2]}"
    return f"{scheme}{sep}{authority}{_redact_query(tail)}"


def _redact_query(tail: str) -> str:
    path, qmark, rest = tail.partition("?")
    if not qmark:
        return tail
    query, hash_, fragment = rest.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_secret_param(name) for name, _ in pairs):
        return tail
    masked = urlencode(
        [(name, MASK if _secret_param(name) else value) for name, value in pairs], safe="*"
    )
    return f"{path}?{masked}{hash_}{fragment}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted and any echoed ``Authorization``/``Bearer``
    value masked: for server error bodies and messages that quote user input."""
    text = _URL_IN_TEXT.sub(lambda match: redact(match.group(0)), text)
    return _AUTH_IN_TEXT.sub(lambda match: f"{match.group(1)}{MASK}", text)


def has_credentials(text: str) -> bool:
    """True when a URL in ``text`` carries a user name, a password or a credential-like query
    value."""
    return redact_text(text) != text


def refuse_credentials(value: str | None, flag: str) -> None:
    """A one-line error, showing ``value`` redacted, when ``value`` (a ``--model``-like
    setting) carries credentials: they would end up in run and study files and in logs."""
    if value and has_credentials(value):
        raise PromptoptError(
            f"{flag} {redact_text(value)!r} carries credentials in the URL",
            hint="drop them from the URL and put the API key in $PROMPTOPT_OPENAI_API_KEY "
            "(or the variable -o api_key_env names)",
        )
