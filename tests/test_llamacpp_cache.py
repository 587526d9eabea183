"""The content-addressed evaluation cache: unit behaviour, and the core evaluation with the
llama.cpp backend served from it on a rerun but not after a change in any key part."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from promptopt.components import Backend
from promptopt.evalcache import EvalCache, default_cache_root

KEY: dict[str, Any] = {
    "backend": {"model_sha256": "ab" * 32, "quantization": "Q8_0", "sampling": {"seed": 0}},
    "prompt": "Think step by step.",
    "example_id": "bbh/x/1",
    "scoring": "generate",
    "max_new_tokens": 64,
}


def test_put_then_get_counts_hits_and_misses(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    assert cache.get(KEY) is None
    cache.put(KEY, {"correct": True, "predicted": "A"})
    assert cache.get(KEY) == {"correct": True, "predicted": "A"}
    assert cache.stats() == {"hits": 1, "misses": 1}
    # a fresh object on the same folder (a rerun) is served from disk
    rerun = EvalCache(tmp_path)
    assert rerun.get(dict(reversed(list(KEY.items())))) == {"correct": True, "predicted": "A"}
    assert rerun.hits == 1


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "Think."},
        {"example_id": "bbh/x/2"},
        {"scoring": "logprob"},
        {"max_new_tokens": 65},
        {"backend": {**KEY["backend"], "quantization": "Q4_0"}},
        {"backend": {**KEY["backend"], "sampling": {"seed": 1}}},
        {"backend": {**KEY["backend"], "model_sha256": "cd" * 32}},
    ],
)
def test_any_key_change_is_a_miss(tmp_path: Path, change: dict[str, Any]) -> None:
    cache = EvalCache(tmp_path)
    cache.put(KEY, {"correct": True})
    changed = {**KEY, **change}
    assert cache.key_digest(changed) != cache.key_digest(KEY)
    assert cache.get(changed) is None
    assert cache.get(KEY) == {"correct": True}


def test_digest_ignores_dict_order_and_files_are_atomic(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    shuffled = {k: KEY[k] for k in sorted(KEY, reverse=True)}
    assert cache.key_digest(shuffled) == cache.key_digest(KEY)
    cache.put(KEY, {"v": 1})
    cache.put(KEY, {"v": 2})
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].name == f"{cache.key_digest(KEY)}.json"
    assert json.loads(files[0].read_text())["value"] == {"v": 2}


def test_corrupt_entry_is_a_miss_not_an_error(tmp_path: Path) -> None:
    cache = EvalCache(tmp_path)
    cache.put(KEY, {"v": 1})
    cache.path_for(KEY).write_text('{"key": ')
    assert cache.get(KEY) is None and cache.misses == 1
    cache.put(KEY, {"v": 3})
    assert cache.get(KEY) == {"v": 3}


def test_default_root_follows_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path))
    assert default_cache_root() == tmp_path / "evals"
    assert EvalCache.default().root == tmp_path / "evals"
    monkeypatch.delenv("PROMPTOPT_CACHE_DIR")
    assert default_cache_root() == Path.home() / ".cache" / "promptopt" / "evals"


# ----------------------------------------------------------------------------- with llama.cpp


class CountingBackend(Backend):
    """Delegates to a real backend and counts the model calls that reach it."""

    name = "counting"

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner.model_ref)
        self.inner = inner
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def chat(self, user: str) -> str:
        return self.inner.chat(user)

    def generate(self, texts: Sequence[str], **kwargs: Any) -> list[str]:
        self.calls += len(texts)
        return self.inner.generate(texts, **kwargs)

    def continuation_logprobs(self, prefix: str, continuations: Sequence[str]) -> list[float]:
        self.calls += 1
        return self.inner.continuation_logprobs(prefix, continuations)

    def fingerprint(self) -> dict[str, Any]:
        return self.inner.fingerprint()


@pytest.fixture(scope="module")
def tiny_gguf(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("llama_cpp")  # protection only: CI installs llama-cpp-python
    from promptopt_llamacpp.gguf_export import export_hf_llama

    return export_hf_llama(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(scope="module")
def task_and_examples(shared_data_dir: Path) -> tuple[Any, list[Any]]:
    from promptopt.registry import get_registry

    cls = get_registry().get("task", "bbh/boolean_expressions")
    task = cls(cls.Options(data_dir=str(shared_data_dir)))  # type: ignore[call-arg]
    return task, task.examples("test")[:3]  # type: ignore[attr-defined]


def run_eval(backend: Backend, task: Any, examples: list[Any], cache: EvalCache, **kw: Any) -> Any:
    from promptopt.evaluation import evaluate
    from promptopt.types import Prompt

    prompt = kw.pop("prompt", "Think step by step.")
    return evaluate(backend, task, Prompt(prompt), examples, max_new_tokens=6, cache=cache, **kw)


def test_rerun_is_served_from_cache_and_changes_are_not(
    tiny_gguf: Path,
    task_and_examples: tuple[Any, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from promptopt_llamacpp.backend import LlamaCppBackend
    from promptopt_llamacpp.quantize import quantize

    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "models"))
    task, examples = task_and_examples
    n = len(examples)
    cache = EvalCache(tmp_path / "evals")
    base = LlamaCppBackend(str(tiny_gguf))
    backend = CountingBackend(base)

    first = run_eval(backend, task, examples, cache)
    assert first.cache_hits == 0 and backend.calls == 2 * n  # reasoning + answer per example
    again = run_eval(backend, task, examples, EvalCache(tmp_path / "evals"))
    assert again.cache_hits == n and backend.calls == 2 * n  # no model call at all
    assert [o.reasoning for o in again.outcomes] == [o.reasoning for o in first.outcomes]
    assert again.accuracy == first.accuracy

    assert run_eval(backend, task, examples, cache, prompt="Think.").cache_hits == 0
    assert run_eval(backend, task, examples, cache, scoring="logprob").cache_hits == 0
    assert run_eval(backend, task, examples, cache, scoring="logprob").cache_hits == n

    variants = {
        "template": LlamaCppBackend(str(tiny_gguf), LlamaCppBackend.Options(template="plain")),
        "seed": LlamaCppBackend(str(tiny_gguf), LlamaCppBackend.Options(seed=7)),
        "quantization": LlamaCppBackend(str(quantize(tiny_gguf, "q8_0").path)),
    }
    for name, other in variants.items():
        counted = CountingBackend(other)
        report = run_eval(counted, task, examples, cache)
        assert report.cache_hits == 0 and counted.calls > 0, name
        other.close()
    base.close()


# ----------------------------------------------------------------------------- task code changes


def edited_task(task: Any, **methods: Any) -> Any:
    """The same task (same name, same data) after its author edited some methods."""
    edited = type(type(task).__name__, (type(task),), dict(methods))
    return edited(task.options)


def test_parser_change_changes_accuracy_without_generating(
    tiny_gguf: Path,
    task_and_examples: tuple[Any, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Generations are cached, verdicts are not: a task whose parser now always says "True"
    gets the accuracy of that parser from the cached text, with no model call."""
    from promptopt_llamacpp.backend import LlamaCppBackend

    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "models"))
    task, examples = task_and_examples
    backend = CountingBackend(LlamaCppBackend(str(tiny_gguf)))
    cache = EvalCache(tmp_path / "evals")
    first = run_eval(backend, task, examples, cache)
    calls = backend.calls

    always_true = edited_task(task, parse=lambda self, text: "True")
    edited = run_eval(backend, always_true, examples, EvalCache(tmp_path / "evals"))
    assert backend.calls == calls  # nothing generated again
    assert edited.cache_hits == len(examples)
    assert [o.reasoning for o in edited.outcomes] == [o.reasoning for o in first.outcomes]
    assert [o.predicted for o in edited.outcomes] == ["True"] * len(examples)
    expected = sum(ex.answer == "True" for ex in examples)
    assert edited.correct == expected and edited.accuracy == expected / len(examples)

    # a new extractor changes the answer step's input only: reasoning stays cached
    new_extractor = edited_task(task, extractor=lambda self, ex: "So the answer is")
    report = run_eval(backend, new_extractor, examples, EvalCache(tmp_path / "evals"))
    assert backend.calls == calls + len(examples)  # one answer generation per example
    assert report.cache_hits == 0
    assert [o.reasoning for o in report.outcomes] == [o.reasoning for o in first.outcomes]
    backend.inner.close()


@pytest.mark.parametrize("damage", ["shape", "version"])
def test_entries_of_another_shape_or_version_are_misses(
    tiny_gguf: Path,
    task_and_examples: tuple[Any, list[Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    """Entries written by another promptopt (another value shape, another format version) are
    regenerated, never a TypeError and never served."""
    from promptopt_llamacpp.backend import LlamaCppBackend

    monkeypatch.setenv("PROMPTOPT_CACHE_DIR", str(tmp_path / "models"))
    task, examples = task_and_examples
    backend = CountingBackend(LlamaCppBackend(str(tiny_gguf)))
    first = run_eval(backend, task, examples, EvalCache(tmp_path / "evals"))
    files = [p for p in (tmp_path / "evals").rglob("*.json")]
    assert files
    for path in files:
        entry = json.loads(path.read_text())
        if damage == "shape":
            entry["value"] = {"example_id": "x", "unexpected": [1, 2]}
        else:
            entry["format"] = 999
        path.write_text(json.dumps(entry))
    calls = backend.calls
    again = run_eval(backend, task, examples, EvalCache(tmp_path / "evals"))
    assert again.cache_hits == 0 and backend.calls == 2 * calls
    assert [o.reasoning for o in again.outcomes] == [o.reasoning for o in first.outcomes]
    assert again.accuracy == first.accuracy
    backend.inner.close()
