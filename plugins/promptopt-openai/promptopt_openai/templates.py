"""The served model's chat template, applied client-side (once) so that ``chat(user)`` is the
full model input and reasoning, extractor and options splice exactly as on the local backends.

Where the template comes from, first match wins:

1. ``-o tokenizer=...``: a GGUF file, a Hugging Face model/tokenizer folder, a ``.jinja`` file,
   or a hub id (read with transformers);
2. the server's own report (llama.cpp's ``llama-server`` ``/props``: ``chat_template``);
3. the served model id when it is a local GGUF file or model folder (``llama_cpp.server`` and
   vLLM report the path they loaded): only its tokenizer fields, never another file, since the
   id is whatever the server says (:func:`from_served_id`);
4. the served model id as a hub id, when transformers is installed and can load its tokenizer.

A source also names the texts the model's tokenizer parses as control tokens (``controls``),
so that the backend can refuse user text that a server would turn into control tokens.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from promptopt.errors import ModelLoadError, PromptoptError


@dataclass(frozen=True)
class TemplateSource:
    """A chat template and the special-token texts it refers to."""

    template: str | None
    bos_token: str = ""
    eos_token: str = ""
    #: Whether the model's tokenizer puts BOS in front of every input by itself (None: unknown).
    adds_bos: bool | None = None
    #: Where it came from, for messages (``gguf:/path``, ``hf:/folder``, ``server:/props`` ...).
    origin: str = ""
    #: What identifies the source beyond the template (file name, size, quantization).
    identity: dict[str, Any] = field(default_factory=dict)
    #: Texts of the tokens the tokenizer parses as control tokens when they appear in text
    #: (control, user-defined and unknown tokens); None when the source does not list them.
    controls: tuple[str, ...] | None = None

    def digest(self, plain_template: str) -> str:
        """16 hex digits of the template actually used (the plain one without a chat one)."""
        text = self.template if self.template is not None else plain_template
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class ChatRenderer:
    """Renders one user turn with a Hugging Face-style Jinja chat template: sandboxed, the
    same globals and filters as transformers and llama-cpp-python pass."""

    def __init__(self, source: TemplateSource) -> None:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        if source.template is None:
            raise ValueError("no chat template to render")
        self.source = source
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=[jinja2.ext.loopcontrols, _generation_tag_extension()],
        )
        env.filters["tojson"] = _tojson
        env.globals["raise_exception"] = _raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            self._template = env.from_string(source.template)
        except jinja2.TemplateError as exc:
            raise ModelLoadError(
                f"the chat template from {source.origin} does not parse: {exc}",
                hint="pass a working one with -o tokenizer=PATH",
            ) from None

    def render(self, user: str) -> str:
        """The model input for one user message, generation prompt included; a template that
        fails (the sandbox blocks what it does, an undefined name) is a one-line error."""
        import jinja2

        try:
            return str(
                self._template.render(
                    messages=[{"role": "user", "content": user}],
                    bos_token=self.source.bos_token,
                    eos_token=self.source.eos_token,
                    add_generation_prompt=True,
                )
            )
        except jinja2.TemplateError as exc:
            raise ModelLoadError(
                f"the chat template from {self.source.origin} cannot be rendered: {exc}",
                hint="pass a working one with -o tokenizer=PATH, or use -o template=plain",
            ) from None


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise PromptoptError(f"the chat template refused the input: {message}")


def _generation_tag_extension() -> type:
    """A Jinja extension that renders ``{% generation %}...{% endgeneration %}`` blocks (HF's
    training-mask markers) as their plain content."""
    import jinja2.ext

    class GenerationTag(jinja2.ext.Extension):
        tags = {"generation"}  # noqa: RUF012 - jinja reads it as a class attribute

        def parse(self, parser: Any) -> Any:
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    return GenerationTag


# --------------------------------------------------------------------------- sources


def _special(value: Any) -> str:
    """A token given as text or as an AddedToken-style dict."""
    if isinstance(value, dict):
        value = value.get("content", "")
    return value if isinstance(value, str) else ""


def from_gguf(path: Path) -> TemplateSource:
    """Template, BOS/EOS texts and the add-BOS flag from a GGUF file's metadata (read once
    per file version in a process: reading a large vocabulary takes a while)."""
    stat = path.stat()
    return _read_gguf(path.resolve(), stat.st_size, stat.st_mtime_ns)


#: GGUF ``tokenizer.ggml.token_type`` values llama.cpp's special-token parsing matches in text:
#: unknown (2), control (3) and user-defined (4) tokens.
GGUF_CONTROL_TYPES = frozenset({2, 3, 4})


#: The GGUF metadata a template source is read from.
_GGUF_KEYS = (
    "general.name",
    "general.architecture",
    "general.file_type",
    "tokenizer.chat_template",
    "tokenizer.ggml.model",
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.bos_token_id",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.add_bos_token",
)


@functools.lru_cache(maxsize=8)
def _read_gguf(path: Path, size: int, mtime_ns: int) -> TemplateSource:
    from promptopt.ggufheader import header_values

    try:
        meta = header_values(path, _GGUF_KEYS)
    except OSError as exc:
        raise ModelLoadError(
            f"cannot read GGUF metadata of {str(path)!r}: {exc}", hint="pass a complete GGUF file"
        ) from None
    value = meta.get
    found = value("tokenizer.ggml.tokens")
    tokens = found if isinstance(found, list) else None

    def token_text(key: str) -> str:
        index = value(key)
        if tokens is None or not isinstance(index, int) or not 0 <= index < len(tokens):
            return ""
        return str(tokens[index])

    add_bos = value("tokenizer.ggml.add_bos_token")
    if add_bos is None:  # llama.cpp's default: SentencePiece vocabularies add BOS
        add_bos = value("tokenizer.ggml.model") == "llama"
    types = value("tokenizer.ggml.token_type")
    controls = (
        tuple(
            str(tokens[i])
            for i, kind in enumerate(types)
            if kind in GGUF_CONTROL_TYPES and i < len(tokens)
        )
        if tokens is not None and isinstance(types, list)
        else None
    )
    return TemplateSource(
        template=value("tokenizer.chat_template") or None,
        bos_token=token_text("tokenizer.ggml.bos_token_id"),
        eos_token=token_text("tokenizer.ggml.eos_token_id"),
        adds_bos=bool(add_bos),
        origin=f"gguf:{path}",
        identity={
            "name": value("general.name"),
            "architecture": value("general.architecture"),
            "file_type": value("general.file_type"),
            "bytes": size,
        },
        controls=controls,
    )


def from_hf_folder(folder: Path) -> TemplateSource:
    """Template and special tokens from a Hugging Face folder's tokenizer files (no
    transformers needed): ``chat_template.jinja``/``.json`` or ``tokenizer_config.json``."""
    config = _json_object(folder / "tokenizer_config.json")
    template: Any = config.get("chat_template")
    if (folder / "chat_template.jinja").is_file():
        template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    elif (folder / "chat_template.json").is_file():
        template = _json_object(folder / "chat_template.json").get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    add_bos = config.get("add_bos_token")
    return TemplateSource(
        template=template if isinstance(template, str) and template else None,
        bos_token=_special(config.get("bos_token")),
        eos_token=_special(config.get("eos_token")),
        adds_bos=add_bos if isinstance(add_bos, bool) else None,
        origin=f"hf:{folder}",
        identity={"tokenizer_class": config.get("tokenizer_class")},
        controls=_hf_added_tokens(folder, config),
    )


def _json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` ({} when the file is absent); a one-line error when it is
    not a JSON object."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot read {str(path)!r}: {exc}", hint="pass -o tokenizer=PATH"
        ) from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{str(path)!r} is not a JSON object", hint="pass -o tokenizer=PATH")
    return data


def _hf_added_tokens(folder: Path, config: dict[str, Any]) -> tuple[str, ...] | None:
    """Texts of a Hugging Face tokenizer's added tokens (special or not, transformers matches
    all of them in text): ``tokenizer_config.json``'s ``added_tokens_decoder``, else
    ``tokenizer.json``'s ``added_tokens``; None when neither lists them."""
    decoder = config.get("added_tokens_decoder")
    entries: Any = list(decoder.values()) if isinstance(decoder, dict) else None
    if entries is None:
        entries = _json_object(folder / "tokenizer.json").get("added_tokens")
    if not isinstance(entries, list):
        return None
    return tuple(text for text in (_special(e) for e in entries) if text)


def from_transformers(name: str) -> TemplateSource:
    """Template and special tokens of a hub id (or folder) through transformers' tokenizer."""
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ModelLoadError(
            f"reading the tokenizer of {name!r} needs transformers",
            hint="pip install transformers, or pass -o tokenizer=PATH (a GGUF file or folder)",
        ) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load the tokenizer of {name!r}: {str(exc).splitlines()[0]}",
            hint="pass -o tokenizer=PATH (a GGUF file or the model's folder)",
        ) from None
    bos = tokenizer.bos_token_id
    probe = tokenizer.encode("a", add_special_tokens=True) if bos is not None else []
    template = tokenizer.chat_template
    added = [str(t) for t in getattr(tokenizer, "added_tokens_decoder", {}).values()]
    return TemplateSource(
        template=template if isinstance(template, str) and template else None,
        bos_token=tokenizer.bos_token or "",
        eos_token=tokenizer.eos_token or "",
        adds_bos=bool(probe) and probe[0] == bos,
        origin=f"hub:{name}",
        identity={"tokenizer_class": type(tokenizer).__name__},
        controls=tuple(dict.fromkeys([*tokenizer.all_special_tokens, *added])),
    )


def from_path_or_hub(ref: str) -> TemplateSource:
    """A GGUF file, a ``.jinja`` template file, a folder, or else a hub id."""
    path = Path(ref).expanduser()
    if path.is_file():
        if _is_gguf(path):
            return from_gguf(path)
        if path.suffix in (".jinja", ".j2", ".txt"):
            return TemplateSource(template=path.read_text(encoding="utf-8"), origin=f"file:{path}")
        raise ModelLoadError(
            f"{ref!r} is neither a GGUF file nor a .jinja template",
            hint="pass a GGUF file, a Hugging Face folder, a .jinja file or a hub id",
        )
    if path.is_dir():
        source = from_hf_folder(path)
        if source.template is None and not source.bos_token and not source.eos_token:
            ggufs = sorted(path.glob("*.gguf"))
            if ggufs:
                return from_gguf(ggufs[0])
        return source
    if ref.startswith(("/", ".", "~")):
        raise ModelLoadError(f"tokenizer path {ref!r} does not exist", hint="check the path")
    return from_transformers(ref)


def from_props(props: dict[str, Any], origin: str) -> TemplateSource | None:
    """What llama.cpp's server reports in ``/props`` (None when it reports no template)."""
    template = props.get("chat_template")
    if not isinstance(template, str) or not template:
        return None
    return TemplateSource(
        template=template,
        bos_token=_special(props.get("bos_token")),
        eos_token=_special(props.get("eos_token")),
        origin=origin,
    )


def from_served_id(model_id: str) -> TemplateSource | None:
    """The template of a served model whose id is a local GGUF file or model folder, or a hub
    id transformers can load; None when neither works. The id is what the server reports, so
    no other file is ever read from it: its text would be sent back inside every prompt."""
    path = Path(model_id).expanduser()
    if path.exists():
        try:
            if path.is_file() and _is_gguf(path):
                return from_gguf(path)
            if path.is_dir() and _is_model_folder(path):
                return from_path_or_hub(str(path))
        except ModelLoadError:
            return None
        return None
    if "/" in model_id and not model_id.startswith(("/", ".", "~")):
        try:
            return from_transformers(model_id)
        except Exception:  # any loader failure (network, format): no template from here
            return None
    return None


def _is_gguf(path: Path) -> bool:
    """True for a regular file that starts with the GGUF magic (only 4 bytes are read)."""
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False


#: Files whose presence makes a folder a model folder whose template may be read.
MODEL_FOLDER_MARKERS = ("tokenizer_config.json", "config.json")


def _is_model_folder(folder: Path) -> bool:
    """A Hugging Face model/tokenizer folder or a folder holding a GGUF file."""
    return any((folder / name).is_file() for name in MODEL_FOLDER_MARKERS) or any(
        _is_gguf(p) for p in folder.glob("*.gguf")
    )
