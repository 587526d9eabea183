"""Where the task model sees the instruction (the reference's ``instruction_pos``): ``Q_end``
after the question on its own line, which every promptopt tool lays out by itself (the prompt's
``separator``); ``Q_begin`` on a line before the question and ``A_begin`` opening the model's
answer, which the scoring lays out through thin task and backend views."""

from __future__ import annotations

from typing import Any, cast

from promptopt.components import Backend, Task
from promptopt.types import Example, Prompt
from promptopt_opro.metaprompt import InstructionPos

#: OPRO's prompts (Q_end) go after the question on a new line (``question + "\n" + ins``).
SEPARATOR = "\n"


class _TaskView:
    """The task, with the instruction placed before the question (Q_begin) or left out of the
    user turn (A_begin: the backend view opens the answer with it)."""

    def __init__(self, task: Task, pos: InstructionPos) -> None:
        self._task = task
        self._pos = pos

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)

    def user_turn(self, example: Example, prompt: Prompt) -> str:
        question = example.question.rstrip()
        if self._pos == "Q_begin" and prompt.text.strip():
            return f"{prompt.text}\n{question}"
        return question


class _AnswerStart:
    """The backend, with every chat's answer opened by the instruction (A_begin)."""

    def __init__(self, backend: Backend, text: str) -> None:
        self._backend = backend
        self._text = text

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def chat(self, user: str, assistant_prefix: str = "") -> str:
        return self._backend.chat(user, self._text + assistant_prefix)


def placed(
    task: Task, backend: Backend, prompt: Prompt, pos: InstructionPos
) -> tuple[Task, Backend]:
    """The task and backend that lay ``prompt`` out at ``pos`` for the evaluation."""
    if pos == "Q_end":
        return task, backend
    view = cast(Task, _TaskView(task, pos))
    if pos == "A_begin" and prompt.text.strip():
        return view, cast(Backend, _AnswerStart(backend, prompt.text))
    return view, backend
