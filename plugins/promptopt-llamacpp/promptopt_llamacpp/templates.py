"""Chat templates stored in GGUF files that cannot be used: a one-line error, and a way to load
the model anyway when the user asked for the plain template."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from promptopt.errors import ModelLoadError


def broken_template_error(where: str, exc: BaseException) -> ModelLoadError:
    """The one-line error for a chat template that does not compile or render."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    kind = type(exc).__name__
    return ModelLoadError(
        f"the chat template in {where} cannot be used ({kind}: {detail})"[:300],
        hint="pass -o template=plain to use a plain completion template instead",
    )


@contextmanager
def templates_not_compiled(llama_cpp: Any) -> Iterator[None]:
    """While the block runs, llama-cpp-python's loader does not fail on chat templates that do
    not compile: ``Llama()`` compiles every template in the file into a chat handler we never
    call (this backend renders the template itself, or not at all with ``template=plain``)."""
    module = llama_cpp.llama_chat_format
    original = module.Jinja2ChatFormatter

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            original.__init__(self, *args, **kwargs)
        except Exception:  # a broken template: never rendered by this backend
            self.template = ""

    # a subclass of the class found at run time (type(): a class statement needs a static base)
    namespace = {"__init__": __init__, "__module__": __name__}
    module.Jinja2ChatFormatter = type("Uncompiled", (original,), namespace)
    try:
        yield
    finally:
        module.Jinja2ChatFormatter = original
