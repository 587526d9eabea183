"""Registry: resolution by name (and of other task references through the resolve_task hook),
loud duplicates, helpful unknown-name errors."""

from __future__ import annotations

from collections.abc import Sequence

import pluggy
import pytest

import promptopt
from promptopt.components import Selector, StepContext, Task
from promptopt.errors import DuplicateComponentError, PromptoptError, UnknownComponentError
from promptopt.registry import Registry
from promptopt.testing.fakes import ListTask
from promptopt.types import Candidate, Example, Prompt, Selection


class FirstSelector(Selector):
    name = "first"

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        return Selection(prompt=candidates[0].prompt, loss=None)


class OtherFirstSelector(FirstSelector):
    name = "first"


class PluginA:
    @promptopt.hookimpl
    def register_selectors(self, register):  # type: ignore[no-untyped-def]
        register(FirstSelector)


class PluginB:
    @promptopt.hookimpl
    def register_selectors(self, register):  # type: ignore[no-untyped-def]
        register(OtherFirstSelector)


def test_core_components_are_attributed_to_their_distribution(
    promptopt_pm: pluggy.PluginManager,
) -> None:
    registry = Registry.from_plugin_manager(promptopt_pm)
    chat = registry.entries["reasoner"]["chat"]
    assert chat.distribution == "promptopt"
    assert chat.version == promptopt.__version__


def test_duplicate_names_fail_naming_both_sources(promptopt_pm: pluggy.PluginManager) -> None:
    promptopt_pm.register(PluginA(), name="plugin-a")
    promptopt_pm.register(PluginB(), name="plugin-b")
    with pytest.raises(DuplicateComponentError) as info:
        Registry.from_plugin_manager(promptopt_pm)
    message = str(info.value)
    assert "plugin-a" in message and "plugin-b" in message
    assert "FirstSelector" in message and "OtherFirstSelector" in message


def test_duplicate_names_name_distributions() -> None:
    registry = Registry()
    registry.add("selector", FirstSelector, plugin="a", distribution="dist-one", version="1")
    with pytest.raises(DuplicateComponentError, match=r"dist-one.*dist-two"):
        registry.add("selector", OtherFirstSelector, plugin="b", distribution="dist-two")


def test_unknown_name_lists_available_and_suggests() -> None:
    registry = Registry()
    registry.add("selector", FirstSelector, plugin="a")
    with pytest.raises(UnknownComponentError) as info:
        registry.get("selector", "frist")
    assert "'first'" in str(info.value) and "did you mean" in str(info.value)


def test_registering_a_wrong_class_is_an_error() -> None:
    registry = Registry()
    with pytest.raises(PromptoptError, match="does not subclass"):
        registry.add("task", FirstSelector, plugin="confused")


def test_component_without_name_is_an_error() -> None:
    class Nameless(FirstSelector):
        name = ""

    with pytest.raises(PromptoptError, match="without a name"):
        Registry().add("selector", Nameless, plugin="p")


class Resolver:
    """A plugin that makes a task class for references starting with ``prefix``."""

    def __init__(self, prefix: str, named: bool = True) -> None:
        self.prefix, self.named = prefix, named

    @promptopt.hookimpl
    def resolve_task(self, ref: str) -> type[Task] | None:
        if not ref.startswith(self.prefix):
            return None
        name = ref if self.named else "something-else"
        return ListTask.with_examples(name, [Example("a", "Is it?", "Yes")])


def test_a_task_reference_no_plugin_registered_is_resolved_by_the_hook(
    promptopt_pm: pluggy.PluginManager,
) -> None:
    promptopt_pm.register(Resolver("mem:"), name="resolver")
    registry = Registry.from_plugin_manager(promptopt_pm)
    assert registry.task("mem:one").name == "mem:one"
    assert registry.task("folio").name == "folio"  # a registered name is never offered
    with pytest.raises(UnknownComponentError) as info:
        registry.task("nope")
    assert "unknown task 'nope' for --task; data files end in .csv" in str(info.value)
    promptopt_pm.register(Resolver("mem:"), name="resolver-2")
    with pytest.raises(DuplicateComponentError, match="'mem:one' is claimed by several plugins"):
        Registry.from_plugin_manager(promptopt_pm).task("mem:one")
    promptopt_pm.register(Resolver("bad:", named=False), name="resolver-3")
    with pytest.raises(PromptoptError, match="not a Task subclass named by that reference"):
        Registry.from_plugin_manager(promptopt_pm).task("bad:x")
