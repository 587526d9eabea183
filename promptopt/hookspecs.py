"""Hook specifications: the whole contract between promptopt and its plugins.

Plugins implement these with ``@promptopt.hookimpl`` in a module named by an entry point of the
``promptopt`` group. All hooks are called with keyword arguments; an implementation may accept
any subset of a hook's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from promptopt.components import (
        Backend,
        LossExtractor,
        Method,
        Proposer,
        Reasoner,
        Selector,
        Task,
    )
    from promptopt.metrics import Metric
    from promptopt.records import RunInfo, StepRecord
    from promptopt.tokengen import TokenGeneratorProvider
    from promptopt.tracking import Tracker
    from promptopt.variants import VariantProvider

hookspec = pluggy.HookspecMarker("promptopt")

# --------------------------------------------------------------------------- registration
# Each registration hook receives ``register``: call it once per component class. The class
# must subclass the matching interface in ``promptopt.components`` and set a unique ``name``.
# A name registered twice (by any two plugins) is an error that names both distributions.


@hookspec
def register_tasks(register: Callable[[type[Task]], None]) -> None:
    """Register task classes.

    :param register: call ``register(MyTask)`` for each :class:`~promptopt.components.Task`
        subclass; its ``name`` is what ``--task`` selects.
    """


@hookspec
def register_backends(register: Callable[[type[Backend]], None]) -> None:
    """Register model backends.

    :param register: call ``register(MyBackend)`` for each
        :class:`~promptopt.components.Backend` subclass; its ``name`` is what ``--backend``
        selects.
    """


@hookspec
def register_methods(register: Callable[[type[Method]], None]) -> None:
    """Register methods (named presets of the four components and their default options).

    :param register: call ``register(MyMethod)`` for each :class:`~promptopt.components.Method`
        subclass; its ``name`` is the ``METHOD`` argument of ``promptopt run``.
    """


@hookspec
def register_proposers(register: Callable[[type[Proposer]], None]) -> None:
    """Register proposers.

    :param register: call ``register(MyProposer)`` for each
        :class:`~promptopt.components.Proposer` subclass.
    """


@hookspec
def register_reasoners(register: Callable[[type[Reasoner]], None]) -> None:
    """Register reasoners.

    :param register: call ``register(MyReasoner)`` for each
        :class:`~promptopt.components.Reasoner` subclass.
    """


@hookspec
def register_loss_extractors(register: Callable[[type[LossExtractor]], None]) -> None:
    """Register loss extractors.

    :param register: call ``register(MyLossExtractor)`` for each
        :class:`~promptopt.components.LossExtractor` subclass.
    """


@hookspec
def register_selectors(register: Callable[[type[Selector]], None]) -> None:
    """Register selectors.

    :param register: call ``register(MySelector)`` for each
        :class:`~promptopt.components.Selector` subclass; ``--selector NAME`` or a method
        preset selects it.
    """


@hookspec
def register_commands(app: typer.Typer) -> None:
    """Add commands to the ``promptopt`` command line.

    :param app: the root :class:`typer.Typer` application; add commands with
        ``@app.command()`` or sub-groups with ``app.add_typer``. Keep heavy imports (torch,
        llama_cpp) inside the command functions so ``promptopt --help`` stays fast.
    """


# --------------------------------------------------------------------------- resolvers
# A task reference that no plugin registered by name (``--task data/reviews.csv``,
# ``--task hf:ORG/NAME``) is offered to every implementation of this hook; exactly one may
# claim it. Two that claim the same reference are an error naming both.


@hookspec
def resolve_task(ref: str) -> type[Task] | None:
    """Make a task class for a reference that is not a registered name.

    :param ref: what the user passed as ``--task`` (a data file's path as given, a hub
        reference such as ``hf:ORG/NAME``). Return a :class:`~promptopt.components.Task`
        subclass whose ``name`` is ``ref``, or None when the reference is not yours; raise a
        one-line :class:`~promptopt.errors.PromptoptError` when it is yours but unusable (a
        missing file, an unknown format). Called again on every resolution, so a file edited
        in between gives a class with the new content (see ``Task.identity``).
    """


# --------------------------------------------------------------------------- providers
# What a backend plugin offers other parts of promptopt besides its backend class, found by name
# so that neither the core nor another plugin imports it. Each hook receives ``register``: call it
# once per provider. A name registered twice (by any two plugins) is an error naming both.


@hookspec
def register_model_variants(register: Callable[[VariantProvider], None]) -> None:
    """Offer variants of a model (quantizations, other model files) for ``promptopt study
    --transfer``.

    :param register: call ``register(provider)`` with a
        :class:`~promptopt.variants.VariantProvider`; its ``backend`` (a registered backend's
        name) runs the variants and names the provider.
    """


@hookspec
def register_token_generators(register: Callable[[TokenGeneratorProvider], None]) -> None:
    """Offer a runtime that generates greedily from exact token ids on a white-box model's
    weights (GReaTer's ``-o generator=NAME``).

    :param register: call ``register(provider)`` with a
        :class:`~promptopt.tokengen.TokenGeneratorProvider`; its ``name`` is what methods
        choose it by.
    """


# --------------------------------------------------------------------------- metrics
# Scoring functions any plugin may offer; a name registered twice (by any two plugins, or one
# of the built-ins exact, contains, f1 and numeric) is an error naming both.


@hookspec
def register_metrics(register: Callable[[Metric], None]) -> None:
    """Offer metrics that score an answer between 0 and 1 (a task's ``-o task.metric=NAME``).

    :param register: call ``register(metric)`` with a :class:`~promptopt.metrics.Metric`: its
        ``name`` is what tasks choose it by, its ``fn(predicted, output, example)`` returns
        the score (``predicted``: the parsed answer or None; ``output``: the reasoning and the
        answer text; ``example``: the :class:`~promptopt.types.Example` with the gold
        ``answer``).
    """


# --------------------------------------------------------------------------- run lifecycle
# Observers (loggers, trackers, extra checkpoints) implement these; return values are ignored.


@hookspec
def run_start(run: RunInfo) -> None:
    """Called once before the first step of a run, also when it resumes.

    :param run: the run directory, resolved configuration and chosen component names;
        ``run.resumed`` is True when continuing from a checkpoint.
    """


@hookspec
def step_end(run: RunInfo, record: StepRecord) -> None:
    """Called after every step, once its record is logged and its checkpoint written.

    :param run: the run being executed.
    :param record: what the step proposed, scored and chose. Raising
        :class:`KeyboardInterrupt` here stops the run; this step is already checkpointed, so
        ``--resume`` continues with the next one.
    """


@hookspec
def run_end(run: RunInfo, result: dict[str, Any]) -> None:
    """Called once after ``result.json`` is written.

    :param run: the run that finished.
    :param result: the contents of ``result.json``.
    """


# --------------------------------------------------------------------------- trackers
# Experiment trackers (MLflow...) a user names with ``--tracker NAME`` or PROMPTOPT_TRACKER.
# Nothing is tracked unless the user names one; a name registered twice is an error naming both.


@hookspec
def register_trackers(register: Callable[[type[Tracker]], None]) -> None:
    """Offer experiment trackers (``promptopt run/study --tracker NAME``).

    :param register: call ``register(MyTracker)`` with a :class:`~promptopt.tracking.Tracker`
        subclass; its ``name`` is what ``--tracker`` selects. It is instantiated only when
        the user names it, and its methods receive the run's lifecycle (``run_start``,
        ``step_end``, ``run_end``) and a study's (``study_start``, ``study_end``); an
        exception in any of them is one warning line, and the tracker is then left out for
        the rest of the process: the optimization never stops for it.
    """
