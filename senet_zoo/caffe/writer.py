"""Write a :class:`~.net.Net` as a binary ``.caffemodel`` or a text ``.prototxt``.

The package's own serializer, used by the offline demo and the benchmarks (the reference files
come from Caffe). ``write_caffemodel`` emits the current format (``layer``, field 100; blobs with a
``shape`` and packed float32 ``data``) and streams blob values straight from their arrays to the
file: only sizes are computed up front, so a 440 MB net is written without a second copy in memory.
Both writers are atomic: a temporary file in the target folder, fsync, then ``os.replace``.

Param fields outside :mod:`.schema` cannot be typed for the binary format; they are skipped with a
warning. In text they are written as parsed (strings that look like enum names, ``[A-Z][A-Z0-9_]*``,
are written bare, other strings quoted).
"""

from __future__ import annotations

import math
import os
import re
import struct
from typing import Any, BinaryIO, TextIO

import numpy as np

from .._files import atomic_open
from .._log import get_logger
from .net import Layer, Net, as_list
from .schema import LAYER_FIELDS, MESSAGES, Field

__all__ = ["write_caffemodel", "write_prototxt", "varint", "delimited"]

logger = get_logger(__name__)

_LAYER_BY_NAME = {f.name: f for f in LAYER_FIELDS.values()}
_MESSAGE_BY_NAME = {name: {f.name: f for f in fields.values()} for name, fields in MESSAGES.items()}
_ENUM_LIKE = re.compile(r"[A-Z][A-Z0-9_]*")
_CORE_FIELDS = {"name": 1, "type": 2, "bottom": 3, "top": 4}
_BLOBS = 7


# -- binary ------------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """Protobuf base-128 varint; a negative value as its 64-bit two's complement (as protobuf writes int64)."""
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def delimited(number: int, payload: bytes) -> bytes:
    """Protobuf length-delimited field ``number`` (wire type 2) holding ``payload``."""
    return _tag(number, 2) + varint(len(payload)) + payload


def _scalar(field: Field, value: Any) -> tuple[int, bytes]:
    """(wire type, encoded value) of one scalar."""
    kind = field.kind
    if kind == "float":
        return 5, struct.pack("<f", value)
    if kind == "double":
        return 1, struct.pack("<d", value)
    if kind == "string":
        return 2, varint(len(value.encode("utf-8"))) + value.encode("utf-8")
    if kind == "enum":
        numbers = {name: number for number, name in field.ref.items()}
        if isinstance(value, int) and not isinstance(value, bool):  # a value this schema has no name for
            return 0, varint(value)
        if value not in numbers:
            raise ValueError(f"{field.name}: {value!r} is not one of {sorted(numbers)}")
        return 0, varint(numbers[value])
    if kind == "bool":
        return 0, varint(int(bool(value)))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{field.name} expects an integer, got {value!r}")
    if kind == "uint" and value < 0:
        raise ValueError(f"{field.name} must not be negative, got {value}")
    return 0, varint(int(value))


def _encode_field(field: Field, value: Any) -> bytes:
    values = as_list(value) if field.repeated else [value]
    if field.kind == "message":
        schema = _MESSAGE_BY_NAME[field.ref]
        return b"".join(delimited(field.number, _encode_message(schema, v, field.name)) for v in values)
    encoded = [_scalar(field, v) for v in values]
    if field.packed:
        return delimited(field.number, b"".join(data for _, data in encoded)) if encoded else b""
    return b"".join(_tag(field.number, wire) + data for wire, data in encoded)


def _encode_message(schema: dict[str, Field], values: dict[str, Any], where: str) -> bytes:
    if not isinstance(values, dict):
        raise ValueError(f"{where} must be a message (dict), got {values!r}")
    unknown = set(values) - schema.keys()
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
    fields = sorted((schema[name] for name in values), key=lambda f: f.number)
    return b"".join(_encode_field(f, values[f.name]) for f in fields)


def _blob_parts(blob: np.ndarray) -> tuple[list, int]:
    """A BlobProto as [bytes | float32 array] chunks (data then shape, field order) and its size."""
    data = np.ascontiguousarray(blob, dtype="<f4")
    shape = delimited(7, delimited(1, b"".join(varint(d) for d in np.shape(blob))))
    data_header = _tag(5, 2) + varint(data.nbytes)
    return [data_header, data, shape], len(data_header) + data.nbytes + len(shape)


def _layer_parts(layer: Layer) -> tuple[list, int]:
    """A LayerParameter as chunks (bytes, or arrays to stream) in field order, and its byte size."""
    head = [delimited(1, layer.name.encode()), delimited(2, layer.type.encode())]
    head += [delimited(3, b.encode()) for b in layer.bottoms] + [delimited(4, t.encode()) for t in layer.tops]
    low: list[Any] = []
    high: list[Any] = []
    for name, value in layer.params.items():
        field = _LAYER_BY_NAME.get(name)
        if field is None:
            logger.warning(
                "layer %r: field %r is not part of the supported caffe.proto subset; not written", layer.name, name
            )
            continue
        try:
            encoded = _encode_field(field, value)
        except ValueError as err:
            raise ValueError(f"layer {layer.name!r}: {err}") from None
        (low if field.number < _BLOBS else high).append((field.number, encoded))
    parts: list = head + [e for _, e in sorted(low)]
    for blob in layer.blobs:
        chunks, size = _blob_parts(blob)
        parts += [_tag(_BLOBS, 2) + varint(size), *chunks]
    parts += [e for _, e in sorted(high)]
    return parts, sum(p.nbytes if isinstance(p, np.ndarray) else len(p) for p in parts)


def write_caffemodel(net: Net, path: str | os.PathLike) -> None:
    """Write ``net`` (structure, params and blobs) as a binary caffemodel, atomically."""

    def write(f: BinaryIO) -> None:
        if net.name:
            f.write(delimited(1, net.name.encode()))
        for layer in net.layers:
            parts, size = _layer_parts(layer)
            f.write(_tag(100, 2) + varint(size))
            for part in parts:
                f.write(memoryview(part).cast("B") if isinstance(part, np.ndarray) else part)  # type: ignore[arg-type]

    with atomic_open(path, "wb", buffering=1 << 20) as f:
        write(f)  # type: ignore[arg-type]


# -- text --------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _text_scalar(field: Field | None, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        bare = field.kind == "enum" if field is not None else bool(_ENUM_LIKE.fullmatch(value))
        return value if bare else _quote(value)
    raise ValueError(f"cannot write {value!r} in text format")


def _text_fields(out: list[str], schema: dict[str, Field] | None, values: dict[str, Any], indent: str) -> None:
    for name, value in values.items():
        field = schema.get(name) if schema is not None else None
        for item in as_list(value) if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                out.append(f"{indent}{name} {{")
                nested = _MESSAGE_BY_NAME.get(field.ref) if field is not None and field.kind == "message" else None
                _text_fields(out, nested, item, indent + "  ")
                out.append(f"{indent}}}")
            else:
                out.append(f"{indent}{name}: {_text_scalar(field, item)}")


def write_prototxt(net: Net, path: str | os.PathLike) -> None:
    """Write ``net``'s structure and params (not its blobs) as a text prototxt, atomically."""
    lines: list[str] = []
    if net.name:
        lines.append(f"name: {_quote(net.name)}")
    for layer in net.layers:
        lines.append("layer {")
        lines.append(f"  name: {_quote(layer.name)}")
        lines.append(f"  type: {_quote(layer.type)}")
        lines += [f"  bottom: {_quote(b)}" for b in layer.bottoms] + [f"  top: {_quote(t)}" for t in layer.tops]
        _text_fields(lines, _LAYER_BY_NAME, layer.params, "  ")
        lines.append("}")
    text = "\n".join(lines) + "\n"

    def write(f: TextIO) -> None:
        f.write(text)

    with atomic_open(path, "w", encoding="utf-8", newline="\n") as f:
        write(f)  # type: ignore[arg-type]
