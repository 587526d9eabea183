"""Graded metrics: how one answer scores between 0 (wrong) and 1 (right).

A metric maps the parsed answer (``None`` when the task's parser found none), the raw model
output (the reasoning, then the answer text) and the :class:`~promptopt.types.Example` to a
score in [0, 1]. Built in: ``exact`` (the default), ``contains``, ``f1`` and ``numeric``;
``python:FILE.py:FUNCTION`` loads a function from a file; plugins add more through the
``register_metrics`` hook. Tasks apply a metric in :meth:`promptopt.components.Task.score`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import numbers
import re
import string
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptopt.errors import DataError, PromptoptError

if TYPE_CHECKING:
    import pluggy

    from promptopt.components import Task
    from promptopt.types import Example

__all__ = [
    "BUILTIN_METRICS",
    "DEFAULT_METRIC",
    "HOOK",
    "Metric",
    "checked_score",
    "contains",
    "exact",
    "f1",
    "is_binary",
    "metric_names",
    "metric_sources",
    "model_output",
    "normalize_text",
    "numeric",
    "parse_number",
    "registered_metrics",
    "resolve_metric",
    "task_score",
]

#: The hook that registers :class:`Metric` objects.
HOOK = "register_metrics"
#: The metric every task uses unless told otherwise.
DEFAULT_METRIC = "exact"
#: How a metric loaded from a file is named: ``python:path/to/file.py:function``.
PYTHON_PREFIX = "python:"
#: The smallest gold magnitude ``numeric`` scales its relative tolerance by.
TINY = 1e-12


@dataclass(frozen=True)
class Metric:
    """A named metric: ``fn(predicted, output, example)`` returns a score in [0, 1].

    A metric with ``takes_tolerance`` is called with the keyword ``tolerance`` as well (the
    task's ``tolerance`` option, held in ``tolerance``). Calling a :class:`Metric` checks the
    score: an exception or a value that is not a number in [0, 1] is a one-line error naming
    the metric and the example."""

    name: str
    fn: Callable[..., float]
    description: str = ""
    takes_tolerance: bool = False
    tolerance: float = 0.0

    def __call__(self, predicted: str | None, output: str, example: Example) -> float:
        try:
            if self.takes_tolerance:
                value = self.fn(predicted, output, example, tolerance=self.tolerance)
            else:
                value = self.fn(predicted, output, example)
        except PromptoptError:
            raise
        except Exception as exc:  # the metric's own code: one line, not our traceback
            raise PromptoptError(
                f"metric {_shown(self.name)} raised {type(exc).__name__}: "
                f"{' '.join(str(exc).split())} on example {example.id!r}",
                hint="fix the metric function, or choose another with -o task.metric=NAME",
            ) from exc
        return checked_score(value, f"metric {_shown(self.name)}", example)


def _shown(name: str) -> str:
    """How messages name a metric: ``function in file.py`` for a file's function."""
    if name.startswith(PYTHON_PREFIX):
        file, _, function = name[len(PYTHON_PREFIX) :].rpartition(":")
        return f"function {function!r} in {file!r}"
    return repr(name)


def checked_score(value: Any, who: str, example: Example) -> float:
    """``value`` as a float in [0, 1] (a bool is 0 or 1); anything else is a one-line error
    naming ``who``."""
    number = float(value) if isinstance(value, numbers.Real) else math.nan
    if math.isnan(number):
        raise PromptoptError(
            f"{who} returned {value!r} for example {example.id!r}, not a number in [0, 1]",
            hint="return a float between 0 (wrong) and 1 (right)",
        )
    if not 0.0 <= number <= 1.0:
        raise PromptoptError(
            f"{who} returned {value!r} for example {example.id!r}, outside [0, 1]",
            hint="return a float between 0 (wrong) and 1 (right)",
        )
    return number


def is_binary(scores: Sequence[float]) -> bool:
    """True when every score is 0 or 1 (right or wrong): then the mean is an accuracy."""
    return all(s in (0.0, 1.0) for s in scores)


def model_output(reasoning: str, answer_text: str) -> str:
    """The raw output a metric sees: the reasoning, then the answer text read after it."""
    return f"{reasoning.rstrip()} {answer_text.strip()}".strip()


def task_score(task: Task, predicted: str | None, output: str, example: Example) -> float:
    """``task.score(...)`` checked to be a number in [0, 1] (a one-line error names the task)."""
    return checked_score(
        task.score(predicted, output, example), f"task {task.name!r}: score()", example
    )


# --------------------------------------------------------------------------- the built-ins

_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_text(text: str) -> str:
    """SQuAD-style normalization: lower case, punctuation and the articles a/an/the removed,
    whitespace collapsed."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _keep_articles(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCTUATION).split())


#: How answers are cut into words, most normalized first: SQuAD's normalization, then with the
#: articles kept (a gold answer "A"), then with the punctuation kept too (brackets "] ) >").
_TOKENIZERS: tuple[Callable[[str], str], ...] = (normalize_text, _keep_articles, str.lower)


def _tokens(text: str, gold: str) -> tuple[list[str], list[str]]:
    """The words of ``text`` and of ``gold``, both cut by the first tokenizer that leaves any
    word of the gold answer."""
    for tokenize in _TOKENIZERS:
        gold_words = tokenize(gold).split()
        if gold_words:
            return tokenize(text).split(), gold_words
    return text.lower().split(), []


def exact(predicted: str | None, output: str, example: Example) -> float:
    """1 when the parsed answer is the gold answer (both already normalized by the task's
    parser), else 0; no parsed answer is 0."""
    return 1.0 if predicted is not None and predicted == example.answer else 0.0


def contains(predicted: str | None, output: str, example: Example) -> float:
    """1 when the gold answer's normalized words appear, in order and next to each other, in
    the parsed answer, or in the whole output when nothing was parsed; else 0."""
    text = predicted if predicted is not None else output
    words, gold = _tokens(text, example.answer)
    if not gold:
        return 0.0
    width = len(gold)
    return 1.0 if any(words[i : i + width] == gold for i in range(len(words) - width + 1)) else 0.0


def f1(predicted: str | None, output: str, example: Example) -> float:
    """Token F1 between the parsed answer and the gold answer after SQuAD-style normalization
    (shared words counted with multiplicity); no parsed answer is 0."""
    if predicted is None:
        return 0.0
    guess, gold = _tokens(predicted, example.answer)
    if not guess or not gold:
        return 1.0 if guess == gold else 0.0
    shared = sum((Counter(guess) & Counter(gold)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(guess), shared / len(gold)
    return 2 * precision * recall / (precision + recall)


_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


def parse_number(text: str) -> float | None:
    """The number ``text`` states: the whole text ("-1,234.5", "$18", "50%", "3/4", "1e-3"),
    else its last number ("about 72 apples" is 72); None when it has none."""
    plain = text.strip().replace("\u2212", "-").rstrip(".").strip()
    plain = plain.removeprefix("$").removesuffix("%").replace(" ", "")
    fraction = re.fullmatch(r"([-+]?\d+)/(\d+)", plain)
    if fraction and int(fraction.group(2)) != 0:
        return int(fraction.group(1)) / int(fraction.group(2))
    found = [m.group(0) for m in _NUMBER.finditer(text.replace("\u2212", "-"))]
    candidates = [plain] if _NUMBER.fullmatch(plain) else found[-1:]
    for candidate in candidates:
        try:
            value = float(candidate.replace(",", ""))
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return None


def numeric(
    predicted: str | None, output: str, example: Example, *, tolerance: float = 0.0
) -> float:
    """1 when the parsed answer's number is within ``tolerance`` x max(|gold|, 1e-12) of the
    gold number (relative tolerance; 0: the same value, "72.0" = "72"), else 0; no parsed
    answer or no number in it is 0. A gold answer without a number is a DataError."""
    gold = parse_number(example.answer)
    if gold is None:
        raise DataError(
            f"metric 'numeric': the gold answer {example.answer!r} of example {example.id!r} "
            "is not a number",
            hint="use the numeric metric on tasks with numeric answers, or another metric",
        )
    if predicted is None:
        return 0.0
    value = parse_number(predicted)
    if value is None:
        return 0.0
    return 1.0 if abs(value - gold) <= tolerance * max(abs(gold), TINY) else 0.0


#: The metrics promptopt registers itself (through the core plugin's ``register_metrics``).
BUILTIN_METRICS: tuple[Metric, ...] = (
    Metric("exact", exact, "the task's exact match after normalization (right or wrong)"),
    Metric("contains", contains, "the gold answer's words appear in the answer (or output)"),
    Metric("f1", f1, "token F1 with the gold answer, SQuAD-style normalization"),
    Metric("numeric", numeric, "the same number within a relative tolerance", takes_tolerance=True),
)


# --------------------------------------------------------------------------- finding metrics


def _registrations(pm: pluggy.PluginManager | None) -> dict[str, tuple[Any, str, str]]:
    from promptopt.pluginmanager import provider_registrations

    return provider_registrations(HOOK, "name", pm)


def registered_metrics(pm: pluggy.PluginManager | None = None) -> dict[str, Metric]:
    """Every registered metric by name (a name registered twice is a one-line error naming
    both plugins); a registered object that is not a :class:`Metric` is an error too."""
    found: dict[str, Metric] = {}
    for name, (metric, _, plugin) in _registrations(pm).items():
        if not isinstance(metric, Metric):
            raise PromptoptError(
                f"plugin {plugin!r} registered {metric!r} as metric {name!r}, but it is not a "
                "promptopt.metrics.Metric",
                hint="fix the plugin's register_metrics hook: register(Metric(name, fn))",
            )
        if name.startswith(PYTHON_PREFIX):
            raise PromptoptError(
                f"plugin {plugin!r} registered metric {name!r}; names starting with "
                f"{PYTHON_PREFIX!r} load files",
                hint="fix the plugin's register_metrics hook: choose another name",
            )
        found[name] = metric
    return found


def metric_sources(pm: pluggy.PluginManager | None = None) -> dict[str, str]:
    """Metric name -> the name of the plugin that registered it (for ``promptopt plugins``)."""
    return {name: plugin for name, (_, _, plugin) in _registrations(pm).items()}


def metric_names(pm: pluggy.PluginManager | None = None) -> list[str]:
    """The registered metric names, sorted."""
    return sorted(registered_metrics(pm))


def resolve_metric(
    name: str, *, tolerance: float | None = None, pm: pluggy.PluginManager | None = None
) -> Metric:
    """The metric ``name`` names (a registered name or ``python:FILE.py:FUNCTION``), with
    ``tolerance`` bound (None: the metric's default). An unknown name, a file or function that
    cannot be loaded, or a tolerance for a metric that takes none is a one-line error."""
    if name.startswith(PYTHON_PREFIX):
        metric = _python_metric(name)
    else:
        known = registered_metrics(pm)
        if name not in known:
            raise PromptoptError(
                f"unknown metric {name!r}",
                hint=f"use one of {', '.join(sorted(known))} or python:FILE.py:FUNCTION",
            )
        metric = known[name]
    if tolerance is None:
        return metric
    if not metric.takes_tolerance:
        takers = sorted(m.name for m in registered_metrics(pm).values() if m.takes_tolerance)
        raise PromptoptError(
            f"metric {_shown(name)} takes no tolerance (-o task.tolerance)",
            hint=f"drop the tolerance, or use a metric that takes one: {', '.join(takers)}",
        )
    return replace(metric, tolerance=tolerance)


#: Functions loaded from files, by (path, size, modification time): a file is imported once
#: per process unless it changes.
_LOADED: dict[tuple[str, int, int], Callable[..., Any]] = {}


def _python_metric(name: str) -> Metric:
    """``python:path/to/file.py:function``: the function, imported from that file."""
    file_text, _, function = name[len(PYTHON_PREFIX) :].rpartition(":")
    fix = "write the metric as python:path/to/file.py:function"
    if not file_text or not function:
        raise PromptoptError(f"metric {name!r} names no file and function", hint=fix)
    path = Path(file_text).expanduser()
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise PromptoptError(f"metric file {file_text!r} {problem}", hint=fix)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _LOADED:
        module = _import_file(path, file_text)
        fn = getattr(module, function, None)
        if not callable(fn):
            public = sorted(
                n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
            )
            what = "has no function" if fn is None else "has no callable"
            raise PromptoptError(
                f"metric file {file_text!r} {what} {function!r}",
                hint=f"its functions: {', '.join(public) or 'none'}",
            )
        _LOADED[key] = fn
    return Metric(name, _LOADED[key], f"{function} from {file_text}")


def _import_file(path: Path, shown: str) -> Any:
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    module_name = f"promptopt_metric_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PromptoptError(f"cannot import metric file {shown!r}", hint="is it a .py file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: one line, not our traceback
        del sys.modules[module_name]
        raise PromptoptError(
            f"metric file {shown!r} failed to import: {type(exc).__name__}: {exc}",
            hint="fix the file (run it with python to see the traceback)",
        ) from exc
    return module
