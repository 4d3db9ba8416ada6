"""Read a binary ``.caffemodel`` (a serialized Caffe ``NetParameter``) without protobuf or Caffe.

The file is memory-mapped read-only and every packed float run becomes a numpy view of the mapping
(``np.frombuffer``), so reading the structure of a 440 MB SENet-154 costs milliseconds and almost no
memory; pages are only touched when a blob's values are used. Blobs are therefore **read-only**,
possibly unaligned views: copy them (``np.array(blob)``) before modifying them or handing them to
``torch.from_numpy``. The mapping stays alive as long as any blob references it.

Copies are made only where the file's layout forces one: a blob whose data is split over several
chunks or written unpacked (one tag per value), and ``double_data`` blobs, which are converted to
float32 as Caffe itself does when it loads them into a float net; each such blob is one float32
array, allocated once its shape has been checked against the values the file actually holds.
Crafted files cannot make the reader allocate more than the file's size (see :class:`_Decoder`).

Both the current ``layer`` (field 100) and the legacy V1 ``layers`` (field 2) are read; V1 layer
types become their V2 names. Legacy top-level ``input``/``input_dim``/``input_shape`` become an
``Input`` layer named ``input`` in front of the others, exactly as Caffe upgrades such nets.
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .net import CaffeFormatError, Layer, Net, as_list, legacy_input_layer
from .schema import (
    LAYER_FIELDS,
    MESSAGES,
    NET_FIELDS,
    V1_LAYER_FIELDS,
    V1_LAYER_TYPES,
    VARINT_KINDS,
    Field,
    float32,
)

__all__ = ["read_caffemodel", "parse_caffemodel"]

_UNPACKED_FLOAT = np.dtype([("tag", "u1"), ("value", "<f4")])  # 5-byte records: 0x2D + float
_UNPACKED_DOUBLE = np.dtype([("tag", "u1"), ("value", "<f8")])  # 9-byte records: 0x41 + double
_FLOAT_TAG = (5 << 3) | 5
_DOUBLE_TAG = (8 << 3) | 1
_SCALAR_WIRE = {"float": 5, "double": 1}


def read_caffemodel(path: str | os.PathLike) -> Net:
    """Read a ``.caffemodel`` file: layers with params and blobs (read-only float32 views)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise CaffeFormatError(f"{path}: empty file, not a caffemodel")
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    net = parse_caffemodel(buf, source=path)
    try:  # closes the mapping unless blobs (numpy views) still hold it
        buf.close()
    except BufferError:
        pass
    return net


def parse_caffemodel(buf: bytes | bytearray | memoryview | mmap.mmap, source: str = "<bytes>") -> Net:
    """Decode a serialized ``NetParameter`` held in memory (blobs are views of ``buf``)."""
    if isinstance(buf, memoryview):
        buf = buf.cast("B")
    decoder = _Decoder(buf, source)
    try:
        net = decoder.net()
    except CaffeFormatError as err:
        kind = _sniff(buf)
        raise CaffeFormatError(f"{err} ({kind})" if kind else str(err)) from None
    if not net.layers:
        kind = _sniff(buf)
        raise CaffeFormatError(f"{source}: not a caffemodel: no layers found" + (f" ({kind})" if kind else ""))
    return net


def _sniff(buf: Any) -> str:
    """Name a common non-caffemodel format from its first bytes, for error messages."""
    head = bytes(buf[:64])
    if head.startswith(b"PK\x03\x04"):
        return "this is a zip archive, e.g. a PyTorch checkpoint, not a caffemodel"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "this is a Python pickle, not a caffemodel"
    if head.startswith(b"\x89HDF"):
        return "this is an HDF5 file; Caffe's .caffemodel.h5 format is not supported"
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < len(buf):
        return "this looks like a safetensors file, not a caffemodel"
    text = head.lstrip()
    printable = all(32 <= b < 127 or b in b"\t\r\n" for b in head)
    if printable and (text[:1].isalpha() or text[:1] == b"#"):
        return "this looks like a text file (a prototxt?), not a binary caffemodel"
    return ""


# Python-object cost, in bytes, charged against the structure budget (estimates, on the high side).
_Run = tuple[int, int, np.dtype]  # a run of blob values: (offset, count, dtype of its records)
_FIELD_COST, _VALUE_COST, _KEY_COST, _LAYER_COST, _BLOB_COST, _STRING_COST = 64, 40, 100, 600, 200, 80
_BUDGET = 16 << 20  # ~5× what SENet-154's structure needs (its weights cost nothing: views)
_MIN_BUDGET = 1 << 20  # small files (tests, structure-only caffemodels) still get room for ~500 layers
_MAX_AXES = 32  # Caffe's kMaxBlobAxes
_RUN_WINDOW = 1 << 12  # unpacked value records examined at a time


class _Decoder:
    """Protobuf wire-format walker over one buffer; every error names the source and byte offset.

    Memory is bounded whatever the bytes say: every declared length is checked against the bytes
    left before anything is allocated, blob values are views of the buffer or one preallocated
    float32 array (never more values than the file holds bytes for), and everything else (layers,
    names, parameters: Python objects, and each field visited, ~64 bytes of Python work) is charged
    to a budget of half the file size, at least 1 MB and at most 16 MB (about five times what
    SENet-154's structure needs). A crafted file made of millions of tiny fields therefore fails
    within ~250k fields with a clear error instead of exhausting memory or running for minutes in
    the per-field Python loop, and the structure never costs much more than the file's own size.
    """

    def __init__(self, buf: Any, source: str) -> None:
        self.buf = buf
        self.source = source
        self.budget = max(_MIN_BUDGET, min(_BUDGET, len(buf) // 2))

    def spend(self, cost: int, pos: int) -> None:
        self.budget -= cost
        if self.budget < 0:
            raise self.fail(
                pos,
                "the net's structure (layers, names, parameters, not its weights) is implausibly large for "
                "this file: not a caffemodel, or corrupt",
            )

    def fail(self, pos: int, message: str) -> CaffeFormatError:
        return CaffeFormatError(f"{self.source}: byte {pos}: {message}")

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        buf = self.buf
        start = pos
        result = shift = 0
        while True:
            if pos >= end:
                raise self.fail(start, "truncated varint (file cut short?)")
            b = buf[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result, pos
            shift += 7
            if shift >= 70:
                raise self.fail(start, "varint longer than 10 bytes")

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
        """Yield (number, wire type, a, b, tag offset) per field of the message in [start, end).

        For varints ``a`` is the value; for fixed and length-delimited fields [a, b) is the payload.
        """
        pos = start
        while pos < end:
            tag_pos = pos
            self.spend(_FIELD_COST, pos)
            tag, pos = self.varint(pos, end)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise self.fail(tag_pos, "invalid field number 0 (not protobuf data)")
            if wire == 0:
                value, pos = self.varint(pos, end)
                yield number, wire, value, pos, tag_pos
                continue
            if wire == 2:
                length, pos = self.varint(pos, end)
                size = length
            elif wire == 5:
                size = 4
            elif wire == 1:
                size = 8
            else:
                raise self.fail(tag_pos, f"bad wire type {wire} for field {number} (not a caffemodel, or corrupt)")
            if pos + size > end:
                raise self.fail(
                    tag_pos, f"field {number} needs {size} bytes but only {end - pos} remain (truncated file?)"
                )
            yield number, wire, pos, pos + size, tag_pos
            pos += size

    # -- generic messages -------------------------------------------------------------------

    def scalars(self, field: Field, wire: int, a: int, b: int) -> list | None:
        """The value(s) of one occurrence of a scalar field, or None when the wire type does not fit."""
        kind = field.kind
        if kind in VARINT_KINDS:
            if wire == 0:
                raw = [a]
            elif wire == 2 and field.repeated:
                raw = []
                pos = a
                while pos < b:
                    self.spend(_VALUE_COST, pos)
                    value, pos = self.varint(pos, b)
                    raw.append(value)
            else:
                return None
            return [self.convert(field, v) for v in raw]
        if kind in _SCALAR_WIRE:
            dtype = np.dtype("<f4" if kind == "float" else "<f8")
            packed = wire == 2 and field.repeated and (b - a) % dtype.itemsize == 0
            if wire != _SCALAR_WIRE[kind] and not packed:
                return None
            self.spend(_VALUE_COST * ((b - a) // dtype.itemsize), a)
            values = np.frombuffer(self.buf, dtype, (b - a) // dtype.itemsize, a).tolist()
            return [float32(v) for v in values] if kind == "float" else values
        if wire != 2:
            return None
        if kind == "string":
            return [self.text(a, b)]
        return [self.message(a, b, MESSAGES[field.ref])]

    def convert(self, field: Field, value: int) -> Any:
        if field.kind == "bool":
            return value != 0
        if field.kind == "int":
            return value - (1 << 64) if value >= 1 << 63 else value
        if field.kind == "enum":
            return field.ref.get(value, value)
        return value

    def text(self, a: int, b: int) -> str:
        self.spend(_STRING_COST + 2 * (b - a), a)
        try:
            return bytes(self.buf[a:b]).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(a, "string field is not valid UTF-8 (corrupt file?)") from None

    def message(self, start: int, end: int, schema: dict[int, Field]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for number, wire, a, b, _ in self.fields(start, end):
            field = schema.get(number)
            if field is not None:
                values = self.scalars(field, wire, a, b)
                if values is not None:
                    for value in values:
                        self.spend(_KEY_COST, a)
                        _store(out, field, value)
        return out

    # -- NetParameter / LayerParameter / BlobProto ------------------------------------------

    def net(self) -> Net:
        end = len(self.buf)
        top: dict[str, Any] = {}
        layers: list[Layer] = []
        for number, wire, a, b, _tag_pos in self.fields(0, end):
            if number == 100 and wire == 2:
                layers.append(self.layer(a, b, v1=False))
            elif number == 2 and wire == 2:
                layers.append(self.layer(a, b, v1=True))
            elif number in NET_FIELDS:
                values = self.scalars(NET_FIELDS[number], wire, a, b)
                for value in values or ():
                    self.spend(_KEY_COST, a)
                    _store(top, NET_FIELDS[number], value)
        names = as_list(top.get("input"))
        if names:
            layers.insert(0, legacy_input_layer(names, as_list(top.get("input_dim")), as_list(top.get("input_shape"))))
        return Net(name=top.get("name", ""), layers=layers, source=self.source)

    def layer(self, start: int, end: int, *, v1: bool) -> Layer:
        name_no, type_no, bottom_no, top_no, blobs_no = (4, 5, 2, 3, 6) if v1 else (1, 2, 3, 4, 7)
        schema = V1_LAYER_FIELDS if v1 else LAYER_FIELDS
        self.spend(_LAYER_COST, start)
        layer = Layer(name="", type="")
        spans: list[tuple[int, int]] = []
        for number, wire, a, b, _tag_pos in self.fields(start, end):
            if number == blobs_no and wire == 2:
                self.spend(_BLOB_COST, a)
                spans.append((a, b))  # decoded below, once the layer name is known
            elif wire == 2 and (number in (name_no, bottom_no, top_no) or (number == type_no and not v1)):
                value = self.text(a, b)
                if number == name_no:
                    layer.name = value
                elif number == type_no:
                    layer.type = value
                elif number == bottom_no:
                    layer.bottoms.append(value)
                else:
                    layer.tops.append(value)
            elif number == type_no and v1 and wire == 0:
                layer.type = V1_LAYER_TYPES.get(a, ("", f"V1Type{a}"))[1]
            elif number in schema:
                values = self.scalars(schema[number], wire, a, b)
                for value in values or ():
                    self.spend(_KEY_COST, a)
                    _store(layer.params, schema[number], value)
        layer.blobs = [self.blob(a, b, layer.name, i) for i, (a, b) in enumerate(spans)]
        return layer

    def blob(self, start: int, end: int, layer: str, index: int) -> np.ndarray:
        """One BlobProto: a view of the buffer when its values are one packed float run, else one copy.

        First pass: find the value runs (packed or unpacked, float or double) and the shape without
        copying anything; the shape must need exactly as many values as the runs hold before any
        array is allocated. Second pass: one float32 array filled run by run (doubles are converted
        as Caffe does when it loads them into a float net, and win over float data when present).
        """
        where = f"layer {layer!r} blob {index}"
        floats, doubles, shape = self._scan_blob(start, end, where)
        return self._blob_array(start, where, floats, doubles, shape)

    def _scan_blob(  # noqa: C901  (one pass over a BlobProto's fields, each wire type handled where it is read)
        self, start: int, end: int, where: str
    ) -> tuple[list[_Run], list[_Run], list[int]]:
        """The blob's float and double value runs and its shape, without copying any value."""
        floats: list[_Run] = []  # (offset, count, dtype of the records)
        doubles: list[_Run] = []
        shape: list[int] | None = None
        legacy: list[int | None] = [None] * 4
        pos = start
        while pos < end:
            tag_pos = pos
            self.spend(_FIELD_COST, pos)
            tag, pos = self.varint(pos, end)
            if tag == _FLOAT_TAG or tag == _DOUBLE_TAG:  # unpacked: a run of (tag, value) records
                records = _UNPACKED_FLOAT if tag == _FLOAT_TAG else _UNPACKED_DOUBLE
                n = self.run_length(tag_pos, end, records, tag)
                if n == 0:
                    raise self.fail(tag_pos, f"{where}: truncated value")
                (floats if tag == _FLOAT_TAG else doubles).append((tag_pos, n, records))
                pos = tag_pos + n * records.itemsize
                continue
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                value, pos = self.varint(pos, end)
                if 1 <= number <= 4:
                    legacy[number - 1] = value - (1 << 64) if value >= 1 << 63 else value
                continue
            if wire == 2:
                length, pos = self.varint(pos, end)
            elif wire in (1, 5):
                length = 8 if wire == 1 else 4
            else:
                raise self.fail(tag_pos, f"bad wire type {wire} for field {number} in a blob")
            if pos + length > end:
                raise self.fail(
                    tag_pos,
                    f"{where}: field {number} needs {length} bytes but only {end - pos} remain (truncated file?)",
                )
            if wire == 2 and number in (5, 8):
                itemsize = 4 if number == 5 else 8
                if length % itemsize:
                    raise self.fail(
                        tag_pos,
                        f"{where}: packed data of {length} bytes is not a whole number of {itemsize}-byte values",
                    )
                dtype = np.dtype("<f4" if number == 5 else "<f8")
                (floats if number == 5 else doubles).append((pos, length // itemsize, dtype))
            elif wire == 2 and number == 7:
                shape = as_list(self.message(pos, pos + length, MESSAGES["BlobShape"]).get("dim"))
            pos += length
        if shape is None:
            shape = [v or 0 for v in legacy] if any(v is not None for v in legacy) else []
        return floats, doubles, shape

    def _blob_array(
        self, start: int, where: str, floats: list[_Run], doubles: list[_Run], shape: list[int]
    ) -> np.ndarray:
        """A view of the buffer when the values are one packed float run, else one float32 copy."""
        if len(shape) > _MAX_AXES:
            raise self.fail(start, f"{where}: {len(shape)} axes, Caffe allows at most {_MAX_AXES}")
        if any(d < 0 for d in shape):
            raise self.fail(start, f"{where}: negative dimension in shape {tuple(shape)}")
        runs = doubles or floats  # Caffe prefers double_data when present
        held = sum(n for _, n, _ in runs)
        count = math.prod(shape)  # Python integers: no overflow, however large the dims
        if held != count:
            raise self.fail(start, f"{where}: holds {held} values but its shape {tuple(shape)} needs {count}")
        if len(runs) == 1 and runs[0][2] == np.dtype("<f4"):
            offset, n, _ = runs[0]
            return np.frombuffer(self.buf, "<f4", n, offset).reshape(shape)
        data = np.empty(count, np.float32)
        filled = 0
        for offset, n, dtype in runs:
            values = np.frombuffer(self.buf, dtype, n, offset)
            data[filled : filled + n] = values["value"] if dtype.names else values
            filled += n
        return data.reshape(shape)

    def run_length(self, pos: int, end: int, records: np.dtype, tag: int) -> int:
        """How many (tag, value) records of one unpacked repeated field follow each other from ``pos``.

        Examined in growing windows, so the time is linear in the run, not in what remains of the blob.
        """
        n = 0
        window = _RUN_WINDOW
        while True:
            count = min(window, (end - pos) // records.itemsize - n)
            if count <= 0:
                return n
            tags = np.frombuffer(self.buf, np.uint8, count * records.itemsize, pos + n * records.itemsize)
            mismatch = tags[:: records.itemsize] != tag
            if mismatch.any():
                return n + int(mismatch.argmax())
            n += count
            window *= 2


def _store(out: dict[str, Any], field: Field, value: Any) -> None:
    """Add a decoded value: repeated fields seen twice become lists, singular ones keep the last."""
    if field.repeated and field.name in out:
        existing = out[field.name]
        if isinstance(existing, list):
            existing.append(value)
        else:
            out[field.name] = [existing, value]
    else:
        out[field.name] = value
