"""senet_zoo.caffe.wire: the mmap caffemodel reader, against files written by google.protobuf."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
from support.caffe_nets import assert_same_net, rand, small_net
from support.caffe_proto import encode_net, message_classes, write_caffemodel

from senet_zoo.caffe.net import CaffeFormatError, Layer, Net
from senet_zoo.caffe.wire import parse_caffemodel, read_caffemodel


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"packed": False},
        {"double": True},
        {"double": True, "packed": False},
        {"legacy_dims": True},
    ],
)
def test_v2_round_trip(tmp_path, options):
    net = small_net()
    path = tmp_path / "net.caffemodel"
    write_caffemodel(net, path, **options)
    assert_same_net(net, read_caffemodel(path), legacy_dims=options.get("legacy_dims", False))


@pytest.mark.parametrize("options", [{}, {"packed": False, "legacy_dims": True}])
def test_v1_round_trip(tmp_path, options):
    """Legacy files: V1 ``layers`` with enum types, top-level input/input_dim become an Input layer."""
    net = small_net(v1_compatible=True)
    path = tmp_path / "v1.caffemodel"
    write_caffemodel(net, path, v1=True, **options)
    raw = path.read_bytes()
    assert b"Convolution" not in raw  # really the enum form
    assert_same_net(net, read_caffemodel(path), legacy_dims=options.get("legacy_dims", False))


def test_packed_blobs_are_zero_copy_views(tmp_path):
    net = small_net()
    path = tmp_path / "net.caffemodel"
    write_caffemodel(net, path)
    weight = read_caffemodel(path).layer("conv1").blobs[0]
    assert not weight.flags.writeable  # a view of the read-only mapping, not a copy
    base = weight
    while isinstance(base, np.ndarray):
        base = base.base
    assert type(getattr(base, "obj", base)).__name__ == "mmap"
    np.testing.assert_array_equal(weight, net.layer("conv1").blobs[0])


def test_large_unpacked_and_chunked_blobs(tmp_path):
    """A long one-tag-per-value run and a blob whose data is split over several packed fields."""
    rng = np.random.default_rng(1)
    big = rand(rng, 64, 3, 7, 7)
    net = Net(
        "big",
        [Layer("c", "Convolution", ["data"], ["c"], {"convolution_param": {"num_output": 64}}, [big, rand(rng, 64)])],
    )
    assert_same_net(net, parse_caffemodel(encode_net(net, packed=False)))

    classes = message_classes(True)
    part1, part2 = big.ravel()[:1000], big.ravel()[1000:]
    blob = classes["BlobProto"](data=part1.tolist()).SerializeToString()
    blob += classes["BlobProto"](data=part2.tolist(), shape={"dim": big.shape}).SerializeToString()
    layer = classes["LayerParameter"](name="c", type="Convolution").SerializeToString()
    layer += _field(7, blob)
    data = _field(100, layer)
    assert classes["NetParameter"].FromString(data).layer[0].blobs[0].data[1000] == part2[0]
    (got,) = parse_caffemodel(data).layers[0].blobs
    np.testing.assert_array_equal(got, big)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_unknown_fields_are_skipped():
    net = Net("x", [Layer("r", "ReLU", ["a"], ["a"])])
    data = bytearray(encode_net(net))
    layer_start = data.index(b"\x0a\x01r")
    extra = _varint(999 << 3 | 0) + _varint(12345) + _field(998, b"junk") + _varint(997 << 3 | 5) + b"\0\0\0\0"
    extra += _varint(996 << 3 | 1) + bytes(8)
    layer = bytes(data[layer_start:]) + extra
    got = parse_caffemodel(_field(1, b"x") + _field(100, layer))
    assert (got.layers[0].name, got.layers[0].type, got.layers[0].bottoms) == ("r", "ReLU", ["a"])


def test_blobs_survive_the_file_being_closed(tmp_path):
    path = tmp_path / "net.caffemodel"
    net = small_net()
    write_caffemodel(net, path)
    fc = read_caffemodel(path).layer("fc").blobs[0]
    path.unlink()
    np.testing.assert_array_equal(fc, net.layer("fc").blobs[0])


# -- bad files -------------------------------------------------------------------------------


def _write(tmp_path, data: bytes, name: str = "bad.caffemodel"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("cut", [0.99, 0.5, 0.1])
def test_truncated_file(tmp_path, cut):
    data = encode_net(small_net())
    path = _write(tmp_path, data[: int(len(data) * cut)])
    with pytest.raises(CaffeFormatError) as err:
        read_caffemodel(path)
    message = str(err.value)
    assert str(path) in message and "byte" in message
    assert "truncated" in message or "remain" in message


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (pickle.dumps({"state_dict": [1, 2, 3]}), "pickle"),
        (b'name: "SE-ResNet-50"\nlayer {\n  name: "data"\n}\n', "text"),
        (b"\x0a\x03abc", "no layers"),
        (np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "byte"),
    ],
)
def test_not_a_caffemodel(tmp_path, data, words):
    path = _write(tmp_path, data)
    with pytest.raises(CaffeFormatError) as err:
        read_caffemodel(path)
    assert str(path) in str(err.value) and words in str(err.value)


def test_zip_file(tmp_path):
    path = tmp_path / "model.caffemodel"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", b"x" * 100)
    with pytest.raises(CaffeFormatError, match="zip archive"):
        read_caffemodel(path)


def test_bad_wire_type_names_offset(tmp_path):
    data = encode_net(small_net())
    path = _write(tmp_path, bytes([0x0F]) + data)  # field 1 with wire type 7: a corrupt tag
    with pytest.raises(CaffeFormatError, match=r"byte 0: bad wire type 7"):
        read_caffemodel(path)


def test_blob_size_mismatch(tmp_path):
    classes = message_classes(True)
    msg = classes["NetParameter"]()
    layer = msg.layer.add(name="conv", type="Convolution")
    blob = layer.blobs.add()
    blob.shape.dim.extend([2, 3])
    blob.data.extend([1.0] * 5)
    path = _write(tmp_path, msg.SerializeToString())
    with pytest.raises(CaffeFormatError) as err:
        read_caffemodel(path)
    assert str(path) in str(err.value) and "'conv' blob 0" in str(err.value)
    assert "5 values" in str(err.value) and "(2, 3)" in str(err.value)
