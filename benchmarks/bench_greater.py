"""Speed of one GReaTer step, per phase, against the reference-style execution.

Runs the same steps twice on the same model and data: the batched mode (batched reasoning and
gradients, prefix KV cache, shortlist evaluated in one generation, chains reused across phases)
and ``reference_mode`` (one example at a time, no cache, candidates one after another). Writes
JSON with seconds per step and per phase, generated tokens per second, peak memory, the
speed-up ratio (wall clock and CPU time: on a shared machine the CPU-time ratio is the
steadier one) and whether both modes chose the same tokens.

    python benchmarks/bench_greater.py --out results/bench_greater.json
    python benchmarks/bench_greater.py --model embedded --steps 2 --train-size 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PROMPTOPT_PROGRESS", "0")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PHASES = ("reasoning", "proposal", "gradient", "evaluation")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="'tiny' (built now), 'embedded', or a path")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=12)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--task", default="", help="a registered task (default: in-memory yes/no)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args(argv)


def load_backend(model: str, batch_size: int) -> Any:
    from promptopt_hf.backend import HFBackend

    options = HFBackend.Options(batch_size=batch_size)
    if model == "tiny":
        from promptopt.testing.tiny_model import build_tiny_model

        path = build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-")))
        return HFBackend(str(path), options)
    return HFBackend(None if model == "embedded" else model, options)


def load_task(args: argparse.Namespace) -> Any:
    if not args.task:
        from promptopt.testing.fakes import ListTask
        from promptopt.types import Example

        words = ("Yes", "No")
        train = [
            Example(
                f"b{i}",
                f"Is {(7 * i) % 23} greater than {(11 * i + 5) % 19}? Think about it.",
                "Yes" if (7 * i) % 23 > (11 * i + 5) % 19 else "No",
                words,
            )
            for i in range(args.train_size)
        ]
        return ListTask.with_examples("bench/yes-no", train, train[:2], train[:2])()
    from promptopt.registry import get_registry

    cls = get_registry().get("task", args.task)
    fields = cls.Options.model_fields
    values = {"train_size": args.train_size, "dev_size": 2, "data_dir": args.data_dir}
    return cls(cls.Options(**{k: v for k, v in values.items() if k in fields and v is not None}))


def peak_memory_mb() -> dict[str, float]:
    import torch

    out = {"process_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if torch.cuda.is_available():
        out["cuda_peak_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_mode(backend: Any, task: Any, args: argparse.Namespace, reference: bool) -> dict[str, Any]:
    import torch
    from promptopt_greater.harness import GreaterComponents, run_step, step_context
    from promptopt_greater.method import GreaterMethod

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    options = {
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "reference_mode": reference,
    }
    comps = GreaterComponents.build(options)
    prompt = GreaterMethod().initial_prompt(task, backend)
    started = time.perf_counter()
    results, cpu = [], []
    final = prompt
    for step in range(args.steps):
        ctx = step_context(step, task, backend, comps, seed=args.seed)
        cpu_start = time.process_time()
        result = run_step(ctx, comps, final)
        cpu.append(time.process_time() - cpu_start)
        results.append(result)
        final = result.selection.prompt
        if result.selection.stop:
            break
    total = time.perf_counter() - started
    steps: list[dict[str, Any]] = []
    for r, cpu_seconds in zip(results, cpu, strict=True):
        generated = int(r.info.get("generated_tokens", 0))
        gen_seconds = float(r.info.get("generation_seconds", 0.0))
        steps.append(
            {
                "seconds": round(r.timings["step"], 4),
                "cpu_seconds": round(cpu_seconds, 4),
                "phases": {p: round(r.timings.get(p, 0.0), 4) for p in PHASES},
                "generated_tokens": generated,
                "generation_seconds": round(gen_seconds, 4),
                "candidates": len(r.candidates),
                "chosen": r.info.get("chosen"),
                "loss": r.selection.loss,
            }
        )
    generated = sum(s["generated_tokens"] for s in steps)
    gen_seconds = sum(s["generation_seconds"] for s in steps)
    per_step = sorted(s["seconds"] for s in steps)
    return {
        "mode": "reference" if reference else "batched",
        "total_seconds": round(total, 3),
        "seconds_per_step": round(total / max(len(steps), 1), 3),
        "median_seconds_per_step": per_step[len(per_step) // 2] if per_step else None,
        "cpu_seconds_per_step": round(sum(cpu) / max(len(cpu), 1), 3),
        "phase_seconds_per_step": {
            p: round(sum(s["phases"][p] for s in steps) / max(len(steps), 1), 4) for p in PHASES
        },
        "generated_tokens": generated,
        "tokens_per_second": round(generated / gen_seconds, 1) if gen_seconds else None,
        "memory": peak_memory_mb(),
        "final_prompt": final.text,
        "final_tokens": list(final.tokens or ()),
        "chosen_tokens": [r.selection.prompt.tokens for r in results],
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(max(1, args.threads))
    t0 = time.perf_counter()
    backend = load_backend(args.model, args.batch_size)
    task = load_task(args)
    load_seconds = time.perf_counter() - t0

    from promptopt_greater.vocab import allowed_ids
    from promptopt_greater.whitebox import white_box

    allowed_ids(white_box(backend))  # one-time vocabulary scan, shared by both modes
    warm = argparse.Namespace(**{**vars(args), "steps": 1, "max_new_tokens": 4})
    run_mode(backend, task, warm, reference=False)  # untimed: first-call kernel/allocator setup
    white_box(backend).prefix_cache.clear()  # the timed run fills its own cache

    batched = run_mode(backend, task, args, reference=False)
    report: dict[str, Any] = {
        "benchmark": "greater-step",
        "model": backend.model_id,
        "device": str(backend.device),
        "dtype": str(backend.dtype),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "steps": args.steps,
        "train_size": len(task.examples("train")),
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "load_seconds": round(load_seconds, 2),
        "load_average_at_start": os.getloadavg()[0],
        "batched": batched,
    }
    if not args.skip_reference:
        reference = run_mode(backend, task, args, reference=True)
        report["reference"] = reference
        report["speedup"] = round(reference["seconds_per_step"] / batched["seconds_per_step"], 2)
        report["speedup_cpu_time"] = round(
            reference["cpu_seconds_per_step"] / batched["cpu_seconds_per_step"], 2
        )
        report["phase_speedup"] = {
            p: round(reference["phase_seconds_per_step"][p] / v, 2) if v else None
            for p, v in batched["phase_seconds_per_step"].items()
        }
        report["same_choices"] = batched["chosen_tokens"] == reference["chosen_tokens"]
    report["wall_seconds"] = round(time.perf_counter() - t0, 2)
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    keys = ("speedup", "speedup_cpu_time", "same_choices", "wall_seconds")
    summary = {k: report.get(k) for k in keys}
    summary["batched_s_per_step"] = batched["seconds_per_step"]
    summary["phases"] = batched["phase_seconds_per_step"]
    print(json.dumps(summary), file=sys.stderr)
    if args.out is None:
        print(text)
    return 0 if report.get("same_choices", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
