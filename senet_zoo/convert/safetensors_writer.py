"""Stream tensors into a ``.safetensors`` file one at a time; SHA-256 of files in chunks.

The format: 8-byte little-endian header length N, N bytes of JSON ``{name: {dtype, shape,
data_offsets: [begin, end]}, "__metadata__": {str: str}}`` padded with spaces, then the raw
little-endian tensor data back to back (the format allows no gaps). senet-zoo pads the header so that the
data starts at a multiple of :data:`ALIGNMENT` bytes and stores first the tensors whose sizes are multiples
of it (:func:`aligned_order`): a memory-mapped file then hands out tensors aligned the way torch allocates
them, usable in place (misaligned data takes other CPU kernel paths, with other rounding), and only the
few small odd-sized tensors at the end need a copy. Because every shape is known up front, the
header goes first and each tensor is written (and released) as soon as it is computed: memory never
holds more than one tensor, unlike serializing a whole state dict. Metadata that is still being
computed while the data is written (the source file's hash) can replace a same-length placeholder
at the end.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from .._files import WritebackWriter

__all__ = ["ALIGNMENT", "Entry", "aligned_order", "safetensors_header", "write_safetensors"]

ALIGNMENT = 64  # bytes: torch's CPU allocator alignment
DTYPES: dict[str, np.dtype] = {
    "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<i2"),  # numpy has no bfloat16: its bits as int16
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    name: str
    dtype: str  # a key of DTYPES
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPES[self.dtype].itemsize


def aligned_order(items: Iterable[T], nbytes: Callable[[T], int]) -> list[T]:
    """``items`` in storage order: those of a multiple of :data:`ALIGNMENT` bytes first (each then starts
    aligned), the others after them; the order within each group is kept."""
    items = list(items)
    return [i for i in items if nbytes(i) % ALIGNMENT == 0] + [i for i in items if nbytes(i) % ALIGNMENT]


def safetensors_header(entries: Sequence[Entry], metadata: dict[str, str] | None = None) -> bytes:
    """The length prefix and JSON header for ``entries`` stored in this order, padded with spaces so that the
    data starts at a multiple of :data:`ALIGNMENT` bytes."""
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
    raw += b" " * (-(8 + len(raw)) % ALIGNMENT)
    return struct.pack("<Q", len(raw)) + raw


def write_safetensors(
    path: str | os.PathLike,
    entries: Sequence[Entry],
    arrays: Iterable[np.ndarray],
    metadata: dict[str, str] | None = None,
    *,
    final_metadata: Callable[[], dict[str, str]] | None = None,
    done: Callable[[int], None] | None = None,
    hasher: Any = None,
) -> int:
    """Write ``arrays`` (one per entry, same order, produced lazily) to ``path``; fsync it; return its size.

    Each array must have its entry's shape; it is cast to the entry's little-endian dtype when it
    differs (a no-op for float32 views). ``done(i)`` is called once tensor ``i`` is written, after
    which its source memory may be released. ``final_metadata``, when given, is called after the
    data is written and its header (which must have the same length as ``metadata``'s: same keys,
    values of the same lengths, e.g. a hash that was still being computed) replaces the provisional one.
    ``hasher`` (e.g. ``hashlib.sha256()``) is fed every byte as it is written: the file's hash without
    reading it again (not with ``final_metadata``, which rewrites the header at the end).
    """
    if hasher is not None and final_metadata is not None:
        raise ValueError("hasher and final_metadata exclude each other: the header would change after hashing")
    header = safetensors_header(entries, metadata)
    feed = hasher.update if hasher is not None else (lambda data: None)
    with open(path, "wb") as f:
        f.write(header)
        feed(header)
        out = WritebackWriter(f)  # written back as it goes: the closing fsync waits for the last stretch only
        count = 0
        for entry, array in zip(entries, arrays):
            array = np.asarray(array)
            if tuple(array.shape) != tuple(entry.shape):
                raise ValueError(f"tensor {entry.name}: got shape {tuple(array.shape)}, header says {entry.shape}")
            array = np.ascontiguousarray(array, dtype=DTYPES[entry.dtype])
            data = memoryview(array).cast("B") if array.ndim else array.tobytes()  # type: ignore[arg-type]
            out.write(data)
            feed(data)
            if done is not None:
                done(count)
            count += 1
        if count != len(entries):
            raise ValueError(f"{path}: {len(entries)} tensors declared, {count} produced")
        if final_metadata is not None:
            final = safetensors_header(entries, final_metadata())
            if len(final) != len(header):
                raise ValueError("final safetensors metadata must keep the provisional header's length")
            f.seek(0)
            f.write(final)
        size = f.seek(0, os.SEEK_END)
        f.flush()
        os.fsync(f.fileno())
    return size
