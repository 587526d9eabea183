"""Speed of GReaTer steps through the real loop (``promptopt run``'s), three ways on the same model,
data and seed:

* ``reference``: the authors' execution style (``reference_mode``: one example and one
  candidate at a time, no prefix cache, generation in torch);
* ``default``: what ``promptopt run greater`` does on this machine (batched; greedy generation
  in llama.cpp on a CPU, gradients in torch);
* ``torch``: the default with generation kept in torch (``generator=torch``), to show what
  llama.cpp adds and to check that it changes no choice.

Writes seconds per step and per phase, tokens generated and per second, forward/backward passes,
peak memory, the speed-up over the reference, the share of reasoning chains llama.cpp generates
token for token like torch, the share of exact-check verdicts that agree, and ``same_tokens``
(the chosen prompts of all three) with the first step where they part, if any.

Step 0 also does a run's one-time work (the examples' head KV in torch, the starting prompt's
chains), so the bench's few steps weigh it far more than a run does. ``speedup_vs_reference``
is stated for a run of the paper's 125 steps, from the measured steps: (first step + 124 x mean
later step) / 125 per mode. ``speedup_vs_reference_steady`` compares the later steps alone,
``speedup_vs_reference_measured_steps`` the plain mean of the measured steps.

    python benchmarks/bench_greater.py --out results/bench_greater.json          # embedded model
    python benchmarks/bench_greater.py --quick --out results/bench_greater.json  # < 10 min

The same bench runs on a GPU when one is there (``--device auto``: CUDA in bf16; generation
then stays in batched torch, ``generator=auto``); the JSON names the device::

    python benchmarks/bench_greater.py --out results/bench_greater_gpu.json --train-size 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PROMPTOPT_PROGRESS", "0")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[1]
PHASES = ("reasoning", "proposal", "gradient", "exact_check", "scoring", "selection")
#: The length of a run the speed-up is stated for: the paper's GReaTer runs took 125 steps.
RUN_STEPS = 125


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default="smollm2", help="'smollm2' (embedded), 'tiny', or a path"
    )
    parser.add_argument("--task", default="folio")
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 steps: under 10 minutes here")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--device", default="auto", help="auto (CUDA when there), cpu, cuda")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA), float32, ...")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.steps = min(args.steps, 2)
    return args


def load_backend(model: str, device: str = "auto", dtype: str = "auto") -> Any:
    from promptopt_hf.backend import HFBackend

    if model == "tiny":
        from promptopt.testing.tiny_model import build_tiny_model

        model = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-"))))
    return HFBackend(model, HFBackend.Options(device=device, dtype=dtype))


def run_mode(backend: Any, args: argparse.Namespace, name: str, **options: Any) -> dict[str, Any]:
    """One run of ``promptopt run greater`` in a fresh directory, with ``backend`` loaded once."""
    from promptopt.config import make_run_config
    from promptopt.runs import start_run

    out = Path(tempfile.mkdtemp(prefix=f"bench-greater-{name}-")) / "run"
    config = make_run_config(
        {},
        {
            "method": "greater",
            "task": args.task,
            "backend": "hf",
            "seed": args.seed,
            "data_dir": args.data_dir,
            "options": {
                "steps": args.steps,
                "train_size": args.train_size,
                "dev_size": 2,
                "max_new_tokens": args.max_new_tokens,
                "final_selection": False,
                **options,
            },
        },
    )
    started = time.perf_counter()
    cpu_started = time.process_time()
    result = start_run(config, out=out, progress=False, backend=backend).to_dict()
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    runtime = json.loads((out / "config.json").read_text()).get("runtime", {})
    return summarize(name, steps, result, runtime, wall, cpu)


def summarize(
    name: str,
    steps: list[dict[str, Any]],
    result: dict[str, Any],
    runtime: dict[str, Any],
    wall: float,
    cpu: float,
) -> dict[str, Any]:
    n = max(len(steps), 1)
    # the one-time agreement check is a diagnostic (-o agreement_check=0 turns it off), not a
    # cost of the method: reported apart, left out of the seconds per step
    checks = sum(float(s["timings"].get("agreement_check", 0.0)) for s in steps)
    seconds = [
        float(s["timings"]["step"])
        + float(s["timings"].get("start", 0.0))
        - float(s["timings"].get("agreement_check", 0.0))
        for s in steps
    ]
    phases = {p: round(sum(s["timings"].get(p, 0.0) for s in steps) / n, 3) for p in PHASES}
    usage = result["compute"]["models"]["task"]
    reasoning = sum(s["timings"].get("reasoning", 0.0) for s in steps)
    generated = int(usage["generated_tokens"])
    # step 0 also does a run's one-time work (the heads' KV in torch, the starting prompt's
    # chains); later steps are what the rest of a run repeats
    steady = sum(seconds[1:]) / len(seconds[1:]) if len(seconds) > 1 else None
    run = (seconds[0] + (RUN_STEPS - 1) * steady) / RUN_STEPS if steady is not None else None
    return {
        "mode": name,
        "steps": len(steps),
        "seconds_per_step": round(sum(seconds) / n, 3),
        "median_seconds_per_step": round(sorted(seconds)[len(seconds) // 2], 3),
        "seconds_per_step_each": [round(x, 3) for x in seconds],
        "first_step_seconds": round(seconds[0], 3) if seconds else None,
        "steady_seconds_per_step": round(steady, 3) if steady is not None else None,
        "run_seconds_per_step": round(run, 3) if run is not None else None,
        "cpu_seconds_per_step": round(cpu / n, 3),
        "run_wall_seconds": round(wall, 2),
        "agreement_check_seconds": round(checks, 3),
        "phase_seconds_per_step": phases,
        "generated_tokens": generated,
        "generation_tokens_per_second": round(generated / reasoning, 1) if reasoning else None,
        "forward_passes": usage["forward_passes"],
        "backward_passes": usage["backward_passes"],
        "peak_rss_mb": result["compute"]["peak_rss_mb"],
        "cuda_peak_mb": result["compute"]["cuda_peak_mb"],
        "generator": runtime.get("reasoner", {}),
        "chosen_prompts": [s["chosen_prompt"] for s in steps],
        "losses": [s["loss"] for s in steps],
        "evaluated": [{e["prompt"]: e["error_rate"] for e in s["evaluated"]} for s in steps],
        "agreement": next(
            (
                s["notes"]["generator_agreement"]
                for s in steps
                if "generator_agreement" in s["notes"]
            ),
            None,
        ),
    }


def device_name(device: Any) -> str:
    """The accelerator's name (``torch.cuda.get_device_name``), else the CPU model."""
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        return str(torch.cuda.get_device_name(device))
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def llama_cpp_build() -> dict[str, Any]:
    """The llama.cpp build the default mode generates with: version and the CPU features it
    was compiled for (AVX2 only, or AVX-512: ~1.3x apart on this machine's generation)."""
    try:
        import llama_cpp
    except ImportError:
        return {}
    info = llama_cpp.llama_print_system_info().decode()
    parts = info.replace(":", "|").split("|")  # "CPU : SSE3 = 1 | AVX = 1 | ..."
    features = sorted(p.split("=")[0].strip() for p in parts if p.strip().endswith("= 1"))
    return {"version": llama_cpp.__version__, "cpu_features": features}


def first_difference(a: list[str], b: list[str]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def verdict_agreement(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Exact-check error rates of the prompts both runs evaluated, compared prompt by prompt."""
    pairs = [
        (x[prompt], y[prompt])
        for x, y in zip(a["evaluated"], b["evaluated"], strict=False)
        for prompt in x
        if prompt in y
    ]
    same = sum(p == q for p, q in pairs)
    return {
        "prompts": len(pairs),
        "equal": same,
        "share": round(same / len(pairs), 3) if pairs else None,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    t0 = time.perf_counter()
    backend = load_backend(args.model, args.device, args.dtype)
    load_seconds = time.perf_counter() - t0
    # untimed warm-up: kernels, the vocabulary scan, llama.cpp's load and GGUF export
    warm = argparse.Namespace(**{**vars(args), "steps": 1, "max_new_tokens": 4})
    run_mode(backend, warm, "warmup")

    report: dict[str, Any] = {
        "benchmark": "greater-step",
        "model": backend.model_id,
        "task": args.task,
        "train_size": args.train_size,
        "max_new_tokens": args.max_new_tokens,
        "steps": args.steps,
        "seed": args.seed,
        "device": str(backend.device),
        "device_name": device_name(backend.device),
        "dtype": str(backend.dtype).removeprefix("torch."),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "quick": args.quick,
        "load_seconds": round(load_seconds, 2),
        "load_average_at_start": os.getloadavg()[0],
        "llama_cpp": llama_cpp_build(),
    }
    default = run_mode(backend, args, "default", agreement_check=min(args.train_size, 8))
    torch_only = run_mode(backend, args, "torch", generator="torch")
    report["default"], report["torch"] = default, torch_only
    report["generator"] = default["generator"]
    report["chain_agreement"] = default["agreement"]
    report["verdict_agreement"] = verdict_agreement(default, torch_only)
    report["speedup_generator"] = round(
        torch_only["seconds_per_step"] / default["seconds_per_step"], 2
    )
    chosen = {"default": default["chosen_prompts"], "torch": torch_only["chosen_prompts"]}
    if not args.skip_reference:
        reference = run_mode(backend, args, "reference", reference_mode=True)
        report["reference"] = reference
        chosen["reference"] = reference["chosen_prompts"]
        report["speedup_vs_reference_measured_steps"] = round(
            reference["seconds_per_step"] / default["seconds_per_step"], 2
        )
        report["speedup_vs_reference_cpu_time"] = round(
            reference["cpu_seconds_per_step"] / default["cpu_seconds_per_step"], 2
        )
        if default["steady_seconds_per_step"] and reference["steady_seconds_per_step"]:
            report["speedup_vs_reference_steady"] = round(
                reference["steady_seconds_per_step"] / default["steady_seconds_per_step"], 2
            )
            report["speedup_vs_reference"] = round(
                reference["run_seconds_per_step"] / default["run_seconds_per_step"], 2
            )
            report["speedup_basis"] = (
                f"seconds per step of a {RUN_STEPS}-step run (the paper's length), from the "
                f"measured steps: (first step + {RUN_STEPS - 1} x mean later step) / {RUN_STEPS}"
                "; speedup_vs_reference_measured_steps weighs the first step as 1 of the "
                f"{args.steps} measured"
            )
    base = chosen["torch"]
    report["same_tokens"] = all(prompts == base for prompts in chosen.values())
    report["divergence"] = {
        name: first_difference(prompts, base) for name, prompts in chosen.items() if prompts != base
    }
    report["wall_seconds"] = round(time.perf_counter() - t0, 2)
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    keys = (
        "speedup_vs_reference",
        "speedup_vs_reference_measured_steps",
        "speedup_vs_reference_steady",
        "speedup_generator",
        "same_tokens",
        "chain_agreement",
    )
    summary = {k: report.get(k) for k in keys}
    summary["default_s_per_step"] = default["seconds_per_step_each"]
    summary["phases"] = default["phase_seconds_per_step"]
    print(json.dumps(summary), file=sys.stderr)
    if args.out is None:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
