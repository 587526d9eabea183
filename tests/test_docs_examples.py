"""The docs' example packages: shown verbatim in the docs, installable with pip, their own test
suites pass, and real ``promptopt run`` and ``promptopt eval`` commands select each example by
name: the selector in a GReaTer run, the task and the method on the kit's fakes, the backend in
an evaluation and in a run of the example method.

The packages are pip-installed (no deps, no build isolation, no index) into a temporary
``--target`` folder that the subprocesses get on PYTHONPATH, so other test sessions sharing the
environment never see them; removing the folder uninstalls them.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
EXAMPLES = DOCS / "examples"
PACKAGES = {
    "promptopt-example-task": "promptopt_example_task",
    "promptopt-example-selector": "promptopt_example_selector",
    "promptopt-example-method": "promptopt_example_method",
    "promptopt-example-backend": "promptopt_example_backend",
}
#: A docs code block that shows a file: the marker line, then a fenced block.
FILE_BLOCK = re.compile(
    r"<!-- example-file: (?P<path>\S+) -->\n+```[\w-]*\n(?P<body>.*?)```", re.DOTALL
)
_SCRIPT = Path(sys.executable).with_name("promptopt")
#: The installed ``promptopt`` command (or the same entry function when no script is on disk).
PROMPTOPT = (
    [str(_SCRIPT)]
    if _SCRIPT.is_file()
    else [sys.executable, "-c", "import sys; from promptopt.cli import main; main(sys.argv[1:])"]
)


def doc_blocks() -> list[tuple[str, str, str]]:
    """(doc name, shown path, shown text) for every file block in the docs."""
    return [
        (doc.name, m["path"], m["body"])
        for doc in sorted(DOCS.glob("*.md"))
        for m in FILE_BLOCK.finditer(doc.read_text())
    ]


def test_docs_show_the_example_files_verbatim() -> None:
    blocks = doc_blocks()
    assert len(blocks) >= 20
    for doc, path, body in blocks:
        file = REPO / path
        assert file.is_file(), f"{doc} shows {path}, which does not exist"
        assert body == file.read_text(), (
            f"{doc} shows an outdated {path}; run `python docs/sync_examples.py`"
        )


def test_docs_show_every_source_file_of_the_examples() -> None:
    shown = {path for _, path, _ in doc_blocks()}
    for package, module in PACKAGES.items():
        root = EXAMPLES / package
        wanted = [root / "pyproject.toml", *sorted((root / "src" / module).glob("*.py"))]
        wanted += sorted((root / "tests").glob("*.py"))
        for file in wanted:
            assert str(file.relative_to(REPO)) in shown, f"no doc shows {file.relative_to(REPO)}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_docs_link_only_to_files_and_sections_that_exist() -> None:
    for doc in DOCS.glob("*.md"):
        for target, anchor in re.findall(r"\]\(([^)#:]+)(?:#([^)]*))?\)", doc.read_text()):
            file = doc.parent / target
            assert file.exists(), f"{doc.name} links to missing {target}"
            if anchor:
                headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
                assert anchor in {slug(h) for h in headings}, f"{doc.name}: no {target}#{anchor}"


# --------------------------------------------------------------------------- installed examples


def pip_install() -> list[str]:
    """pip without network when this environment can build the packages itself (setuptools
    present); otherwise pip may fetch setuptools into an isolated build environment."""
    base = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet"]
    if importlib.util.find_spec("setuptools") is not None:
        return [*base, "--no-build-isolation", "--no-index"]
    return base


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Copies of the example packages pip-installed into a target folder; yields the
    environment for subprocesses that see them; uninstalls (removes the folder) afterwards."""
    site = tmp_path_factory.mktemp("example-site")
    sources = tmp_path_factory.mktemp("example-sources")
    for package in PACKAGES:
        copy = sources / package
        shutil.copytree(
            EXAMPLES / package,
            copy,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
        done = subprocess.run(
            [*pip_install(), "--target", str(site), str(copy)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "PROMPTOPT_PROGRESS": "0", "HF_HUB_OFFLINE": "1"}
    env["EXAMPLE_SOURCES"] = str(sources)
    yield env
    shutil.rmtree(site, ignore_errors=True)
    assert not (site / "promptopt_example_selector").exists()


@pytest.mark.parametrize("package", list(PACKAGES))
def test_example_package_passes_its_own_tests(installed: dict[str, str], package: str) -> None:
    copy = Path(installed["EXAMPLE_SOURCES"]) / package
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=copy,
        env=installed,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\d+ passed", done.stdout) and "skipped" not in done.stdout


def test_installed_examples_are_listed_as_plugins(installed: dict[str, str]) -> None:
    done = subprocess.run(
        [*PROMPTOPT, "plugins", "--json"],
        env=installed,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["example-selector"]["distribution"] == "promptopt-example-selector"
    assert rows["example-selector"]["components"] == [{"kind": "selector", "name": "greedy-score"}]
    assert rows["example-task"]["components"] == [{"kind": "task", "name": "example/compare"}]
    assert rows["example-backend"]["components"] == [{"kind": "backend", "name": "ngram"}]
    method = {(c["kind"], c["name"]) for c in rows["example-method"]["components"]}
    assert method == {
        ("method", "phrase-search"),
        ("proposer", "phrase-edits"),
        ("loss_extractor", "answer-logprob"),
        ("selector", "climb"),
    }


def test_a_real_run_selects_the_example_selector_by_name(
    installed: dict[str, str], tiny_model_dir: Path, shared_data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    done = subprocess.run(
        [
            *PROMPTOPT,
            "run",
            "greater",
            "--task",
            "bbh/boolean_expressions",
            "--selector",
            "greedy-score",
            "--model",
            str(tiny_model_dir),
            "--data-dir",
            str(shared_data_dir),
            "--out",
            str(out),
            "-o",
            "steps=2",
            "-o",
            "train_size=2",
            "-o",
            "dev_size=2",
            "-o",
            "max_new_tokens=8",
        ],
        env=installed,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["components"] == {"selector": "greedy-score"}
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["position"] for s in steps] == [0, 1]  # greedy-score moved to the next token
    for step in steps:
        lowest = min(range(len(step["scores"])), key=lambda i: (step["scores"][i], i))
        assert step["reason"] == f"lowest score: {step['candidates'][lowest]!r}"
        assert [e["prompt"] for e in step["evaluated"]] == [step["chosen_prompt"]]
    result = json.loads((out / "result.json").read_text())
    assert result["steps_run"] == 2
    assert result["best_prompt"] in {s["chosen_prompt"] for s in steps} | {result["initial_prompt"]}


def test_the_example_task_runs_from_the_command_line(installed: dict[str, str], tmp_path: Path):
    plugin = tmp_path / "fakes_plugin.py"  # the kit's fakes, loaded with --plugin
    plugin.write_text("from promptopt.testing.fakes import *  # noqa: F403\n")
    done = subprocess.run(
        [
            *PROMPTOPT,
            "run",
            "fake",
            "--task",
            "example/compare",
            "--selector",
            "greedy-score",
            "--plugin",
            str(plugin),
            "--out",
            str(tmp_path / "run"),
            "-o",
            "steps=2",
            "-o",
            "train_size=3",
        ],
        env=installed,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (result["task"], result["steps_run"]) == ("example/compare", 2)


def promptopt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``promptopt`` command with the examples on its path."""
    return subprocess.run([*PROMPTOPT, *args], env=env, capture_output=True, text=True, timeout=300)


def test_the_example_method_runs_by_name_on_the_fakes(
    installed: dict[str, str], tmp_path: Path
) -> None:
    plugin = tmp_path / "fakes_plugin.py"  # the kit's fakes, loaded with --plugin
    plugin.write_text("from promptopt.testing.fakes import *  # noqa: F403\n")
    out = tmp_path / "run"
    done = promptopt(
        installed, "run", "phrase-search", "--task", "fake/yes-no", "--backend", "fake",
        "--plugin", str(plugin), "--out", str(out), "-o", "steps=3", "-o", "patience=5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert (config["method"], config["backend"]) == ("phrase-search", "fake")
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [0, 1, 2]
    for step in steps:  # phrase-edits labels, climb's reasons and shortlist note
        assert all(c.startswith(("+ ", "- ")) or " -> " in c for c in step["candidates"])
        assert step["reason"].startswith(("better:", "no better prompt"))
        assert step["notes"]["shortlist"]
    result = json.loads((out / "result.json").read_text())
    assert result["initial_prompt"] == "Let's think step by step."
    assert result["dev_size"] == 3 and result["steps_run"] == 3


def test_the_example_backend_evaluates_and_runs_by_name(
    installed: dict[str, str], shared_data_dir: Path, tmp_path: Path
) -> None:
    env = {**installed, "PROMPTOPT_CACHE_DIR": str(tmp_path / "cache")}
    corpus = tmp_path / "corpus.txt"  # a model of its own: --model names the corpus file
    corpus.write_text("### User:\nIs it true?\n### Assistant:\nYes, it is True.\n")
    for scoring in ("generate", "logprob"):
        done = promptopt(
            env, "eval", "--task", "bbh/boolean_expressions", "--backend", "ngram",
            "--model", str(corpus), "--data-dir", str(shared_data_dir), "--limit", "4",
            "--max-new-tokens", "24", "--scoring", scoring, "--prompt", "Think step by step.",
            "--out", str(tmp_path / scoring),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads((tmp_path / scoring / "summary.json").read_text())
        assert (summary["backend"], summary["n"], summary["scoring"]) == ("ngram", 4, scoring)
        assert summary["model"] == str(corpus.resolve())
    # the example method on the example backend and the example task: three plugins, no model
    out = tmp_path / "run"
    done = promptopt(
        env, "run", "phrase-search", "--task", "example/compare", "--backend", "ngram",
        "--out", str(out), "-o", "steps=2", "-o", "train_size=3", "-o", "dev_size=2",
        "-o", "max_new_tokens=16",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert (result["backend"], result["model"], result["task"]) == (
        "ngram",
        "builtin",
        "example/compare",
    )
    assert result["compute"]["models"]["task"]["generated_tokens"] > 0
