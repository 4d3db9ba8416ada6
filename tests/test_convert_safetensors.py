"""The streaming safetensors writer: files the safetensors library reads back exactly."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from safetensors import safe_open

from senet_zoo._files import sha256_file
from senet_zoo.convert.safetensors_writer import Entry, write_safetensors


def test_streamed_file_reads_back(tmp_path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "a.weight": rng.standard_normal((3, 5, 7)).astype(np.float32),
        "a.count": np.zeros((), np.int64),
        "b": rng.standard_normal(11).astype(np.float64),
    }
    entries = [Entry("a.weight", "F32", (3, 5, 7)), Entry("a.count", "I64", ()), Entry("b", "F64", (11,))]
    written = []
    path = tmp_path / "x.safetensors"
    size = write_safetensors(
        path,
        entries,
        (arrays[e.name] for e in entries),
        {"k": "provisional"},
        final_metadata=lambda: {"k": "finalvalue!"},
        done=written.append,
    )
    data = path.read_bytes()
    assert size == len(data) and written == [0, 1, 2]
    assert int.from_bytes(data[:8], "little") % 8 == 0
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"k": "finalvalue!"}
        for name, array in arrays.items():
            assert torch.equal(f.get_tensor(name), torch.from_numpy(array))
    assert sha256_file(path, chunk=1000) == hashlib.sha256(data).hexdigest()


def test_writer_rejects_inconsistent_input(tmp_path) -> None:
    entries = [Entry("w", "F32", (2, 2))]
    with pytest.raises(ValueError, match=r"tensor w: got shape \(4,\)"):
        write_safetensors(tmp_path / "a", entries, [np.zeros(4, np.float32)])
    with pytest.raises(ValueError, match="1 tensors declared, 0 produced"):
        write_safetensors(tmp_path / "b", entries, [])
    with pytest.raises(ValueError, match="same length|length"):
        write_safetensors(
            tmp_path / "c",
            entries,
            [np.zeros((2, 2), np.float32)],
            {"k": "0" * 8},
            final_metadata=lambda: {"k": "0" * 64},
        )
