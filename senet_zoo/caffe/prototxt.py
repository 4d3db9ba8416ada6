"""Read Caffe ``.prototxt`` net definitions (protobuf text format) into :class:`~.net.Net`.

Supports the text-format syntax protobuf itself accepts: nested messages with or without ``:``
before ``{`` (or ``<``/``>``), repeated fields written several times or as ``[a, b]`` lists, enum
values as bare identifiers, quoted strings with C escapes (adjacent strings concatenate), integers
(decimal, hex), floats with exponents, ``inf``/``nan``, ``true``/``false``, ``#`` comments and
optional ``,``/``;`` separators. Both ``layer {}`` and legacy V1 ``layers {}`` blocks are read; V1 enum
types become V2 names, and top-level ``input``/``input_dim``/``input_shape`` become an ``Input``
layer named ``input`` as Caffe upgrades them. Fields known to :mod:`.schema` get the same Python
types as :func:`~.wire.read_caffemodel` yields; unknown fields are kept as written.
"""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np

from .net import CaffeFormatError, Layer, Net, as_list, legacy_input_layer
from .schema import LAYER_FIELDS, MESSAGES, NET_FIELDS, V1_LAYER_FIELDS, V1_LAYER_TYPES, Field, normalize_value

__all__ = ["read_prototxt", "parse_prototxt"]

# Each alternative is possessive and needs no lookahead, so every character is examined once and
# tokenizing is linear in the text (a run of 40k digits followed by a letter used to take minutes).
# A number token is any word starting with a digit (``e-``/``E+`` allowed inside); whether it is a
# well-formed number is decided on the token alone (_NUMBER).
_TOKEN = re.compile(
    r"""
    (?P<skip>\s++|\#[^\n]*+)
  | (?P<string>"(?:[^"\\\n]++|\\.)*+"|'(?:[^'\\\n]++|\\.)*+')
  | (?P<number>[-+]?+\.?+[0-9](?:[\w.]|(?<=[eE])[-+])*+)
  | (?P<ident>-?[A-Za-z_][A-Za-z0-9_]*+)
  | (?P<punct>[{}<>\[\]:,;])
  | (?P<bad>.)
""",
    re.VERBOSE | re.DOTALL,
)
_NUMBER = re.compile(r"[-+]?+(?:0[xX][0-9a-fA-F]++|(?:\d++\.?+\d*+|\.\d++)(?:[eE][-+]?+\d++)?+[fF]?+)")
_HEX_INT = re.compile(r"[-+]?0[xX][0-9a-fA-F]+")
_DEC_INT = re.compile(r"[-+]?\d+")
_OCTAL = re.compile(r"[0-7]{1,3}")
_HEX = re.compile(r"[0-9a-fA-F]{1,2}")
MAX_DEPTH = 64  # nested messages; Caffe's deepest is 3 (layer > param > filler)
_ESCAPES = {"n": 10, "r": 13, "t": 9, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92, "'": 39, '"': 34, "?": 63}
_CLOSING = {"{": "}", "<": ">"}
_TRUE = {"true", "True", "t"}
_FALSE = {"false", "False", "f"}
_MAX_NUMBER_CHARS = 400  # a double needs at most ~330 digits; Caffe's integers far fewer
_FLOAT_WORDS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}
_BY_NAME = {name: {f.name: f for f in fields.values()} for name, fields in MESSAGES.items()}
_NET = {f.name: f for f in NET_FIELDS.values()}
_CORE = {
    "name": Field(1, "name", "string"),
    "bottom": Field(3, "bottom", "string", True),
    "top": Field(4, "top", "string", True),
}
_V2_LAYER = {**_CORE, "type": Field(2, "type", "string"), **{f.name: f for f in LAYER_FIELDS.values()}}
_V1_LAYER = {**_CORE, **{f.name: f for f in V1_LAYER_FIELDS.values()}}  # the type: an enum name or number
_V1_NAMES = {v1_name: v2 for v1_name, v2 in V1_LAYER_TYPES.values() if v2}
_BLOB = {
    "data": Field(5, "data", "float", True),
    "double_data": Field(8, "double_data", "double", True),
    "shape": Field(7, "shape", "message", ref="BlobShape"),
    **{name: Field(i + 1, name, "int") for i, name in enumerate(("num", "channels", "height", "width"))},
}


def read_prototxt(path: str | os.PathLike) -> Net:
    """Parse a ``.prototxt`` file (errors name the file, line and column)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CaffeFormatError(
            f"{path}: byte {err.start}: not a UTF-8 text file (a binary caffemodel? use read_caffemodel)"
        ) from None
    return parse_prototxt(text, source=path)


def parse_prototxt(text: str, source: str = "<string>") -> Net:
    """Parse protobuf text-format ``NetParameter`` source into a :class:`Net` (no blobs)."""
    return _Parser(text, source).net()


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.tokens: list[tuple[str, str, int]] = [  # (kind, text, offset)
            (str(m.lastgroup), m.group(), m.start()) for m in _TOKEN.finditer(text) if m.lastgroup != "skip"
        ]
        bad = next((t for t in self.tokens if t[0] == "bad"), None)
        if bad is not None:
            raise self.fail(bad[2], f"unexpected character {bad[1]!r}")
        self.i = 0
        self.depth = 0

    # -- helpers ---------------------------------------------------------------------------

    def fail(self, offset: int, message: str) -> CaffeFormatError:
        line = self.text.count("\n", 0, offset) + 1
        col = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return CaffeFormatError(f"{self.source}:{line}:{col}: {message}")

    def peek(self) -> tuple[str, str, int]:
        if self.i < len(self.tokens):
            return self.tokens[self.i]
        return ("eof", "end of file", len(self.text))

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        if token[0] == "eof":
            raise self.fail(token[2], "unexpected end of file (missing '}'?)")
        self.i += 1
        return token

    def accept(self, text: str) -> bool:
        kind, value, _ = self.peek()
        if kind == "punct" and value == text:
            self.i += 1
            return True
        return False

    # -- grammar ---------------------------------------------------------------------------

    def message(self, schema: dict[str, Field] | None, closing: str | None) -> dict[str, Any]:
        """Fields up to ``closing`` (or end of file), stored per the seen-once/seen-twice rule."""
        out: dict[str, Any] = {}
        while True:
            kind, name, offset = self.peek()
            if kind == "eof":
                if closing is not None:
                    raise self.fail(offset, f"unexpected end of file, expected {closing!r}")
                return out
            if kind == "punct" and name == closing:
                self.i += 1
                return out
            if kind != "ident" or name.startswith("-"):
                raise self.fail(offset, f"expected a field name, found {name!r}")
            self.i += 1
            field = schema.get(name) if schema is not None else None
            for value, value_offset in self.field_values(field, name):
                self.store(out, field, name, value, value_offset)
            self.accept(",") or self.accept(";")

    def field_values(self, field: Field | None, name: str) -> list[tuple[Any, int]]:
        colon = self.accept(":")
        kind, text, offset = self.peek()
        if kind == "punct" and text in _CLOSING:
            return [(self.submessage(field, name), offset)]
        if not colon:
            raise self.fail(offset, f"expected ':' or '{{' after field {name!r}, found {text!r}")
        if kind == "punct" and text == "[":
            self.i += 1
            values: list[tuple[Any, int]] = []
            while not self.accept("]"):
                if values and not self.accept(","):
                    raise self.fail(self.peek()[2], f"expected ',' or ']' in the list of {name!r}")
                kind, text, offset = self.peek()
                if kind == "punct" and text in _CLOSING:
                    values.append((self.submessage(field, name), offset))
                else:
                    values.append((self.scalar(), offset))
            return values
        return [(self.scalar(), offset)]

    def submessage(self, field: Field | None, name: str) -> dict[str, Any]:
        kind, text, offset = self.take()
        if field is not None and field.kind != "message":
            raise self.fail(offset, f"field {name!r} is a {field.kind}, not a message")
        schema = _BY_NAME.get(field.ref) if field is not None else None
        if name == "blobs":
            schema = _BLOB
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(offset, f"messages nested more than {MAX_DEPTH} deep")
        try:
            return self.message(schema, _CLOSING[text])
        finally:
            self.depth -= 1

    def scalar(self) -> Any:  # noqa: C901  (one branch per token kind of the text format)
        kind, text, offset = self.take()
        if kind == "string":
            parts = [self.unescape(text, offset)]
            while self.peek()[0] == "string":
                _, more, more_offset = self.take()
                parts.append(self.unescape(more, more_offset))
            return "".join(parts)
        if kind == "number":
            if len(text) > _MAX_NUMBER_CHARS:  # int() refuses thousands of digits with a bare ValueError
                raise self.fail(offset, f"number of {len(text)} characters ({text[:20]}...) is out of range")
            if text.isdigit():  # the common case, first
                return int(text)
            if not _NUMBER.fullmatch(text):
                raise self.fail(offset, f"malformed number {text[:40]!r}")
            body = text.rstrip("fF") if not text.lower().lstrip("+-").startswith("0x") else text
            if _HEX_INT.fullmatch(body):
                return int(body, 16)
            if _DEC_INT.fullmatch(body) and text == body:
                return int(body)
            return float(body)
        if kind == "ident":
            word = text.lstrip("-")
            if word.lower() in _FLOAT_WORDS:
                value = _FLOAT_WORDS[word.lower()]
                return -value if text.startswith("-") else value
            if text.startswith("-"):
                raise self.fail(offset, f"'-' before identifier {word!r}")
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            return text  # an enum value name
        raise self.fail(offset, f"expected a value, found {text!r}")

    def unescape(self, token: str, offset: int) -> str:
        body = token[1:-1]
        if "\\" not in body:
            return body
        out = bytearray()
        i = 0
        while i < len(body):
            ch = body[i]
            if ch != "\\":
                out += ch.encode("utf-8")
                i += 1
                continue
            esc = body[i + 1]
            if esc in _ESCAPES:
                out.append(_ESCAPES[esc])
                i += 2
            elif esc in "01234567":
                digits = _OCTAL.match(body, i + 1).group()  # type: ignore[union-attr]  # esc is a digit
                out.append(int(digits, 8) & 0xFF)
                i += 1 + len(digits)
            elif esc in "xX" and _HEX.match(body, i + 2):
                digits = _HEX.match(body, i + 2).group()  # type: ignore[union-attr]  # checked above
                out.append(int(digits, 16))
                i += 2 + len(digits)
            else:
                raise self.fail(offset + 1 + i, f"unknown escape sequence '\\{esc}'")
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(offset, "string is not valid UTF-8 after unescaping") from None

    def store(self, out: dict[str, Any], field: Field | None, name: str, value: Any, offset: int) -> None:
        if field is not None:
            if field.kind == "message":
                if not isinstance(value, dict):
                    raise self.fail(offset, f"field {name!r} is a message, write it as {name} {{ ... }}")
            else:
                if isinstance(value, dict):
                    raise self.fail(offset, f"field {name!r} is a {field.kind}, not a message")
                try:
                    value = normalize_value(field, value)
                except ValueError as err:
                    raise self.fail(offset, str(err)) from None
            if not field.repeated:
                out[name] = value
                return
        if name in out:
            existing = out[name]
            if isinstance(existing, list):
                existing.append(value)
            else:
                out[name] = [existing, value]
        else:
            out[name] = value

    # -- NetParameter -----------------------------------------------------------------------

    def net(self) -> Net:
        net = Net(name="", source=self.source)
        names: list[str] = []
        dims: list[int] = []
        shapes: list[dict] = []
        while True:
            kind, name, offset = self.peek()
            if kind == "eof":
                break
            if name in ("layer", "layers") and kind == "ident":
                self.i += 1
                self.accept(":")
                kind, text, brace = self.take()
                if text not in _CLOSING:
                    raise self.fail(brace, f"expected '{{' after {name!r}, found {text!r}")
                v1 = name == "layers"
                fields = self.message(_V1_LAYER if v1 else _V2_LAYER, _CLOSING[text])
                net.layers.append(self.layer(fields, v1, offset))
                self.accept(",") or self.accept(";")
                continue
            top = self.message_field_at_top()
            for key, value in top.items():
                if key == "name":
                    net.name = value
                elif key == "input":
                    names += as_list(value)
                elif key == "input_dim":
                    dims += as_list(value)
                elif key == "input_shape":
                    shapes += as_list(value)
        if names:
            net.layers.insert(0, legacy_input_layer(names, dims, shapes))
        elif dims or shapes:
            raise CaffeFormatError(f"{self.source}: input_dim/input_shape given without 'input' names")
        return net

    def message_field_at_top(self) -> dict[str, Any]:
        """Parse one top-level field other than layer(s) into a one-key dict."""
        kind, name, offset = self.take()
        if kind != "ident":
            raise self.fail(offset, f"expected a field name, found {name!r}")
        out: dict[str, Any] = {}
        field = _NET.get(name)
        for value, value_offset in self.field_values(field, name):
            self.store(out, field, name, value, value_offset)
        self.accept(",") or self.accept(";")
        return out

    def layer(self, fields: dict[str, Any], v1: bool, offset: int) -> Layer:
        layer_type = fields.pop("type", "")
        if v1:
            if isinstance(layer_type, int) and layer_type in V1_LAYER_TYPES:
                layer_type = V1_LAYER_TYPES[layer_type][1]
            elif layer_type in _V1_NAMES:
                layer_type = _V1_NAMES[layer_type]
            else:
                raise self.fail(offset, f"unknown V1 layer type {layer_type!r}")
        elif not isinstance(layer_type, str):
            raise self.fail(offset, f"layer type must be a string, got {layer_type!r}")
        name = fields.pop("name", "")
        bottoms = as_list(fields.pop("bottom", None))
        tops = as_list(fields.pop("top", None))
        blobs = [self.blob(b, offset) for b in as_list(fields.pop("blobs", None))]
        return Layer(name=name, type=layer_type, bottoms=bottoms, tops=tops, params=fields, blobs=blobs)

    def blob(self, fields: dict[str, Any], offset: int) -> np.ndarray:
        """A blob written out in text form (``blobs { shape {...} data: ... }``)."""
        if "shape" in fields:
            shape = as_list(fields["shape"].get("dim"))
        elif any(k in fields for k in ("num", "channels", "height", "width")):
            shape = [fields.get(k, 0) for k in ("num", "channels", "height", "width")]
        else:
            shape = []
        values = as_list(fields.get("double_data")) or as_list(fields.get("data"))
        data = np.asarray(values, dtype=np.float32)
        if data.size != int(np.prod(shape, dtype=np.int64)):
            raise self.fail(
                offset,
                f"blob holds {data.size} values but its shape {tuple(shape)} needs "
                f"{int(np.prod(shape, dtype=np.int64))}",
            )
        return data.reshape(shape)
