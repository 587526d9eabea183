"""The chat-completions endpoint (``-o endpoint=chat``): the server applies its own template, so
``chat(user, assistant_prefix)`` is remembered as messages and ``generate`` sends them.

An assistant prefix (the start of the answer) goes to the server as a trailing assistant
message where the server continues one: ``continue`` (vLLM, SGLang:
``continue_final_message``), ``message`` (llama.cpp's ``llama-server`` continues a final
assistant message by itself); elsewhere (``prepend``: llama-cpp-python, OpenAI, others) the
prefix is not sent and the reply is read as what follows it (a reply that repeats the prefix
has that copy removed).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from promptopt_openai.answers import json_kind, usage_problem

Endpoint = Literal["completions", "chat"]
Prefill = Literal["auto", "continue", "message", "prepend"]
#: How each server kind continues an assistant message (``auto``); others: ``prepend``.
PREFILL_BY_KIND: dict[str, Literal["continue", "message"]] = {
    "vllm": "continue",
    "sglang": "continue",
    "llama.cpp": "message",
}
#: Request fields of the ``continue`` mode (reserved: ``extra_body`` may not set them).
CONTINUE_FIELDS = frozenset({"continue_final_message", "add_generation_prompt"})


def prefill_mode(option: Prefill, kind: str) -> Literal["continue", "message", "prepend"]:
    """The prefill mode in use: the option, or for ``auto`` the server kind's."""
    if option != "auto":
        return option
    return PREFILL_BY_KIND.get(kind, "prepend")


@dataclass(frozen=True)
class Turn:
    """One conversation as the chat endpoint gets it: the user message and the start of the
    assistant's answer ("" when none)."""

    user: str
    assistant: str


class ChatTurns:
    """What ``chat`` returned, mapped back to messages: a text from ``chat`` (or one extending
    it, the extension continuing the assistant's answer) is found again in ``generate``."""

    def __init__(self, capacity: int = 65536) -> None:
        self._turns: OrderedDict[str, Turn] = OrderedDict()
        self._capacity = capacity

    def remember(self, text: str, turn: Turn) -> None:
        self._turns[text] = turn
        self._turns.move_to_end(text)
        if len(self._turns) > self._capacity:
            self._turns.popitem(last=False)

    def find(self, text: str) -> tuple[Turn, str] | None:
        """The turn ``text`` starts with (the longest recorded one) and what follows it."""
        exact = self._turns.get(text)
        if exact is not None:
            return exact, ""
        best = max((t for t in self._turns if text.startswith(t)), key=len, default=None)
        if best is None:
            return None
        return self._turns[best], text[len(best) :]


def messages(turn: Turn, mode: str) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The ``messages`` of a request and the extra fields the prefill mode needs."""
    sent = [{"role": "user", "content": turn.user}]
    if not turn.assistant or mode == "prepend":
        return sent, {}
    sent.append({"role": "assistant", "content": turn.assistant})
    if mode == "continue":
        return sent, {"continue_final_message": True, "add_generation_prompt": False}
    return sent, {}


def reply_text(content: str, prefix: str, mode: str) -> str:
    """The continuation after ``prefix`` in a reply: the reply itself where the server
    continued the prefix; with ``prepend`` (the prefix never reached the model) the reply
    without a leading copy of the prefix."""
    if mode == "prepend" and prefix:
        stripped = content.lstrip()
        if stripped.startswith(prefix.strip()):
            return stripped[len(prefix.strip()) :]
    return content


def chat_completion_problem(data: Any) -> str | None:
    """What is wrong with a chat-completions answer (None when it has the shape promptopt
    reads): ``choices[0].message.content`` a string (null: empty), ``usage`` whole counts."""
    if not isinstance(data, dict):
        return f"the answer is {json_kind(data)}, not an object"
    choices = data.get("choices")
    if choices is None:
        return "no 'choices'"
    if not isinstance(choices, list):
        return f"'choices' is {json_kind(choices)}, not a list"
    if not choices:
        return "'choices' is empty"
    first = choices[0]
    if not isinstance(first, dict):
        return f"'choices[0]' is {json_kind(first)}, not an object"
    message = first.get("message")
    if not isinstance(message, dict):
        return f"'choices[0].message' is {json_kind(message)}, not an object"
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        return f"'choices[0].message.content' is {json_kind(content)}, not a string"
    return usage_problem(data.get("usage"))


def content_of(answer: dict[str, Any]) -> str:
    """The reply text of a checked chat-completions answer ("" for a null content)."""
    content = answer["choices"][0]["message"].get("content")
    return content if isinstance(content, str) else ""
