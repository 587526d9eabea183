"""The authors' texts, read byte for byte from ``templates/``: the GA and DE evolution
templates (their placeholders ``<prompt0>``..``<prompt3>``), the paraphrase template of the
initialisation and the 20 manual prompts the BBH population starts from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Literal

DeTemplate = Literal["v1", "v2", "v3"]

#: One placeholder of a template (the authors fill them with chained ``str.replace``).
_SLOT = re.compile(r"<prompt[0-3]>|<input>")


@cache
def read(name: str) -> str:
    """The text of ``templates/<name>.txt`` exactly as stored."""
    return (
        resources.files("promptopt_evoprompt")
        .joinpath(f"templates/{name}.txt")
        .read_text(encoding="utf-8")
    )


def ga_template() -> str:
    """``templates_2["sim"]``: crossover of Prompt 1 and Prompt 2, then mutation."""
    return read("ga")


def de_template(version: DeTemplate = "v1") -> str:
    """``templates[version]["sim"]``: v1 (default) mutates the difference of two donors and
    crosses it with the best prompt (Prompt 3) and the basic prompt; v2 drops Prompt 3; v3
    mutates the donors themselves."""
    return read(f"de_{version}")


def paraphrase_template() -> str:
    """The initialisation's paraphrase request (``llm_client.paraphrase``), slot ``<input>``."""
    return read("paraphrase")


def manual_prompts() -> tuple[str, ...]:
    """The authors' BBH manual prompts (``BBH/prompts.txt``), in file order."""
    return tuple(line.rstrip() for line in read("manual_prompts").splitlines() if line.strip())


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each placeholder (``"<prompt1>"``...) replaced by its value, in one
    pass: a prompt that itself spells a placeholder is not filled again."""
    return _SLOT.sub(lambda m: values.get(m.group(0), m.group(0)), template)
