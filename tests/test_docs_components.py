"""Meta-tests: the docs equal the code of the component interfaces.

* Every public method (and property) of Task, Backend, Reasoner, Proposer, LossExtractor,
  Selector and Method, inherited ones included, has a section in docs/components.md whose
  heading is its exact signature, ``### `Owner.name(param, *, key=default)` ``, with every
  parameter described (``- `param`:``), and no section documents a method that does not exist.
  When a signature changes, the failure names the heading to write.
* Wherever the docs and READMEs write a call of such a method on a component
  (``method.finalize(ctx, initial, selector)``, ``ctx.loss_extractor.evaluate(ctx, prompts)``),
  the method exists and the call fits its parameters.
* Every option of every in-tree component is named in its distribution's README.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from promptopt import components
from promptopt.components import (
    Backend,
    Component,
    LossExtractor,
    Method,
    Proposer,
    Reasoner,
    Selector,
    Task,
)

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
#: Where the interfaces are documented, method by method.
REFERENCE = DOCS / "components.md"
INTERFACES: tuple[type[Component], ...] = (
    Task,
    Backend,
    Reasoner,
    Proposer,
    LossExtractor,
    Selector,
    Method,
)
#: A method's section: "### `Owner.name(params)`" (or "### `Owner.name`" for a property) up to
#: the next heading.
SECTION = re.compile(
    r"^### `(?P<owner>\w+)\.(?P<name>\w+)(?:\((?P<params>[^`]*)\))?`\n(?P<body>.*?)(?=^#|\Z)",
    re.M | re.S,
)


# --------------------------------------------------------------------------- the code


def _function(raw: Any) -> Callable[..., Any] | None:
    """The function behind a class attribute (method, classmethod, staticmethod)."""
    if isinstance(raw, (classmethod, staticmethod)):
        return raw.__func__  # type: ignore[no-any-return]
    return raw if inspect.isfunction(raw) else None


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter]:
    params = list(inspect.signature(func).parameters.values())
    return params[1:] if params and params[0].name in ("self", "cls") else params


def render(func: Callable[..., Any]) -> str:
    """The parameter list as the docs write it: names, ``*`` before keyword-only ones, ``/``
    after positional-only ones and ``name=default`` (the default's repr); no annotations."""
    out: list[str] = []
    before: Any = None
    for p in _parameters(func):
        if before is p.POSITIONAL_ONLY and p.kind is not before:
            out.append("/")
        if p.kind is p.KEYWORD_ONLY and before not in (p.KEYWORD_ONLY, p.VAR_POSITIONAL):
            out.append("*")
        if p.kind is p.VAR_POSITIONAL:
            out.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            out.append(f"**{p.name}")
        else:
            out.append(p.name if p.default is p.empty else f"{p.name}={p.default!r}")
        before = p.kind
    if before is inspect.Parameter.POSITIONAL_ONLY:
        out.append("/")
    return ", ".join(out)


def interface_members() -> dict[str, str | None]:
    """``"Owner.name"`` -> rendered parameters (None for a property) for every public method
    and property of every interface, attributed to the interface class that defines it."""
    members: dict[str, str | None] = {}
    for cls in INTERFACES:
        for name in dir(cls):
            if name.startswith("_"):
                continue
            owner = next(k for k in cls.__mro__ if name in vars(k))
            if owner.__module__ != components.__name__:
                continue  # ABC, Generic, object
            raw = vars(owner)[name]
            if isinstance(raw, property):
                members[f"{owner.__name__}.{name}"] = None
            elif (func := _function(raw)) is not None:
                members[f"{owner.__name__}.{name}"] = render(func)
    return members


def heading(member: str, params: str | None) -> str:
    return f"### `{member}`" if params is None else f"### `{member}({params})`"


# --------------------------------------------------------------------------- the reference


def documented() -> dict[str, tuple[str | None, str]]:
    text = REFERENCE.read_text()
    return {f"{m['owner']}.{m['name']}": (m["params"], m["body"]) for m in SECTION.finditer(text)}


def test_the_interfaces_have_the_methods_this_test_expects() -> None:
    members = interface_members()
    assert "Backend.generate" in members and "Component.state_dict" in members
    assert members["Backend.model_id"] is None
    assert len(members) >= 30


def test_every_interface_method_is_documented_with_its_signature() -> None:
    docs = documented()
    problems = []
    for member, params in interface_members().items():
        want = heading(member, params)
        if member not in docs:
            problems.append(f"docs/components.md has no section for {member}; add `{want}`")
            continue
        shown, body = docs[member]
        if shown != params:
            problems.append(
                f"docs/components.md shows {heading(member, shown)[4:]}, the code is "
                f"{want[4:]}: change the heading to `{want}`"
            )
            continue
        names = [n.lstrip("*") for n in (params or "").split(", ") if n and n not in "*/"]
        for name in (n.partition("=")[0] for n in names):
            if f"- `{name}`:" not in body:
                problems.append(f"docs/components.md does not describe {member}'s `{name}`")
    assert not problems, "\n".join(problems)


def test_no_documented_method_is_missing_from_the_code() -> None:
    extra = sorted(set(documented()) - set(interface_members()))
    assert not extra, f"docs/components.md documents methods that do not exist: {extra}"


# --------------------------------------------------------------------------- calls elsewhere

#: Receivers that name a component in prose and examples (``backend.chat(user)``).
RECEIVERS: dict[str, type[Component]] = {
    "task": Task,
    "backend": Backend,
    "optimizer": Backend,
    "reasoner": Reasoner,
    "proposer": Proposer,
    "loss_extractor": LossExtractor,
    "selector": Selector,
    "method": Method,
    **{cls.__name__: cls for cls in INTERFACES},
}
CALL = re.compile(r"(?<![\w.])(?:ctx\.)?(?P<receiver>\w+)\.(?P<name>\w+)\((?P<args>[^()`]*)\)")


def prose_files() -> list[Path]:
    """The docs and READMEs (the example packages' code is tested by running it)."""
    readmes = [REPO / "README.md", *sorted(REPO.glob("plugins/*/README.md"))]
    readmes += sorted(REPO.glob("tasks/*/README.md"))
    return [*sorted(DOCS.glob("*.md")), *sorted(DOCS.glob("examples/*/README.md")), *readmes]


def prose(text: str) -> str:
    """``text`` without its fenced code blocks (example files are checked by running them)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def calls() -> Iterator[tuple[str, type[Component], str, str]]:
    for path in prose_files():
        for m in CALL.finditer(prose(path.read_text())):
            cls = RECEIVERS.get(m["receiver"])
            if cls is not None:
                yield str(path.relative_to(REPO)), cls, m["name"], m["args"]


def test_component_calls_in_the_docs_fit_the_code() -> None:
    problems = []
    seen = 0
    for where, cls, name, args in calls():
        raw = inspect.getattr_static(cls, name, None)
        if raw is None or name.startswith("_"):
            if not hasattr(cls, name):  # a call on something else of that name is not ours
                problems.append(f"{where}: {cls.__name__} has no method {name}()")
            continue
        func = _function(raw)
        if func is None:
            continue
        seen += 1
        params = _parameters(func)
        given = [a.strip() for a in args.split(",") if a.strip() not in ("", "*", "/")]
        keywords = [a.partition("=")[0].strip() for a in given if "=" in a]
        positional = [a for a in given if "=" not in a]
        names = {p.name for p in params}
        slots = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        required = [p for p in slots if p.default is p.empty]
        shown = f"{name}({args})"
        if any(k not in names for k in keywords):
            problems.append(f"{where}: {shown} names a parameter {cls.__name__}.{name} lacks")
        elif len(positional) > len(slots):
            problems.append(f"{where}: {shown} passes more than {cls.__name__}.{name} takes")
        elif not keywords and len(positional) < len(required):
            missing = [p.name for p in required[len(positional) :]]
            problems.append(f"{where}: {shown} leaves out {missing} of {cls.__name__}.{name}")
    assert seen >= 10, f"only {seen} component calls found in the docs"
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- options in READMEs


def test_every_option_of_an_in_tree_component_is_in_its_readme() -> None:
    """``-o`` options are documented where users look for them: the distribution's README
    (``seed`` and ``data_dir`` come from ``--seed``/``--data-dir``, and ``accept`` is every
    method's: each is documented once)."""
    from promptopt.config import RUN_LEVEL_KEYS, RUN_LEVEL_OPTIONS
    from promptopt.pluginmanager import new_plugin_manager
    from promptopt.registry import Registry

    readmes = {
        p.parent.name: p
        for p in [*REPO.glob("plugins/*/README.md"), *REPO.glob("tasks/*/README.md")]
    }
    problems = []
    for reg in Registry.from_plugin_manager(new_plugin_manager()).registrations():
        readme = readmes.get(reg.distribution)
        if readme is None:
            continue  # the core's own (documented in docs/) and installed third-party plugins
        text = readme.read_text()
        for option in reg.cls.Options.model_fields:
            if option in (*RUN_LEVEL_KEYS, *RUN_LEVEL_OPTIONS) or re.search(
                rf"`[^`\n]*\b{option}\b[^`\n]*`", text
            ):
                continue  # in code spans: `n_ctx` (4096), `-o kv_cache_type=f32`
            where = readme.relative_to(REPO)
            problems.append(f"{where} does not name {reg.kind} {reg.name!r}'s option {option!r}")
    assert not problems, "\n".join(sorted(set(problems)))
