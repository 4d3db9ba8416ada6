"""The streaming safetensors writer: files the safetensors library reads back exactly."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from senet_zoo._files import sha256_file
from senet_zoo.convert.safetensors_writer import Entry, aligned_order, write_safetensors


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
    assert (8 + int.from_bytes(data[:8], "little")) % 64 == 0  # the data starts 64-byte aligned
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


def test_writeback_writer_starts_writeback_and_keeps_bytes(tmp_path, monkeypatch) -> None:
    """Every ``every`` bytes the kernel is asked to start writing back (Linux); the bytes are unchanged."""
    from senet_zoo import _files

    calls = []
    monkeypatch.setattr(_files, "_sync_file_range", lambda: lambda fd, off, n, flags: calls.append((off, n, flags)))
    chunks = [bytes([i]) * 700 for i in range(10)]
    path = tmp_path / "w.bin"
    with open(path, "wb") as fh:
        out = _files.WritebackWriter(fh, every=2000)
        for c in chunks:
            out.write(memoryview(c))
    assert path.read_bytes() == b"".join(chunks)
    assert calls == [(0, 0, 2)] * 3  # after 2100, 4200 and 6300 bytes

    monkeypatch.setattr(_files, "_sync_file_range", lambda: None)  # no sync_file_range: a plain writer
    with open(path, "wb") as fh:
        _files.WritebackWriter(fh, every=1).write(b"abc")
    assert path.read_bytes() == b"abc"


def test_background_hash_is_sha256_in_order_and_bounded() -> None:
    """The converter's output hash: same digest as hashlib, callbacks after the data before them, at most
    ``limit`` bytes waiting (a larger single item still passes)."""
    import threading

    from senet_zoo.convert.converter import _BackgroundHash

    gate = threading.Event()
    bg = _BackgroundHash(limit=100)
    seen = []
    bg.after(gate.wait)  # holds the hashing thread until the writer is known to be blocked
    bg.update(b"a" * 60)
    blocked = threading.Thread(target=bg.update, args=(b"b" * 60,))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive(), "a second 60-byte item must wait while 60 of 100 bytes are pending"
    gate.set()
    blocked.join(5)
    assert not blocked.is_alive()
    bg.update(b"c" * 500)  # larger than the limit: waits for an empty queue, then goes
    bg.after(lambda: seen.append("after c"))
    digest = bg.hexdigest()
    assert digest == hashlib.sha256(b"a" * 60 + b"b" * 60 + b"c" * 500).hexdigest()
    assert seen == ["after c"]


def test_aligned_order_puts_whole_multiples_of_64_bytes_first(tmp_path) -> None:
    sizes = {"odd": 3, "a": 16, "small": 1, "b": 32}  # float32 elements: 12, 64, 4, 128 bytes
    entries = aligned_order([Entry(k, "F32", (n,)) for k, n in sizes.items()], lambda e: e.nbytes)
    assert [e.name for e in entries] == ["a", "b", "odd", "small"]
    path = tmp_path / "x.safetensors"
    write_safetensors(path, entries, [np.full(e.shape, i, np.float32) for i, e in enumerate(entries)])
    with safe_open(str(path), "np") as f:
        assert [float(f.get_tensor(e.name)[0]) for e in entries] == [0.0, 1.0, 2.0, 3.0]
    header = json.loads(path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")])
    start = 8 + int.from_bytes(path.read_bytes()[:8], "little")
    assert [(start + header[k]["data_offsets"][0]) % 64 for k in ("a", "b", "odd")] == [0, 0, 0]
    assert (start + header["small"]["data_offsets"][0]) % 64 != 0


def test_save_state_dict_round_trips_every_dtype_it_accepts(tmp_path) -> None:
    from safetensors.torch import load_file

    from senet_zoo.hub.weights_file import save_state_dict

    state = {
        "w": torch.randn(3, 5),
        "half": torch.randn(7).to(torch.bfloat16),
        "f16": torch.randn(2, 2).half(),
        "count": torch.tensor(3),
        "mask": torch.tensor([True, False, True]),
        "bytes": torch.arange(5, dtype=torch.uint8),
    }
    path = tmp_path / "s.safetensors"
    assert save_state_dict(path, state, {"format": "pt"}) == path.stat().st_size
    back = load_file(str(path))
    assert back.keys() == state.keys()
    assert all(back[k].dtype == v.dtype and torch.equal(back[k], v) for k, v in state.items())
    with pytest.raises(TypeError, match=r"s2\.safetensors: cannot store tensors of dtype torch\.complex64"):
        save_state_dict(tmp_path / "s2.safetensors", {"z": torch.zeros(2, dtype=torch.complex64)})
