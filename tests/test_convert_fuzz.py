"""Adversarial input: mutated caffemodels and prototxts end in a clean error or a verified conversion.

The corpus (tests/fuzz_corpus.py) mutates a tiny SE-ResNet-50: bit flips, truncations, overlong
varints, huge declared lengths, crafted blob shapes, spliced bytes; prototxt fields set to zero,
huge or negative values, misspelt names, dropped lines and bottoms, deep nesting, garbage
characters. scripts/fuzz_convert.py runs the same corpus at a larger count. Crafted files that aim
at memory or time (millions of tiny fields, long value runs) are checked against bounds here.
"""

from __future__ import annotations

import collections
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from support.fuzz_corpus import base_files, corpus, run_case

from senet_zoo.caffe.net import CaffeFormatError
from senet_zoo.caffe.prototxt import parse_prototxt
from senet_zoo.caffe.wire import parse_caffemodel
from senet_zoo.caffe.writer import delimited, varint
from senet_zoo.cli import main

CASES = 24


@pytest.mark.slow
def test_fuzz_corpus_clean_errors_or_verified_conversions(tmp_path: Path) -> None:
    base = base_files(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    outcomes: collections.Counter = collections.Counter()
    failures = []
    for case in corpus(base, CASES, seed=0):  # successes verified by scripts/fuzz_convert.py (float64 takes ~10 s)
        outcome, detail = run_case(case, work, verify=False, time_limit=20)
        outcomes[outcome] += 1
        if outcome not in ("ok", "error"):
            failures.append((case.kind, outcome, detail))
    assert not failures, failures[:3]
    assert outcomes["error"] >= CASES // 2  # the corpus really is hostile
    assert outcomes["ok"] >= 1  # and some mutations (flipped weight bits) are still valid nets


@pytest.mark.parametrize(
    "args, problem",
    [
        (["--prototxt", "BAD"], r"bad\.prototxt:\d+:\d+: "),
        ([], r"fuzz\.caffemodel: byte \d+: "),
    ],
)
def test_cli_one_line_exit_2(tmp_path: Path, capsys, args, problem) -> None:
    model, text = base_files(tmp_path)
    (tmp_path / "fuzz.caffemodel").write_bytes(model if args else model[: len(model) // 3])
    (tmp_path / "bad.prototxt").write_text(text.replace("stride: 2", "stride: 0", 1).replace("{", "{ {", 1))
    capsys.readouterr()
    args = [str(tmp_path / "bad.prototxt") if a == "BAD" else a for a in args]
    status = main(["convert", "--caffemodel", str(tmp_path / "fuzz.caffemodel"), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("senet-zoo convert: error: ")
    assert __import__("re").search(problem, err), err


def test_cli_names_the_layer_of_a_zero_stride(tmp_path: Path, capsys) -> None:
    model, text = base_files(tmp_path)
    (tmp_path / "m.caffemodel").write_bytes(model)
    bad = text.replace(
        "pooling_param {\n    pool: MAX\n    kernel_size: 3\n    stride: 2",
        "pooling_param {\n    pool: MAX\n    kernel_size: 3\n    stride: 0",
    )
    assert bad != text
    (tmp_path / "p.prototxt").write_text(bad)
    status = main(
        [
            "convert",
            "--caffemodel",
            str(tmp_path / "m.caffemodel"),
            "--prototxt",
            str(tmp_path / "p.prototxt"),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2 and "p.prototxt" in err and "pool1/3x3_s2" in err and "stride" in err, err


def _peak(parse, data) -> tuple[int, float]:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        try:
            parse(data)
        except CaffeFormatError:
            pass
        return tracemalloc.get_traced_memory()[1], time.perf_counter() - start
    finally:
        tracemalloc.stop()


SIZE = 8 << 20


def _crafted(kind: str) -> bytes:
    n = SIZE
    if kind == "tiny-fields":  # millions of 2-byte unknown varint fields
        return b"\x78\x01" * (n // 2)
    if kind == "empty-layers":  # millions of empty layers
        return b"\xa2\x06\x00" * (n // 3)
    if kind == "packed-varints":  # one repeated uint param holding millions of values
        param = delimited(3, b"\x01" * n)  # convolution_param.pad, packed
        return delimited(100, delimited(1, b"x") + delimited(106, param))
    if kind == "unpacked-floats":  # one blob of one-tag-per-value floats, split by other fields
        record = b"\x2d" + b"\x00\x00\x80\x3f"
        run = record * 1000 + b"\x08\x01"
        body = run * (n // len(run))
        return delimited(100, delimited(1, b"x") + delimited(7, body))
    if kind == "doubles":  # packed doubles, converted to float32
        values = np.ones(n // 8, "<f8").tobytes()
        shape = delimited(7, delimited(1, varint(n // 8)))
        return delimited(100, delimited(1, b"x") + delimited(7, shape + delimited(8, values)))
    if kind == "strings":
        return delimited(100, delimited(1, b"x" * n))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["tiny-fields", "empty-layers", "packed-varints", "unpacked-floats", "doubles", "strings"]
)
def test_crafted_caffemodels_stay_within_memory_and_time(kind: str) -> None:
    """Peak traced memory (Python objects and numpy arrays) ≤ 1.2× the file, whatever its content."""
    data = _crafted(kind)
    peak, seconds = _peak(lambda b: parse_caffemodel(b, source="crafted.caffemodel"), data)
    assert peak <= 1.2 * len(data), (kind, peak / len(data))
    assert seconds < 20, (kind, seconds)


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "1" * (1 << 20) + "a",
        "a {" * (1 << 18),
        'name: "' + "\\101" * (1 << 18) + '"',
        "layer { name: " + "'x' " * (1 << 18) + "}",
    ],
    ids=["digits-letter", "deep", "escapes", "strings"],
)
def test_prototxt_parser_is_linear(text: str) -> None:
    start = time.perf_counter()
    try:
        parse_prototxt(text, source="big.prototxt")
    except CaffeFormatError as err:
        assert str(err).startswith("big.prototxt:")
    assert time.perf_counter() - start < 10  # about 1 MB: < 1 s on a quiet machine; quadratic took minutes
