"""How many CPUs this process may run on, the one count every backend's thread policy uses."""

from __future__ import annotations

import os
from pathlib import Path


def usable_cpus() -> int:
    """The cores this process may run on (its CPU affinity; the machine's count where the OS
    has no affinity call), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def usable_cores() -> int:
    """The physical cores among :func:`usable_cpus` (hyperthread siblings counted once), read
    from Linux's CPU topology; half the usable CPUs where the topology cannot be read. Compute-
    bound kernels such as llama.cpp's run best with one thread per core."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, usable_cpus() // 2)
    cores: set[tuple[str, str]] = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            cores.add((package, (topology / "core_id").read_text().strip()))
        except OSError:
            return max(1, len(cpus) // 2)
    return max(1, len(cores))
