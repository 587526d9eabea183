"""Small core helpers every bundled backend shares: stop-string cutting, the usable CPU count,
the plain-template check, and counters measured since a snapshot."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from promptopt.accounting import Counters, Usage
from promptopt.chattext import PLAIN_TEMPLATE, check_plain_template
from promptopt.cpus import usable_cores, usable_cpus
from promptopt.stops import cut_at_stop


def test_cut_at_the_earliest_stop_string_ignoring_empty_ones() -> None:
    text = "Answer: B\nQ: next\n\nMore"
    assert cut_at_stop(text, ["\n\n", "\nQ:"]) == "Answer: B"
    assert cut_at_stop(text, ["", "\n\n"]) == "Answer: B\nQ: next"
    assert cut_at_stop(text, ["zzz"]) == text
    assert cut_at_stop(text, []) == text
    assert cut_at_stop(text, [""]) == text


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity is Linux-only")
def test_usable_cpus_follow_the_process_affinity() -> None:
    assert usable_cpus() == len(os.sched_getaffinity(0)) >= 1
    one = min(os.sched_getaffinity(0))
    code = (
        "import os; from promptopt.cpus import usable_cpus; "
        f"os.sched_setaffinity(0, {{{one}}}); print(usable_cpus())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "1"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity is Linux-only")
def test_usable_cores_count_each_physical_core_once() -> None:
    cpus = sorted(os.sched_getaffinity(0))
    topology = [
        (
            Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id").read_text(),
            Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id").read_text(),
        )
        for cpu in cpus
    ]
    assert usable_cores() == len(set(topology)) <= usable_cpus()
    code = (
        "import os; from promptopt.cpus import usable_cores; "
        f"os.sched_setaffinity(0, {{{cpus[0]}}}); print(usable_cores())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "1"  # one CPU is one core


def test_plain_template_needs_user_exactly_once() -> None:
    assert check_plain_template(PLAIN_TEMPLATE) == PLAIN_TEMPLATE
    assert check_plain_template("Q: {user}\nA:") == "Q: {user}\nA:"
    with pytest.raises(ValueError, match="exactly once"):
        check_plain_template("no placeholder")
    with pytest.raises(ValueError, match="exactly once"):
        check_plain_template("{user} {user}")
    with pytest.raises(ValueError, match=r"only use \{user\}"):
        check_plain_template("{user} {other}")
    with pytest.raises(ValueError, match=r"only use \{user\}"):
        check_plain_template("{user} {0}")


@dataclass
class Tally(Counters):
    reads: int = 0
    writes: int = 0


def test_counters_since_a_snapshot_and_added() -> None:
    tally = Tally(reads=3, writes=1)
    before = tally.snapshot()
    tally.reads += 4
    assert before == Tally(3, 1) and before is not tally
    assert tally.since(before) == Tally(reads=4, writes=0)
    tally.add(Tally(reads=1, writes=2))
    assert tally == Tally(reads=8, writes=3)
    usage = Usage(prompt_tokens=5, requests=1)
    start = usage.snapshot()
    usage.record(prompt_tokens=2, generated_tokens=7)
    assert usage.since(start) == Usage(prompt_tokens=2, generated_tokens=7)
    assert type(usage.since(start)) is Usage
