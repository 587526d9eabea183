"""Greedy generation from token ids on the embedded SmolLM2: llama.cpp one sequence at a time,
the batched :class:`~promptopt_llamacpp.idgen.LlamaTokenGenerator` (without and with prefix
reuse), and transformers' batched ``HFBackend.generate_ids``; plus the share of chains
token-identical to transformers greedy.

Inputs are chat turns built from real FOLIO questions: 12 questions under one prompt ("single"),
and the same 12 under 3 prompts that differ in one token ("shared", GReaTer's candidates). Every
llama.cpp arm runs on the Q4_1 file as shipped and on its F32 dequantization (``gguf_for``: the
weights transformers runs). Threads are 2 everywhere. Tokens/s counts new tokens over the wall
time of the whole call (prompt evaluation included); CPU seconds are reported beside it since a
shared machine slows wall time.

    python benchmarks/bench_idgen.py --out results/bench_idgen.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROMPTS = ("Think step by step.", "Think step by step!", "Think step by step:")


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds) of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def arm_record(outputs: list[list[int]], wall: float, cpu: float, **extra: Any) -> dict[str, Any]:
    generated = sum(len(o) for o in outputs)
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "generated_tokens": generated,
        "tokens_per_s": round(generated / wall, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **extra,
    }


def build_inputs(data_dir: Path, n: int) -> tuple[list[list[int]], list[list[int]]]:
    """(single, shared) token-id inputs: n questions x 1 prompt, n questions x 3 prompts."""
    from promptopt_llamacpp.backend import LlamaCppBackend

    from promptopt.registry import get_registry
    from promptopt.types import Prompt

    cls = get_registry().get("task", "folio")
    task = cls(cls.Options(data_dir=str(data_dir)))  # type: ignore[call-arg]
    examples = task.examples("train")[:n]  # type: ignore[attr-defined]
    backend = LlamaCppBackend(None, LlamaCppBackend.Options(n_threads=2))
    try:
        per_prompt = [
            [backend.tokenize(backend.chat(task.user_turn(ex, Prompt(p)))) for ex in examples]
            for p in PROMPTS
        ]
    finally:
        backend.close()
    for a, b in zip(per_prompt[0], per_prompt[1], strict=True):
        assert len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1
    shared = [ids for group in zip(*per_prompt, strict=True) for ids in group]
    return per_prompt[0], shared


def one_at_a_time(path: Path, inputs: list[list[int]], max_new: int) -> dict[str, Any]:
    """llama-cpp-python's ``create_completion``, one input after another (F32 KV cache)."""
    import llama_cpp

    llm = llama_cpp.Llama(
        model_path=str(path), n_ctx=1024, n_threads=2, n_threads_batch=2, type_k=0, type_v=0,
        verbose=False,
    )  # fmt: skip

    def run() -> list[int]:
        counts = []
        for ids in inputs:
            llm.reset()
            result = llm.create_completion(
                ids, max_tokens=max_new, temperature=0.0, top_k=1, repeat_penalty=1.0
            )
            counts.append(int(result["usage"]["completion_tokens"]))
        return counts

    counts, wall, cpu = timed(run)
    llm.close()
    record = arm_record([[0] * c for c in counts], wall, cpu)
    record["prompt_tokens"] = sum(map(len, inputs))
    return record


def batched(
    path: Path, inputs: list[list[int]], max_new: int, eos: set[int], *, reuse: bool, slots: int
) -> tuple[dict[str, Any], list[list[int]]]:
    from promptopt_llamacpp.idgen import LlamaTokenGenerator

    with LlamaTokenGenerator(
        path, n_threads=2, n_ctx=512, n_parallel=slots, reuse_prefixes=reuse
    ) as gen:
        outputs, wall, cpu = timed(
            lambda: gen.generate_ids(inputs, max_new_tokens=max_new, eos_ids=eos)
        )
        stats = gen.stats
        record = arm_record(
            outputs,
            wall,
            cpu,
            prompt_tokens=stats.prompt_tokens,
            reused_prompt_tokens=stats.reused_tokens,
            decode_calls=stats.decode_calls,
            kv_copies=stats.kv_copies,
            n_parallel=slots,
        )
    return record, outputs


def identical_share(ours: list[list[int]], theirs: list[list[int]]) -> dict[str, Any]:
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    first = sum(a[:1] == b[:1] for a, b in zip(ours, theirs, strict=True))
    diverged = [
        next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        for a, b in zip(ours, theirs, strict=True)
        if a != b
    ]
    return {
        "identical_chains": same,
        "chains": len(theirs),
        "share": round(same / len(theirs), 3),
        "first_token_share": round(first / len(theirs), 3),
        "diverged_at": diverged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("PROMPTOPT_SHARED_DATA", str(REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--slots", type=int, default=12, help="parallel sequences (n_parallel)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "bench_idgen.json")
    args = parser.parse_args()
    os.environ.setdefault("PROMPTOPT_PROGRESS", "0")
    import llama_cpp
    import torch
    from promptopt_hf.backend import HFBackend
    from promptopt_llamacpp.modelfiles import gguf_for

    torch.set_num_threads(2)
    total = time.perf_counter()
    single, shared = build_inputs(Path(args.data_dir), args.questions)
    hf = HFBackend(None)
    eos = set(hf.eos_ids)
    files = {"q4_1": gguf_for(hf.source, dtype="native"), "f32": gguf_for(hf.source)}
    n, slots = args.max_new_tokens, args.slots

    arms: dict[str, Any] = {}
    theirs: dict[str, list[list[int]]] = {}
    for name, inputs in (("single", single), ("shared", shared)):
        theirs[name], wall, cpu = timed(
            lambda inputs=inputs: hf.generate_ids(inputs, max_new_tokens=n)
        )
        arms[f"transformers_{name}_batched"] = arm_record(
            theirs[name], wall, cpu, batch_size=hf.batch_size
        )
    agreement: dict[str, Any] = {}
    arms["q4_1_shared_one_at_a_time"] = one_at_a_time(files["q4_1"], shared, n)
    for weights, path in files.items():
        arms[f"{weights}_one_at_a_time"] = one_at_a_time(path, single, n)
        arms[f"{weights}_batched"], ours = batched(path, single, n, eos, reuse=False, slots=slots)
        agreement[f"{weights}_single"] = identical_share(ours, theirs["single"])
        arms[f"{weights}_batched_reuse"], _ = batched(path, single, n, eos, reuse=True, slots=slots)
        arms[f"{weights}_shared_batched"], plain = batched(
            path, shared, n, eos, reuse=False, slots=slots
        )
        arms[f"{weights}_shared_batched_reuse"], reused = batched(
            path, shared, n, eos, reuse=True, slots=slots
        )
        assert reused == plain, "prefix reuse changed the ids"
        agreement[f"{weights}_shared"] = identical_share(reused, theirs["shared"])

    def ratio(a: str, b: str) -> float:
        return round(arms[a]["tokens_per_s"] / arms[b]["tokens_per_s"], 2)

    def cpu_ratio(a: str, b: str) -> float:  # tokens per CPU second: steadier when shared
        per_cpu = {k: arms[k]["generated_tokens"] / arms[k]["cpu_seconds"] for k in (a, b)}
        return round(per_cpu[a] / per_cpu[b], 2)

    pairs = {
        "f32_shared_reuse_vs_transformers": (
            "f32_shared_batched_reuse",
            "transformers_shared_batched",
        ),
        "f32_shared_reuse_vs_q4_1_one_at_a_time": (
            "f32_shared_batched_reuse",
            "q4_1_shared_one_at_a_time",
        ),
        "f32_prefix_reuse_gain_on_shared": ("f32_shared_batched_reuse", "f32_shared_batched"),
        "q4_1_prefix_reuse_gain_on_shared": ("q4_1_shared_batched_reuse", "q4_1_shared_batched"),
        "f32_batched_vs_one_at_a_time": ("f32_batched", "f32_one_at_a_time"),
        "q4_1_batched_vs_one_at_a_time": ("q4_1_batched", "q4_1_one_at_a_time"),
        "f32_batched_vs_transformers": ("f32_batched", "transformers_single_batched"),
    }

    result = {
        "model": "SmolLM2-135M-Instruct (embedded)",
        "files": {k: str(v) for k, v in files.items()},
        "task": "folio",
        "inputs": {
            "single": {"count": len(single), "prompt_tokens": sum(map(len, single))},
            "shared": {
                "count": len(shared),
                "prompt_tokens": sum(map(len, shared)),
                "prompts": list(PROMPTS),
            },
        },
        "max_new_tokens": n,
        "threads": 2,
        "torch_threads": torch.get_num_threads(),
        "llama_cpp_version": llama_cpp.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "arms": arms,
        "speedups": {name: ratio(a, b) for name, (a, b) in pairs.items()},
        "cpu_time_speedups": {name: cpu_ratio(a, b) for name, (a, b) in pairs.items()},
        "identical_to_transformers_greedy": agreement,
        "total_s": round(time.perf_counter() - total, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
