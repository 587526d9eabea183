"""Metadata values from a GGUF header, read by walking the key-value section until the keys
are found: no tensor data, and no parsing of values nobody asked for (``gguf.GGUFReader`` maps
and parses every field, seconds for a 49k-token vocabulary). One reader for every plugin that
looks into GGUF files (quantization types, chat templates and token texts)."""

from __future__ import annotations

import struct
from collections.abc import Collection
from pathlib import Path
from typing import IO, Any

from promptopt.errors import ModelLoadError

#: GGUF value type -> struct format of one scalar (little-endian).
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i",
    6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9


class _Truncated(Exception):
    """The header ended before the key-value section did."""


def _read(handle: IO[bytes], fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = handle.read(size)
    if len(data) != size:
        raise _Truncated
    return struct.unpack(fmt, data)[0]


def _read_string(handle: IO[bytes]) -> bytes:
    size = _read(handle, "<Q")
    data = handle.read(size)
    if len(data) != size:
        raise _Truncated
    return data


def _value(handle: IO[bytes], kind: int, keep: bool) -> Any:
    """Read (``keep``) or skip one value of GGUF type ``kind``."""
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        if keep:
            return _read(handle, fmt)
        handle.seek(struct.calcsize(fmt), 1)
        return None
    if kind == _STRING:
        if keep:
            return _read_string(handle).decode("utf-8", "replace")
        handle.seek(_read(handle, "<Q"), 1)
        return None
    if kind == _ARRAY:
        item, count = _read(handle, "<I"), _read(handle, "<Q")
        if item in _SCALARS:  # one read for the whole array
            size = count * struct.calcsize(_SCALARS[item])
            if not keep:
                handle.seek(size, 1)
                return None
            data = handle.read(size)
            if len(data) != size:
                raise _Truncated
            return list(struct.unpack(f"<{count}{_SCALARS[item][1:]}", data))
        values = [_value(handle, item, keep) for _ in range(count)]
        return values if keep else None
    raise ValueError(f"unknown GGUF value type {kind}")


def header_value(path: Path, key: str) -> Any:
    """The value of metadata ``key`` in the GGUF at ``path`` (None when the file lacks it)."""
    return header_values(path, [key]).get(key)


def header_values(path: Path, keys: Collection[str]) -> dict[str, Any]:
    """The values of the metadata ``keys`` the GGUF at ``path`` has (absent keys left out),
    in one walk that stops once every key is found; a one-line error for a file that is not a
    GGUF or whose header is cut short."""
    wanted = {key.encode() for key in keys}
    found: dict[str, Any] = {}
    try:
        with path.open("rb") as handle:
            if handle.read(4) != b"GGUF":
                raise ModelLoadError(
                    f"{str(path)!r} is not a GGUF file",
                    hint="the file is corrupt or another format; re-download or re-export it",
                )
            version = _read(handle, "<I")
            count_fmt = "<I" if version == 1 else "<Q"
            _read(handle, count_fmt)  # tensor count
            for _ in range(_read(handle, count_fmt)):
                if len(found) == len(wanted):
                    break
                name = _read_string(handle)
                kind = _read(handle, "<I")
                value = _value(handle, kind, keep=name in wanted)
                if name in wanted:
                    found[name.decode()] = value
    except (_Truncated, ValueError) as exc:
        raise ModelLoadError(
            f"the GGUF header of {str(path)!r} is cut short or malformed ({exc or 'truncated'})",
            hint="the file is incomplete; re-download or re-export it",
        ) from None
    return found
