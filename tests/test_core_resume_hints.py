"""Advice that works: an error met while resuming never tells the user to pass ``-o``, which
``--resume`` refuses (through the real CLI on the fake components)."""

from __future__ import annotations

import json
from pathlib import Path

from test_core_reliability import FAKES, interrupted, one_line_error, promptopt


def test_a_resume_error_about_an_option_points_to_a_new_run(tmp_path: Path) -> None:
    run = interrupted(tmp_path, 1)
    config = json.loads((run / "config.json").read_text())
    config["options"]["fake_keep"] = "many"  # as an older or edited config.json may hold
    (run / "config.json").write_text(json.dumps(config))
    line = one_line_error(promptopt("run", "--resume", str(run), "--plugin", str(FAKES)))
    assert "fake_keep" in line
    assert "a resumed run keeps the options saved in its config.json" in line
    assert "start a new run" in line
    proc = promptopt("run", "--resume", str(run), "-o", "fake_workers=1", "--plugin", str(FAKES))
    assert proc.returncode == 2 and "--resume takes the settings saved" in proc.stderr
