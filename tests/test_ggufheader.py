"""The GGUF header reader: every field a ``gguf.GGUFWriter`` writes reads back as
``gguf.GGUFReader`` reads it, without parsing what comes after the key; bad files fail by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader, GGUFWriter
from promptopt_llamacpp.quantize import file_type

from promptopt.errors import ModelLoadError
from promptopt.ggufheader import header_value, header_values


def write_gguf(path: Path) -> None:
    writer = GGUFWriter(str(path), "llama")
    writer.add_file_type(7)
    writer.add_uint32("test.u32", 123456)
    writer.add_int64("test.i64", -5)
    writer.add_float32("test.f32", 0.25)
    writer.add_bool("test.flag", True)
    writer.add_string("test.name", "héllo")
    writer.add_array("test.words", ["a", "bc", "", "déf"] * 500)
    writer.add_array("test.ints", [1, 2, 3])
    writer.add_uint32("test.after_arrays", 99)
    writer.add_tensor("w", np.ones((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_every_field_reads_as_gguf_reader_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path)
    fields = GGUFReader(str(path)).fields
    keys = [k for k in fields if not k.startswith("GGUF.")]
    assert "test.after_arrays" in keys and len(keys) >= 10
    for key in keys:
        got = header_value(path, key)
        want = fields[key].contents()
        if isinstance(want, float):
            assert got == pytest.approx(want), key
        else:
            assert got == want, key
    assert header_value(path, "test.missing") is None
    assert file_type(path) == 7
    wanted = ["test.after_arrays", "test.words", "test.missing", "general.file_type"]
    assert header_values(path, wanted) == {
        "test.after_arrays": 99,
        "test.words": fields["test.words"].contents(),
        "general.file_type": 7,
    }


def test_a_cut_file_and_a_foreign_file_fail_with_their_name(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    write_gguf(path)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelLoadError, match=r"cut\.gguf.*cut short") as info:
        header_value(cut, "test.after_arrays")
    assert "re-download" in str(info.value.hint)
    foreign = tmp_path / "model.safetensors"
    foreign.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors.*not a GGUF"):
        header_value(foreign, "general.file_type")


def test_embedded_model_is_q4_1(smollm2: Path) -> None:
    assert file_type(smollm2) == 3  # LLAMA_FTYPE_MOSTLY_Q4_1
