"""Component-level testing through the real assembly: build a method's components exactly as
``promptopt run`` does (names, option routing, method defaults) around an already loaded
backend, and hand back the step context the loop would give them.

    components, ctx = step_context_for("greater", task="fake/yes-no", backend=backend,
                                       registry=registry, reasoner__max_new_tokens=6)
    candidates = components.proposer.propose(ctx, ctx.prompt)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptopt.assembly import Components, build_components, plan_run
from promptopt.components import Backend
from promptopt.config import RunConfig
from promptopt.context import StepContext
from promptopt.history import History
from promptopt.loop import LoopState, make_context
from promptopt.progress import Progress
from promptopt.registry import Registry, get_registry
from promptopt.types import Prompt


def step_context_for(
    method: str,
    *,
    task: str,
    backend: Backend,
    registry: Registry | None = None,
    seed: int = 0,
    step: int = 0,
    population: Sequence[Prompt] = (),
    history: History | None = None,
    data_dir: str | None = None,
    **options: Any,
) -> tuple[Components, StepContext]:
    """Components of ``method`` on ``task`` with ``backend`` and the context of step ``step``.
    Keywords are ``-o`` options; ``__`` stands for the scope dot (``selector__keep=5``). The
    population defaults to the method's initial prompt(s)."""
    config = RunConfig(
        method=method,
        task=task,
        backend=backend.name,
        seed=seed,
        data_dir=data_dir,
        options={key.replace("__", "."): value for key, value in options.items()},
    )
    components = build_components(plan_run(config, registry or get_registry()), backend=backend)
    members = tuple(population) or tuple(
        components.method.initial_population(components.task, backend)
    )
    state = LoopState(step=step, population=members, initial=members, history=history or History())
    ctx = make_context(components, state, seed=seed, progress=Progress(enabled=False))
    return components, ctx
