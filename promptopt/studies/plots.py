"""A study's PNG plots from its report data: ``accuracy.png`` (test accuracy, or mean score under
a graded metric, with 95% intervals per task, baselines and every run) and
``gain_vs_compute.png`` (gain over the initial prompt against each run's compute). Needs
matplotlib; without it no plot is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from promptopt.studies.plan import STUDY_WRITE_HINT
from promptopt.studies.report import is_graded, value_of

#: One colour per row kind in the accuracy plot.
BASELINE_COLOR = "0.45"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def accuracy_rows(report: dict[str, Any], task: str) -> list[tuple[str, dict[str, Any], str]]:
    """(label, entry with accuracy (or mean score) and interval, colour key) for one task's
    panel."""
    rows: list[tuple[str, dict[str, Any], str]] = []
    info = report["tasks"][task]
    for number, digest in enumerate(info["test_sets"], start=1):
        ts = report["test_sets"][digest]
        suffix = f" (set {number})" if len(info["test_sets"]) > 1 else ""
        rows.append((f"majority{suffix}", ts["majority"], "baseline"))
        rows.append((f"empty prompt{suffix}", ts["empty"], "baseline"))
    runs = [r for r in report["runs"] if r["task"] == task]
    for method in info["methods"]:
        mine = [r for r in runs if r["method"] == method]
        seen: set[tuple[str, str]] = set()
        for run in mine:
            key = (run["initial"]["prompt"], run["test_set"])
            if key not in seen:
                seen.add(key)
                rows.append((f"initial ({method})", run["initial"], "baseline"))
        rows += [(f"{method} seed {r['seed']}", r["best"], method) for r in mine]
    return rows


def plot_accuracy(report: dict[str, Any], out: Path) -> Path | None:
    """Horizontal interval plot, one panel per task."""
    plt = _pyplot()
    if plt is None:
        return None
    tasks = list(report["tasks"])
    panels = [accuracy_rows(report, task) for task in tasks]
    height = sum(0.3 * len(rows) + 0.8 for rows in panels)
    fig, axes = plt.subplots(
        len(tasks),
        1,
        figsize=(7, max(2.5, height)),
        squeeze=False,
        gridspec_kw={"height_ratios": [max(1, len(rows)) for rows in panels]},
    )
    methods = list(report["settings"]["methods"])
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for ax, task, rows in zip(axes[:, 0], tasks, panels, strict=True):
        for y, (_, entry, kind) in enumerate(rows):
            acc, low, high = value_of(entry), entry["ci_low"], entry["ci_high"]
            color = colors.get(kind, BASELINE_COLOR)
            ax.errorbar(
                [100 * acc],
                [y],
                xerr=[[100 * (acc - low)], [100 * (high - acc)]],
                fmt="o",
                color=color,
                capsize=3,
                ms=4,
            )
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([label for label, _, _ in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(-2, 102)
        ax.set_title(task, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    what = "score" if is_graded(report) else "accuracy"
    axes[-1, 0].set_xlabel(f"test {what} (%) with 95% interval")
    fig.tight_layout()
    path = out / "accuracy.png"
    _save(fig, path)
    return path


def plot_gain_vs_compute(report: dict[str, Any], out: Path) -> Path | None:
    """Δ vs initial (with paired interval) against each run's compute seconds."""
    plt = _pyplot()
    if plt is None:
        return None
    methods = list(report["settings"]["methods"])
    tasks = list(report["settings"]["tasks"])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    plotted = 0
    for run in report["runs"]:
        seconds = run["cost"].get("seconds")
        if seconds is None:
            continue
        comparison = run["vs_initial"]
        delta = 100 * comparison["delta"]
        ax.errorbar(
            [seconds],
            [delta],
            yerr=[[delta - 100 * comparison["ci_low"]], [100 * comparison["ci_high"] - delta]],
            fmt=MARKERS[tasks.index(run["task"]) % len(MARKERS)],
            color=f"C{methods.index(run['method'])}",
            capsize=3,
            ms=5,
            alpha=0.85,
        )
        plotted += 1
    ax.axhline(0.0, color="0.5", lw=0.8, ls="--")
    if plotted:
        ax.set_xscale("log")  # runs of different methods differ by orders of magnitude
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, -5.0), max(high, 5.0))
    handles = [
        plt.Line2D([], [], color=f"C{i}", marker="o", ls="", label=m) for i, m in enumerate(methods)
    ] + [
        plt.Line2D([], [], color="0.3", marker=MARKERS[i % len(MARKERS)], ls="", label=t)
        for i, t in enumerate(tasks)
    ]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_xlabel("compute per run (seconds)")
    what = "score" if is_graded(report) else "accuracy"
    ax.set_ylabel(f"Δ test {what} vs initial (points)")
    if plotted == 0:
        ax.text(0.5, 0.5, "no run recorded its compute", transform=ax.transAxes, ha="center")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "gain_vs_compute.png"
    _save(fig, path)
    return path


def _save(fig: Any, path: Path) -> None:
    """The figure as PNG, atomically; a failed write is one line naming the file."""
    import matplotlib.pyplot as plt

    from promptopt.outputs import guarded_write
    from promptopt.rundir import save_figure

    try:
        guarded_write(path, lambda: save_figure(fig, path), hint=STUDY_WRITE_HINT)
    finally:
        plt.close(fig)


def write_plots(report: dict[str, Any], out: Path) -> list[Path]:
    """Both plots (an empty list without matplotlib)."""
    paths = [plot_accuracy(report, out), plot_gain_vs_compute(report, out)]
    return [p for p in paths if p is not None]
