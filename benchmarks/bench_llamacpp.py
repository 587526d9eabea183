"""Benchmark the llamacpp backend against raw llama.cpp on the same prompts (< 2 min on CPU).

Arms, all greedy on the same chat-formatted task prompts:

* ``raw_generation``: ``llama_cpp.Llama`` as shipped (``logits_all=False``), ``create_completion``;
* ``backend_generation``: ``LlamaCppBackend.generate`` (``logits_all=True`` for scoring);
  the two arms alternate prompt by prompt so that load from other processes hits both alike;
* ``evaluation``: the core ``promptopt.evaluation.evaluate`` (reasoning + answer, no cache);
* ``option_scoring``: options scored after each reasoning prefix, prefix reused across options
  vs re-evaluating prefix + option from scratch per option (values must agree).

    python benchmarks/bench_llamacpp.py --out results/bench_llamacpp.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def load_examples(task_name: str, data_dir: Path, n: int) -> tuple[Any, list[Any]]:
    from promptopt.registry import get_registry

    cls = get_registry().get("task", task_name)
    task = cls(cls.Options(data_dir=str(data_dir)))  # type: ignore[call-arg]
    return task, task.examples("test")[:n]  # type: ignore[attr-defined]


def examples_for_throughput(task: Any, args: argparse.Namespace) -> list[Any]:
    """Enough examples to fill the batched engine's slots several times over."""
    return list(task.examples("test")[: args.throughput_examples])


def count_tokens(llm: Any, texts: list[str]) -> int:
    return sum(len(llm.tokenize(t.encode("utf-8"), add_bos=False, special=True)) for t in texts)


def generate_raw(llm: Any, text: str, max_new: int) -> str:
    """Greedy text from an unmodified ``llama_cpp.Llama`` (the baseline)."""
    ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
    result = llm.create_completion(ids, max_tokens=max_new, temperature=0.0, top_k=1)
    return str(result["choices"][0]["text"])


def bench_generation(
    raw: Any, backend: Any, prompts: list[str], max_new: int
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Both arms on every prompt, alternating which goes first, so CPU contention from other
    processes hits both alike; tokens/s over the totals."""
    seconds = {"raw": 0.0, "backend": 0.0}
    outputs: dict[str, list[str]] = {"raw": [], "backend": []}
    arms = {
        "raw": lambda text: generate_raw(raw, text, max_new),
        "backend": lambda text: backend.generate([text], max_new_tokens=max_new)[0],
    }
    for i, text in enumerate(prompts):
        for name in ("raw", "backend") if i % 2 == 0 else ("backend", "raw"):
            start = time.perf_counter()
            outputs[name].append(arms[name](text))
            seconds[name] += time.perf_counter() - start
    results = {}
    for name in arms:
        generated = count_tokens(raw, outputs[name])
        results[name] = {
            "seconds": round(seconds[name], 3),
            "generated_tokens": generated,
            "tokens_per_s": round(generated / seconds[name], 2),
        }
    return results["raw"], results["backend"], outputs["raw"] == outputs["backend"]


def bench_evaluation(
    backend: Any, task: Any, examples: list[Any], prompt: str, max_new: int
) -> dict[str, Any]:
    from promptopt.evaluation import evaluate
    from promptopt.types import Prompt

    start = time.perf_counter()
    report = evaluate(backend, task, Prompt(prompt), examples, max_new_tokens=max_new, cache=None)
    seconds = time.perf_counter() - start
    texts = [o.reasoning for o in report.outcomes] + [o.answer_text for o in report.outcomes]
    generated = count_tokens(backend.llm, texts)
    return {
        "seconds": round(seconds, 3),
        "generated_tokens": generated,
        "tokens_per_s": round(generated / seconds, 2),
        "accuracy": report.accuracy,
        "ci": [report.ci_low, report.ci_high],
        "n": report.n,
        "reasonings": [o.reasoning for o in report.outcomes],
    }


def bench_eval_vs_raw(
    backend: Any, task: Any, examples: list[Any], prompt: str, max_new: int, rounds: int = 2
) -> dict[str, Any]:
    """``promptopt eval``'s throughput against raw batched llama.cpp generation on the same
    model: the core evaluation (reasoning, extractor, answer; no cache) vs the batched token
    generator alone decoding the same reasoning prompts, in generated tokens per second. The
    arms alternate ``rounds`` times so load from elsewhere hits both alike."""
    from promptopt_llamacpp.idgen import LlamaTokenGenerator

    from promptopt.evaluation import evaluate
    from promptopt.types import Prompt

    opts = backend.options
    raw = LlamaTokenGenerator(
        backend.path,
        n_threads=backend.n_threads,
        n_threads_batch=backend.n_threads_batch,
        n_ctx=opts.n_ctx,
        n_parallel=opts.parallel,
        n_batch=max(opts.n_batch, opts.parallel),
        n_gpu_layers=backend.n_gpu_layers,
        kv_cache_type=opts.kv_cache_type,
        reuse_prefixes=False,
    )
    rows = [backend.tokenize(backend.chat(task.user_turn(ex, Prompt(prompt)))) for ex in examples]
    totals = {"raw": [0.0, 0], "evaluation": [0.0, 0]}
    for _ in range(rounds):
        start = time.perf_counter()
        ids = raw.generate_ids(rows, max_new_tokens=max_new, eos_ids=raw.default_eos_ids)
        totals["raw"][0] += time.perf_counter() - start
        totals["raw"][1] += sum(len(r) for r in ids)
        start = time.perf_counter()
        report = evaluate(backend, task, Prompt(prompt), examples, max_new_tokens=max_new)
        totals["evaluation"][0] += time.perf_counter() - start
        texts = [o.reasoning for o in report.outcomes] + [o.answer_text for o in report.outcomes]
        totals["evaluation"][1] += count_tokens(backend.llm, texts)
    raw.close()
    rates = {name: tokens / seconds for name, (seconds, tokens) in totals.items()}
    return {
        "rounds": rounds,
        "parallel_width": backend.parallel_width,
        "raw_batched_tokens_per_s": round(rates["raw"], 2),
        "evaluation_tokens_per_s": round(rates["evaluation"], 2),
        "eval_vs_raw": round(rates["evaluation"] / rates["raw"], 3),
    }


def bench_option_scoring(
    backend: Any, task: Any, examples: list[Any], prefixes: list[str]
) -> dict[str, Any]:
    from promptopt_llamacpp.scoring import log_softmax_at

    llm = backend.llm
    jobs = []
    for example, prefix in zip(examples, prefixes, strict=True):
        text = f"{prefix} {task.extractor(example)}"
        options = [task.continuation(o) for o in example.options]
        jobs.append((text, options))
    start = time.perf_counter()
    reused = [backend.continuation_logprobs(text, options) for text, options in jobs]
    reuse_s = time.perf_counter() - start

    start = time.perf_counter()
    naive: list[list[float]] = []
    for text, options in jobs:
        prefix_ids = backend.tokenize(text)
        row = []
        for option in options:
            option_ids = backend.continuation_tokens(text, option)
            llm.reset()
            llm.eval(prefix_ids + option_ids)
            n = len(prefix_ids)
            row.append(
                sum(log_softmax_at(llm.scores[n + i - 1], t) for i, t in enumerate(option_ids))
            )
        naive.append(row)
    naive_s = time.perf_counter() - start
    max_diff = max(
        abs(a - b)
        for r1, r2 in zip(reused, naive, strict=True)
        for a, b in zip(r1, r2, strict=True)
    )
    n_options = sum(len(options) for _, options in jobs)
    return {
        "examples": len(jobs),
        "options": n_options,
        "prefix_reuse_s": round(reuse_s, 3),
        "re_evaluate_s": round(naive_s, 3),
        "speedup": round(naive_s / reuse_s, 2) if reuse_s > 0 else None,
        "max_abs_logprob_diff": max_diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2", help="GGUF file, HF Llama folder or smollm2")
    parser.add_argument("--task", default="bbh/boolean_expressions")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("PROMPTOPT_SHARED_DATA", str(REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--prompt", default="Let's think step by step.")
    parser.add_argument("--examples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--throughput-examples", type=int, default=32, help="examples of the eval_vs_raw arms"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_llamacpp.json")
    args = parser.parse_args()
    os.environ.setdefault("PROMPTOPT_PROGRESS", "0")

    import llama_cpp
    from promptopt_llamacpp.backend import LlamaCppBackend, gpu_layers_default
    from promptopt_llamacpp.modelfiles import resolve_model

    from promptopt.types import Prompt

    model = resolve_model(args.model)
    gpu = gpu_layers_default()
    task, examples = load_examples(args.task, Path(args.data_dir), args.examples)
    total_start = time.perf_counter()

    start = time.perf_counter()
    backend = LlamaCppBackend(str(model), LlamaCppBackend.Options(n_threads=args.threads))
    backend_load = time.perf_counter() - start
    prompts = [backend.chat(task.user_turn(ex, Prompt(args.prompt))) for ex in examples]

    start = time.perf_counter()
    raw_llm = llama_cpp.Llama(
        model_path=str(model),
        n_ctx=4096,
        n_threads=backend.n_threads,
        n_threads_batch=backend.n_threads_batch,
        n_gpu_layers=gpu,
        verbose=False,
    )
    raw_load = time.perf_counter() - start
    raw, ours, same_text = bench_generation(raw_llm, backend, prompts, args.max_new_tokens)
    raw_llm.close()
    raw["load_s"], ours["load_s"] = round(raw_load, 3), round(backend_load, 3)
    evaluation = bench_evaluation(backend, task, examples, args.prompt, args.max_new_tokens)
    prefixes = [p + r for p, r in zip(prompts, evaluation.pop("reasonings"), strict=True)]
    scoring = bench_option_scoring(backend, task, examples, prefixes)
    throughput = bench_eval_vs_raw(
        backend, task, examples_for_throughput(task, args), args.prompt, args.max_new_tokens
    )
    backend.close()

    result = {
        "model": str(model),
        "quantization": backend.quantization(),
        "task": args.task,
        "examples": len(examples),
        "max_new_tokens": args.max_new_tokens,
        "llama_cpp_version": llama_cpp.__version__,
        "gpu_layers": gpu,
        "threads": backend.n_threads,
        "threads_batch": backend.n_threads_batch,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "raw_generation": raw,
        "backend_generation": ours,
        "backend_vs_raw_tokens_per_s": round(ours["tokens_per_s"] / raw["tokens_per_s"], 3),
        "greedy_text_identical": same_text,
        "evaluation": evaluation,
        "option_scoring": scoring,
        "eval_throughput": throughput,
        "eval_vs_raw": throughput["eval_vs_raw"],
        "total_s": round(time.perf_counter() - total_start, 2),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
