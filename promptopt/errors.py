"""User-facing errors: one line that names the bad input and says how to fix it."""

from __future__ import annotations


class PromptoptError(Exception):
    """An error caused by user input or environment; the CLI prints it as one line, no traceback."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class UnknownComponentError(PromptoptError):
    """A component name that no installed plugin registered."""


class DuplicateComponentError(PromptoptError):
    """Two plugins registered a component of the same kind under the same name."""


class DataError(PromptoptError):
    """A data file or row that cannot be read; names the file and line."""


class ModelLoadError(PromptoptError):
    """A model that cannot be found or loaded."""


def quote(text: str, limit: int = 80) -> str:
    """``text`` as a short repr for an error message: at most ``limit`` characters of it, with
    the full length named when cut, so a pasted 100 KB prompt never floods the terminal."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
