"""One metadata value from a GGUF header, read by walking the key-value section until the key
is found: no tensor data and no vocabulary parsing (``gguf.GGUFReader`` maps and parses every
field, seconds for a 49k-token vocabulary)."""

from __future__ import annotations

import struct
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
        if not keep and item in _SCALARS:
            handle.seek(count * struct.calcsize(_SCALARS[item]), 1)
            return None
        values = [_value(handle, item, keep) for _ in range(count)]
        return values if keep else None
    raise ValueError(f"unknown GGUF value type {kind}")


def header_value(path: Path, key: str) -> Any:
    """The value of metadata ``key`` in the GGUF at ``path`` (None when the file lacks it)."""
    wanted = key.encode()
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
                name = _read_string(handle)
                kind = _read(handle, "<I")
                value = _value(handle, kind, keep=name == wanted)
                if name == wanted:
                    return value
    except (_Truncated, ValueError) as exc:
        raise ModelLoadError(
            f"the GGUF header of {str(path)!r} is cut short or malformed ({exc or 'truncated'})",
            hint="the file is incomplete; re-download or re-export it",
        ) from None
    return None
