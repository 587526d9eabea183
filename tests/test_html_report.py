"""``report.html`` of runs, evaluations and studies on the fake components: the run's
trajectory with its word diff, the per-example browser, every model output escaped, and (in
headless Chromium, where installed) filters that change the visible rows and an injected
``<script>`` that never runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from promptopt.htmlreport.diff import Segment, word_diff

#: The fakes plus a backend whose reasoning ends in markup that would run if unescaped, and a
#: Yes/No task with 16 test examples (enough rows for every filter).
PLUGIN = """
from promptopt import hookimpl
from promptopt.testing.fakes import *  # noqa: F403
from promptopt.testing.fakes import FakeBackend, ListTask, _yes_no_examples

INJECTED = (
    "<script>document.body.setAttribute('data-pwned', 'script')</script>"
    "<img src=x onerror=\\"document.body.setAttribute('data-pwned', 'img')\\">"
)


class EvilBackend(FakeBackend):
    name = "fake-evil"

    def generate(self, texts, **kwargs):
        outputs = super().generate(texts, **kwargs)
        return outputs if kwargs.get("stop") else [o + " " + INJECTED for o in outputs]


HtmlTask = ListTask.with_examples(
    "fake/html",
    _yes_no_examples("train", 4),
    _yes_no_examples("dev", 3),
    _yes_no_examples("test", 16),
)


@hookimpl
def register_backends(register):
    register(FakeBackend)
    register(EvilBackend)


@hookimpl
def register_tasks(register):
    register(ListTask)
    register(HtmlTask)
"""
RAW = "<script>document.body.setAttribute('data-pwned'"
ESCAPED = "&lt;script&gt;document.body.setAttribute("


def promptopt(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    plugin = tmp / "evil_plugin.py"
    plugin.write_text(PLUGIN)
    env = {
        **os.environ,
        "PROMPTOPT_CACHE_DIR": str(tmp / "cache"),
        "PROMPTOPT_PROGRESS": "0",
        "PROMPTOPT_PLUGIN_PATHS": str(plugin),
    }
    return subprocess.run(
        [sys.executable, "-m", "promptopt", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("html-study")
    out = tmp / "study"
    args = ["--methods", "fake", "--tasks", "fake/html,fake/yes-no", "--seeds", "0,1"]
    proc = promptopt(
        tmp, "study", *args, "-o", "steps=3", "--backend", "fake-evil", "--out", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    return out


class Rows(HTMLParser):
    """The example rows of each browser view: view id -> [(example id, tags, hidden)]."""

    def __init__(self) -> None:
        super().__init__()
        self.views: dict[str, list[tuple[str, list[str], bool]]] = {}
        self.hidden_views: set[str] = set()
        self.body: dict[str, str | None] = {}
        self._view: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "body":
            self.body = found
        if tag == "div" and found.get("data-view"):
            self._view = str(found["data-view"])
            self.views[self._view] = []
            if "hidden" in found:
                self.hidden_views.add(self._view)
        if tag == "tr" and "ex" in (found.get("class") or "").split() and self._view:
            tags = (found.get("data-tags") or "").split()
            self.views[self._view].append((str(found["data-id"]), tags, "hidden" in found))


def rows_of(html: str) -> Rows:
    parser = Rows()
    parser.feed(html)
    return parser


def test_word_diff_marks_what_changed() -> None:
    segments = word_diff("Use think step by step .", "Use clearly step by step .")
    assert Segment("removed", "think") in segments and Segment("added", "clearly") in segments
    assert "".join(s.text for s in segments if s.kind != "removed") == (
        "Use clearly step by step ."
    )
    assert word_diff(None, "same") == [Segment("same", "same")]


def test_study_writes_a_self_contained_page_with_every_output_escaped(study_dir: Path) -> None:
    html = (study_dir / "report.html").read_text()
    assert "report.html" in json.loads((study_dir / "last_invocation.json").read_text())["outputs"]
    assert RAW not in html and ESCAPED in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network
    assert "data:image/png;base64," in html  # the plots inline
    views = json.loads(re.search(r'id="browser-views">(.*?)</script>', html, re.S)[1])
    assert {(v["task"], v["seed"]) for v in views} == {
        ("fake/html", "0"), ("fake/html", "1"), ("fake/yes-no", "0"), ("fake/yes-no", "1")
    }  # fmt: skip
    rows = rows_of(html)
    sizes = {v["task"]: len(rows.views[v["id"]]) for v in views}
    assert sizes == {"fake/html": 16, "fake/yes-no": 3}
    report = json.loads((study_dir / "report.json").read_text())
    for run in report["runs"]:  # the browser's verdicts are the report's
        shown = rows.views[f"run{run['index']}"]
        correct = sum("correct" in tags for _, tags, _ in shown)
        assert correct == run["best"]["correct"]
        assert sum("no-answer" in tags for _, tags, _ in shown) == run["best"]["unparsed"]


def test_run_and_eval_pages(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = promptopt(
        tmp_path, "run", "fake", "--task", "fake/html", "-o", "steps=3", "--out", str(run)
    )
    assert proc.returncode == 0, proc.stderr
    html = (run / "report.html").read_text()
    result = json.loads((run / "result.json").read_text())
    assert "Trajectory" in html and "data:image/png;base64," in html
    assert html.count("<tr><td>") >= result["steps_run"] + 1  # initial prompt + every step
    assert result["best_prompt"].split()[1] in html
    # a do-no-harm decision in result.json is shown with its p-value and the rejected prompt
    from promptopt.htmlreport.runpage import write_run_report

    candidate = "<b>Reject me</b>"
    decided = {**result, "accepted": False, "accept_p_value": 0.42, "candidate_prompt": candidate}
    (run / "result.json").write_text(json.dumps(decided))
    assert write_run_report(run) == run / "report.html"
    html = (run / "report.html").read_text()
    assert "rejected" in html and "p = 0.42" in html
    assert "&lt;b&gt;Reject me&lt;/b&gt;" in html and candidate not in html
    (run / "result.json").write_text(json.dumps(result))
    out = tmp_path / "eval"
    proc = promptopt(
        tmp_path, "eval", "--run", str(run), "--backend", "fake-evil", "--max-new-tokens", "8",
        "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = (out / "report.html").read_text()
    assert RAW not in page and ESCAPED in page
    examples = (out / "examples.jsonl").read_text().splitlines()
    assert len(rows_of(page).views["eval"]) == len(examples) == 16


BLOCKER = """
from promptopt import hookimpl


@hookimpl
def run_start(run):
    (run.run_dir / "report.html").mkdir()
"""


def test_a_failing_page_is_one_warning_and_keeps_the_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    blocker = tmp_path / "blocker.py"  # the page cannot be written over a folder
    blocker.write_text(BLOCKER)
    args = ["--task", "fake/yes-no", "-o", "steps=1", "--plugin", str(blocker), "--out", str(run)]
    proc = promptopt(tmp_path, "run", "fake", *args)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "report.html" in line]
    assert len(warnings) == 1 and warnings[0].startswith("promptopt: warning:"), proc.stderr
    assert (run / "result.json").is_file()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dom(page: Path, fragment: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, in headless Chromium."""
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            f"--user-data-dir={profile}", "--virtual-time-budget=5000", "--dump-dom",
            f"{page.as_uri()}#{fragment}",
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "<body" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_filters_work_and_injected_scripts_do_not_run_in_chromium(
    study_dir: Path, tmp_path: Path
) -> None:
    page = study_dir / "report.html"
    views = json.loads(re.search(r'id="browser-views">(.*?)</script>', page.read_text(), re.S)[1])
    big = next(v["id"] for v in views if v["task"] == "fake/html")
    static = rows_of(page.read_text()).views[big]
    shown_counts = {}
    for name in ("all", "to-correct", "to-wrong", "no-answer"):
        parsed = rows_of(dom(page, f"view={big}&filter={name}&q=", tmp_path / "profile"))
        assert parsed.body.get("data-browser") == "ready"  # the page's own script ran
        assert "data-pwned" not in parsed.body  # the model's did not
        assert big not in parsed.hidden_views
        assert all(v in parsed.hidden_views for v in parsed.views if v != big)
        visible = [i for i, _, hidden in parsed.views[big] if not hidden]
        expected = [i for i, tags, _ in static if name == "all" or name in tags]
        assert visible == expected, name
        shown_counts[name] = len(visible)
    assert shown_counts["all"] == 16
    assert 0 < shown_counts["no-answer"] < 16  # the filter changes the visible rows
    searched = rows_of(dom(page, f"view={big}&filter=all&q=test-1", tmp_path / "profile"))
    visible = [i for i, _, hidden in searched.views[big] if not hidden]
    assert visible and all(i.startswith("test-1") for i in visible)
    html = dom(page, f"view={big}&filter=all&q=", tmp_path / "profile")
    assert ESCAPED in html  # shown as text


def test_the_templates_ship_in_the_wheel() -> None:
    """pyproject's package data covers every template and asset, and Jinja2 is a dependency."""
    from fnmatch import fnmatch

    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["promptopt"]
    templates = sorted((root / "promptopt/htmlreport/templates").iterdir())
    assert len(templates) >= 6
    for path in templates:
        name = path.relative_to(root / "promptopt").as_posix()
        assert any(fnmatch(name, pattern) for pattern in patterns), name
    assert any(dep.startswith("jinja2") for dep in project["project"]["dependencies"])
