"""Record hook calls on a plugin manager, to assert which hooks ran with what arguments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pluggy


@dataclass(frozen=True)
class HookCall:
    """One hook call: its name and keyword arguments."""

    name: str
    kwargs: dict[str, Any]


@dataclass
class HookRecorder:
    """Collects every hook call made through a plugin manager until :meth:`close`."""

    pm: pluggy.PluginManager
    calls: list[HookCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        def before(hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
            self.calls.append(HookCall(hook_name, dict(kwargs)))

        def after(
            outcome: Any, hook_name: str, hook_impls: Sequence[Any], kwargs: Mapping[str, Any]
        ) -> None:
            return None

        self._undo = self.pm.add_hookcall_monitoring(before, after)

    def names(self) -> list[str]:
        """Hook names in call order."""
        return [call.name for call in self.calls]

    def calls_of(self, name: str) -> list[HookCall]:
        return [call for call in self.calls if call.name == name]

    def close(self) -> None:
        """Stop recording."""
        self._undo()
