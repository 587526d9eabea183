"""The run directory: config, plugin versions, log, step log, atomic checkpoints and results.

Layout::

    RUN/config.json      resolved configuration (what `--resume` re-reads)
    RUN/plugins.json     installed plugin distributions and versions
    RUN/run.log          human-readable log
    RUN/steps.jsonl      one StepRecord per line
    RUN/checkpoint.json  state after the last finished step (written atomically)
    RUN/result.json      final result
    RUN/losses.png       loss per step (when matplotlib is installed)
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any

from promptopt.errors import PromptoptError
from promptopt.outputs import reason
from promptopt.records import StepRecord
from promptopt.runlock import LOCK_NAME
from promptopt.types import DATA_FILE_SUFFIXES

CONFIG = "config.json"
CHECKPOINT = "checkpoint.json"
STEPS = "steps.jsonl"
RESULT = "result.json"
PLUGINS = "plugins.json"
LOG = "run.log"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a mix.
    The file gets the mode a plain ``open()`` would give (the user's umask)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, fsync, rename): a full disk
    or a crash leaves the old file or none, never a truncated one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, _json_text(data))


def save_figure(fig: Any, path: Path, dpi: int = 120) -> None:
    """Save a matplotlib figure as PNG atomically (rendered in memory, then renamed into
    place): a full disk never leaves a truncated image."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    atomic_write_bytes(path, buffer.getvalue())


def read_json_object(path: Path, hint: str) -> dict[str, Any]:
    """A JSON object file of a run directory; a one-line error when it is unreadable, not JSON
    or not an object (a hand-edited or truncated file must not end in a traceback)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PromptoptError(f"{str(path)!r} is not readable JSON ({exc})", hint=hint) from exc
    if not isinstance(data, dict):
        raise PromptoptError(
            f"{str(path)!r} holds a JSON {type(data).__name__}, not an object", hint=hint
        )
    return data


def is_data_reference(task: str) -> bool:
    """Whether ``task`` names data rather than a registered task: a data file (by its suffix)
    or a hub dataset (``hf:ORG/NAME``)."""
    return task.startswith("hf:") or PurePath(task).suffix.lower() in DATA_FILE_SUFFIXES


def task_folder_name(task: str) -> str:
    """A task as one folder-name part: a data file's stem (``data/reviews.csv`` -> ``reviews``),
    ``hf:ORG/NAME:CONFIG`` -> ``hf-ORG-NAME-CONFIG``, a registered name with its slashes as
    dashes (``bbh/navigate`` -> ``bbh-navigate``); other unsafe characters become dashes."""
    text = task
    if not task.startswith("hf:") and is_data_reference(task):
        text = PurePath(task).stem
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "task"


def default_run_dir(method: str, task: str, root: Path = Path("runs")) -> Path:
    """``runs/<method>-<task>-<UTC timestamp>`` (the task as :func:`task_folder_name`)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return root / f"{method}-{task_folder_name(task)}-{stamp}"


class RunDir:
    """One run's directory. Create a new one with :meth:`create`, reopen with :meth:`open`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.logger = logging.getLogger(f"promptopt.run.{path.name}")

    @staticmethod
    def ensure_free(path: Path) -> None:
        """Refuse a path that holds a run, a file or other files, or that cannot be written, so
        nothing of the user's is overwritten and the check comes before any model loads."""
        if (path / CHECKPOINT).exists() or (path / RESULT).exists() or (path / CONFIG).exists():
            raise PromptoptError(
                f"run directory {str(path)!r} already holds a run",
                hint=f"resume it with `promptopt run --resume {path}` or pass another --out",
            )
        if path.exists() and not path.is_dir():
            raise PromptoptError(
                f"run directory {str(path)!r} is a file", hint="pass a new directory as --out"
            )
        if path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()):
            raise PromptoptError(
                f"run directory {str(path)!r} already holds other files",
                hint="pass a new or empty directory as --out",
            )
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise PromptoptError(
                f"run directory {str(path)!r} cannot be created under {str(existing)!r}",
                hint="pass a writable --out",
            )

    @classmethod
    def create(cls, path: Path, config: dict[str, Any], plugins: list[dict[str, Any]]) -> RunDir:
        cls.ensure_free(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PromptoptError(
                f"run directory {str(path)!r} cannot be created ({exc.strerror})",
                hint="pass a writable --out",
            ) from exc
        run = cls(path)
        run._write(CONFIG, _json_text(config))
        run._write(PLUGINS, _json_text(plugins))
        run._guard(STEPS, (path / STEPS).touch)
        run.attach_log()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        if not (path / CONFIG).is_file():
            raise PromptoptError(
                f"{str(path)!r} is not a promptopt run directory (no {CONFIG})",
                hint="pass the directory a previous `promptopt run` wrote",
            )
        run = cls(path)
        run.attach_log()
        return run

    def _guard(self, name: str, action: Callable[[], Any]) -> Any:
        """Run a file operation on ``RUN/name``; a failure (full disk, read-only or immutable
        folder) is a one-line error naming the file, and the run stays resumable."""
        try:
            return action()
        except OSError as exc:
            raise PromptoptError(
                f"could not write {str(self.path / name)!r} ({reason(exc)})",
                hint=f"free space or make {str(self.path)!r} writable, then "
                f"`promptopt run --resume {self.path}`",
            ) from None

    def _write(self, name: str, text: str) -> None:
        self._guard(name, lambda: atomic_write_text(self.path / name, text))

    def attach_log(self) -> None:
        """Send this run's log records to ``run.log`` (appending on resume)."""
        handler = self._guard(LOG, lambda: logging.FileHandler(self.path / LOG, encoding="utf-8"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger.handlers = [handler]
        self.logger.setLevel(logging.INFO)
        self.logger.propagate = False

    def close(self) -> None:
        for handler in self.logger.handlers:
            handler.close()
        self.logger.handlers = []

    def read_config(self) -> dict[str, Any]:
        return read_json_object(
            self.path / CONFIG, hint="restore the file promptopt wrote, or start a new run"
        )

    def record_runtime(self, runtime: dict[str, Any]) -> None:
        """Put what the run resolved at start (``runtime``) into config.json, atomically."""
        config = self.read_config()
        config["runtime"] = runtime
        self._write(CONFIG, _json_text(config))

    def read_checkpoint(self) -> dict[str, Any] | None:
        path = self.path / CHECKPOINT
        if not path.is_file():
            return None
        return read_json_object(
            path, hint="it was not written by promptopt; restore it or start a new run"
        )

    def read_result(self) -> dict[str, Any] | None:
        """``result.json`` of a finished run, or None while the run is unfinished."""
        path = self.path / RESULT
        if not path.is_file():
            return None
        return read_json_object(path, hint="restore it, or delete it and run --resume again")

    def write_checkpoint(self, state: dict[str, Any]) -> None:
        self._write(CHECKPOINT, _json_text(state))

    def append_step(self, record: StepRecord) -> None:
        def append() -> None:
            with (self.path / STEPS).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record.to_dict()) + "\n")
                handle.flush()
                os.fsync(handle.fileno())

        self._guard(STEPS, append)

    def read_steps(self) -> list[dict[str, Any]]:
        """The step records; a torn last line (a crash mid-write) is dropped, since its step
        never reached a checkpoint and will run again."""
        path = self.path / STEPS
        if not path.is_file():
            return []
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        records = []
        for i, line in enumerate(lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                if i == len(lines) - 1:
                    self.logger.warning("dropping a torn last line of %s", STEPS)
                    break
                raise PromptoptError(
                    f"{str(path)!r} line {i + 1} is not JSON ({exc.msg})",
                    hint="restore the file promptopt wrote, or start a new run",
                ) from exc
            records.append(record)
        return records

    def truncate_steps(self, keep_before: int) -> None:
        """Drop step records at or after ``keep_before`` (written after the last checkpoint),
        and any torn line."""
        kept = [r for r in self.read_steps() if r["step"] < keep_before]
        self._write(STEPS, "".join(json.dumps(r) + "\n" for r in kept))

    def write_result(self, result: dict[str, Any]) -> None:
        self._write(RESULT, _json_text(result))

    def plot_losses(self) -> Path | None:
        """Plot the chosen loss per step to ``losses.png``; None without matplotlib or data."""
        steps = [r for r in self.read_steps() if r.get("loss") is not None]
        if not steps:
            return None
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        from matplotlib.ticker import MaxNLocator

        xs = [r["step"] for r in steps]
        losses = [r["loss"] for r in steps]
        best = [min(losses[: i + 1]) for i in range(len(losses))]
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(xs, losses, marker="o", ms=3, label="chosen prompt")
        ax.plot(xs, best, linestyle="--", color="gray", label="best so far")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (exact check)")
        ax.set_title(self.path.name, fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        out = self.path / "losses.png"
        try:
            self._guard(out.name, lambda: save_figure(fig, out))
        finally:
            plt.close(fig)
        return out
