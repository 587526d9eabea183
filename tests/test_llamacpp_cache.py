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
