"""A fuzz corpus for the converter: mutated caffemodels and prototxts of a tiny SENet, and their outcomes.

Shared by tests/test_convert_fuzz.py (a few dozen cases in the suite) and scripts/fuzz_convert.py (a
larger run whose counts are quoted). Each case is a (kind, caffemodel bytes, prototxt text or None);
:func:`run_case` converts it and classifies the outcome: ``ok`` (converted and verified), ``error``
(a typed error naming the file), or a failure: ``traceback`` (any other exception, or a typed error
that names no file), ``slow`` (over the time bound).
"""

from __future__ import annotations

import random
import re
import struct
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from senet_zoo.caffe.executor import ExecutionError
from senet_zoo.caffe.net import CaffeFormatError
from senet_zoo.caffe.synth import synth_net
from senet_zoo.caffe.writer import delimited, varint, write_caffemodel, write_prototxt
from senet_zoo.convert import ConversionError, convert

ARCH, LAYERS, WIDTH = "se_resnet50", (1, 1, 1, 1), 1  # the smallest net detection recognises (43 MB)
CLEAN = (CaffeFormatError, ConversionError, ExecutionError, FileExistsError)


@dataclass
class Case:
    kind: str
    caffemodel: bytes
    prototxt: str | None = None


def base_files(tmp: Path) -> tuple[bytes, str]:
    net = synth_net(ARCH, layers=LAYERS, width=WIDTH, seed=0)
    write_caffemodel(net, tmp / "base.caffemodel")
    write_prototxt(synth_net(ARCH, layers=LAYERS, width=WIDTH, blobs=False), tmp / "base.prototxt")
    return (tmp / "base.caffemodel").read_bytes(), (tmp / "base.prototxt").read_text()


def _crafted_layer(rng: random.Random) -> bytes:
    """A layer whose blob declares a shape that does not fit its data (or Caffe's limits)."""
    dims = rng.choice(
        [
            [1 << 40, 1 << 40],  # product far beyond the data (and int64 when multiplied further)
            [1 << 32] * 3,  # product overflows int64
            [2] * 65,  # more axes than Caffe allows
            [(1 << 64) - 1],  # -1 as int64
            [0, 5],  # zero elements but data present
        ]
    )
    shape = delimited(1, b"".join(varint(d) for d in dims))  # packed int64 dims
    data = delimited(5, struct.pack("<4f", 1, 2, 3, 4))
    blob = delimited(7, shape) + data
    return delimited(100, delimited(1, b"conv1/7x7_s2") + delimited(2, b"Convolution") + delimited(7, blob))


def mutate_caffemodel(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["bitflip", "bitflips", "truncate", "varint", "length", "crafted", "splice", "zero"])
    buf = bytearray(data)
    pos = rng.randrange(len(buf))
    if kind == "bitflip":
        buf[pos] ^= 1 << rng.randrange(8)
    elif kind == "bitflips":
        for _ in range(rng.randint(2, 64)):
            p = rng.randrange(len(buf))
            buf[p] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buf[pos:]
    elif kind == "varint":  # an overlong varint (11 continuation bytes) where a tag or length is read
        buf[pos:pos] = b"\xff" * 11
    elif kind == "length":  # a length-delimited field that claims far more bytes than the file has
        buf[pos:pos] = varint(7 << 3 | 2) + varint(rng.choice([1 << 31, 1 << 40, (1 << 63) - 1]))
    elif kind == "crafted":
        buf += _crafted_layer(rng)
    elif kind == "splice":  # a chunk of the file copied elsewhere
        start = rng.randrange(len(buf))
        buf[pos:pos] = buf[start : start + rng.randint(1, 256)]
    else:  # a run of zero bytes
        buf[pos : pos + rng.randint(1, 64)] = bytes(rng.randint(1, 64))
    return kind, bytes(buf)


_NUMERIC_FIELDS = ("stride", "group", "kernel_size", "num_output", "pad", "dim", "eps", "axis")


def mutate_prototxt(text: str, rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["zero", "huge", "negative", "misspell", "drop_line", "drop_bottom", "nest", "truncate", "chars"])
    lines = text.splitlines(keepends=True)
    if kind in ("zero", "huge", "negative"):
        field = rng.choice(_NUMERIC_FIELDS)
        value = {"zero": "0", "huge": "99999999999999999999", "negative": "-3"}[kind]
        matches = [i for i, line in enumerate(lines) if re.search(rf"\b{field}:", line)]
        if matches:
            i = rng.choice(matches)
            lines[i] = re.sub(rf"\b({field}):\s*[-\w.]+", rf"\1: {value}", lines[i])
        return f"{kind}_{field}", "".join(lines)
    if kind == "misspell":
        i = rng.randrange(len(lines))
        words = list(re.finditer(r"[a-z_]{3,}(?=\s*[:{])", lines[i]))
        if words:
            w = rng.choice(words)
            j = rng.randrange(w.start(), w.end())
            lines[i] = lines[i][:j] + rng.choice("xqz") + lines[i][j + 1 :]
        return kind, "".join(lines)
    if kind == "drop_line":
        del lines[rng.randrange(len(lines))]
        return kind, "".join(lines)
    if kind == "drop_bottom":
        matches = [i for i, line in enumerate(lines) if "bottom:" in line]
        del lines[rng.choice(matches)]
        return kind, "".join(lines)
    if kind == "nest":
        depth = rng.choice([100, 2000, 100_000])
        return f"nest{depth}", text + "x " + "{ " * depth + "} " * depth
    if kind == "truncate":
        return kind, text[: rng.randrange(len(text))]
    chars = list(text)
    for _ in range(rng.randint(1, 20)):
        chars[rng.randrange(len(chars))] = rng.choice('{}[]<>:;,"\\#0123456789e.-x \n\x00é')
    return kind, "".join(chars)


def corpus(base: tuple[bytes, str], count: int, seed: int) -> Iterator[Case]:
    rng = random.Random(seed)
    model, text = base
    for i in range(count):
        if i % 2 == 0:
            kind, data = mutate_caffemodel(model, rng)
            yield Case(f"caffemodel/{kind}", data)
        else:
            kind, mutated = mutate_prototxt(text, rng)
            yield Case(f"prototxt/{kind}", model, mutated)


def run_case(case: Case, tmp: Path, *, verify: bool = True, time_limit: float = 60.0) -> tuple[str, str]:
    """Convert one case in ``tmp`` (``verify``: float64 verification of every success); (outcome, detail)."""
    model = tmp / "fuzz.caffemodel"
    model.write_bytes(case.caffemodel)
    prototxt = None
    if case.prototxt is not None:
        prototxt = tmp / "fuzz.prototxt"
        prototxt.write_text(case.prototxt, encoding="utf-8", errors="surrogateescape")
    out = tmp / "out"
    start = time.perf_counter()
    try:
        convert(model, out, prototxt=prototxt, progress=False, overwrite=True, verify=verify)
        outcome, detail = "ok", ""
        if sorted(p.name for p in out.iterdir()) != ["README.md", "config.json", "model.safetensors"]:
            outcome, detail = "traceback", "incomplete output folder"
    except CLEAN as err:
        names = ("fuzz.caffemodel", "fuzz.prototxt")
        outcome = "error" if any(n in str(err) for n in names) and "\n" not in str(err) else "traceback"
        detail = f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - what the fuzzer looks for
        outcome, detail = "traceback", "".join(traceback.format_exception(err))
    if time.perf_counter() - start > time_limit:
        outcome = "slow"
    leftovers = [p.name for p in tmp.iterdir() if p.name not in ("fuzz.caffemodel", "fuzz.prototxt", "out")]
    if leftovers:
        outcome, detail = "traceback", f"left behind: {leftovers}"
    return outcome, detail
