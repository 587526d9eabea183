"""What a fresh install from the README gets: the distributions that draw plots depend on the
plotting library themselves (no optional extra is needed for ``losses.png`` or
``transfer.png``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0]
        for sep in "<>=!~[ ":
            name = name.split(sep)[0]
        names.add(name.strip().lower())
    return names


@pytest.mark.parametrize(
    "pyproject", ["pyproject.toml", "plugins/promptopt-llamacpp/pyproject.toml"]
)
def test_plotting_distributions_require_matplotlib(pyproject: str) -> None:
    project = tomllib.loads((REPO / pyproject).read_text(encoding="utf-8"))["project"]
    assert "matplotlib" in requirement_names(project["dependencies"]), pyproject
    extras = project.get("optional-dependencies", {})
    assert "plot" not in extras, f"{pyproject}: the plot extra is no longer the way to get plots"
