"""Stream tensors into a ``.safetensors`` file one at a time, hashing the bytes as they are written.

The format: 8-byte little-endian header length N, N bytes of JSON ``{name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {str: str}}`` padded with spaces to a multiple of 8,
then the raw little-endian tensor data back to back. Because every shape is known up front, the
header goes first and each tensor is written (and released) as soon as it is computed: memory never
holds more than one tensor, unlike serializing a whole state dict. SHA-256 runs on a worker thread
(hashlib releases the GIL), overlapping with computing and writing the next tensor.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Iterable, Sequence

import numpy as np

__all__ = ["Entry", "safetensors_header", "write_safetensors", "sha256_file"]

DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "F16": np.dtype("<f2"), "I64": np.dtype("<i8")}
_HASH_BACKLOG = 64 << 20  # bytes queued for the hashing thread before the writer waits
_CHUNK = 4 << 20


@dataclass(frozen=True)
class Entry:
    name: str
    dtype: str  # a key of DTYPES
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


def safetensors_header(entries: Sequence[Entry], metadata: dict[str, str] | None = None) -> bytes:
    """The length prefix and padded JSON header for ``entries`` stored in this order."""
    header: dict[str, object] = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for e in entries:
        if e.name in header:
            raise ValueError(f"duplicate tensor name {e.name!r}")
        header[e.name] = {"dtype": e.dtype, "shape": list(e.shape), "data_offsets": [offset, offset + e.nbytes]}
        offset += e.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


class _HashingWriter:
    """Writes to ``f`` while a single worker thread feeds the same bytes, in order, to SHA-256."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.sha = hashlib.sha256()
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self.pending: list[tuple[Future, int]] = []
        self.backlog = 0
        self.written = 0

    def write(self, data: memoryview | bytes) -> None:
        view = memoryview(data).cast("B")
        self.f.write(view)
        self.written += len(view)
        for start in range(0, len(view), _CHUNK):
            chunk = view[start:start + _CHUNK]
            self.pending.append((self.pool.submit(self.sha.update, chunk), len(chunk)))
            self.backlog += len(chunk)
        while self.backlog > _HASH_BACKLOG:
            future, size = self.pending.pop(0)
            future.result()
            self.backlog -= size

    def hexdigest(self) -> str:
        for future, _ in self.pending:
            future.result()
        self.pending.clear()
        self.pool.shutdown()
        return self.sha.hexdigest()

    def abort(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def write_safetensors(path: str | os.PathLike, entries: Sequence[Entry], arrays: Iterable[np.ndarray],
                      metadata: dict[str, str] | None = None) -> tuple[str, int]:
    """Write ``arrays`` (one per entry, same order, produced lazily) to ``path``; fsync it.

    Returns (sha256 hex digest, file size). Each array must have its entry's shape; it is cast to
    the entry's little-endian dtype when it differs (a no-op for float32 views).
    """
    with open(path, "wb") as f:
        out = _HashingWriter(f)
        try:
            out.write(safetensors_header(entries, metadata))
            count = 0
            for entry, array in zip(entries, arrays):
                array = np.asarray(array)
                if tuple(array.shape) != tuple(entry.shape):
                    raise ValueError(f"tensor {entry.name}: got shape {tuple(array.shape)}, header says {entry.shape}")
                array = np.ascontiguousarray(array, dtype=DTYPES[entry.dtype])
                out.write(memoryview(array).cast("B") if array.ndim else array.tobytes())
                count += 1
            if count != len(entries):
                raise ValueError(f"{path}: {len(entries)} tensors declared, {count} produced")
            digest = out.hexdigest()
        except BaseException:
            out.abort()
            raise
        f.flush()
        os.fsync(f.fileno())
        return digest, out.written


def sha256_file(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    """SHA-256 of a file read in ``chunk``-byte pieces (page cache only, no mapping)."""
    sha = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            sha.update(view[:n])
    return sha.hexdigest()
