"""senet_zoo.caffe.writer: binary and text serializers, checked by google.protobuf and our readers."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch
from support.caffe_nets import assert_same_net, small_net
from support.caffe_proto import decode_net, net_message

from senet_zoo.caffe.executor import run
from senet_zoo.caffe.net import Layer, Net, copy_trained_layers
from senet_zoo.caffe.prototxt import read_prototxt
from senet_zoo.caffe.wire import read_caffemodel
from senet_zoo.caffe.writer import write_caffemodel, write_prototxt


def test_caffemodel_round_trip_and_runs_the_same(tmp_path):
    net = small_net()
    path = tmp_path / "net.caffemodel"
    write_caffemodel(net, path)
    back = read_caffemodel(path)
    assert_same_net(net, back)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, 9, 9)).astype(np.float32))
    torch.testing.assert_close(run(back, x, ["flat", "conv2"]), run(net, x, ["flat", "conv2"]), rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["net.caffemodel"]  # no temporary left behind


def test_caffemodel_equals_google_protobuf_message(tmp_path):
    """google.protobuf parses our bytes into exactly the message it builds itself for the net."""
    net = small_net()
    path = tmp_path / "net.caffemodel"
    write_caffemodel(net, path)
    parsed = decode_net(path.read_bytes())
    assert parsed == net_message(net)
    assert parsed.layer[1].blobs[0].shape.dim == [3] and parsed.layer[1].blobs[2].data == [999.5]


def test_float64_and_strided_blobs_are_written_as_float32(tmp_path):
    weight = np.arange(24, dtype=np.float64).reshape(4, 6)[:, ::2]  # non-contiguous float64
    net = Net(
        "n",
        [
            Layer(
                "fc",
                "InnerProduct",
                ["x"],
                ["y"],
                {"inner_product_param": {"num_output": 4, "bias_term": False}},
                [weight],
            )
        ],
    )
    write_caffemodel(net, tmp_path / "n.caffemodel")
    (got,) = read_caffemodel(tmp_path / "n.caffemodel").layers[0].blobs
    assert got.dtype == np.float32 and got.shape == (4, 3)
    np.testing.assert_array_equal(got, weight)


def test_large_blob_is_streamed_not_copied(tmp_path):
    blob = np.ones((4096, 1024), np.float32)  # 16 MiB
    net = Net("big", [Layer("fc", "InnerProduct", ["x"], ["y"], {"inner_product_param": {"num_output": 4096}}, [blob])])
    tracemalloc.start()
    try:
        write_caffemodel(net, tmp_path / "big.caffemodel")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < blob.nbytes // 4, f"writer allocated {peak} bytes for a {blob.nbytes}-byte blob"
    assert (tmp_path / "big.caffemodel").stat().st_size > blob.nbytes


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "net.caffemodel"
    path.write_bytes(b"old")
    bad = Net("bad", [Layer("p", "Pooling", ["x"], ["y"], {"pooling_param": {"pool": "MEDIAN"}})])
    with pytest.raises(ValueError, match="layer 'p': pool: 'MEDIAN' is not one of"):
        write_caffemodel(bad, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["net.caffemodel"]


def test_prototxt_round_trip(tmp_path):
    net = small_net()
    net.name = 'odd "name"\twith\\escapes'
    net.layers[2].params["custom_param"] = {"mode": "FAST", "label": "a b", "ratio": 0.25, "flags": [True, False]}
    path = tmp_path / "net.prototxt"
    write_prototxt(net, path)
    text = path.read_text()
    assert "pool: AVE" in text and 'type: "Pooling"' in text and "mode: FAST" in text
    back = read_prototxt(path)
    assert back.name == net.name
    assert [(layer.name, layer.type, layer.bottoms, layer.tops, layer.params) for layer in back.layers] == [
        (layer.name, layer.type, layer.bottoms, layer.tops, layer.params) for layer in net.layers
    ]
    assert all(not layer.blobs for layer in back.layers)


def test_prototxt_structure_plus_caffemodel_blobs(tmp_path):
    """The usual pairing: deploy prototxt for the structure, caffemodel (here with an extra layer) for blobs."""
    net = small_net()
    write_prototxt(net, tmp_path / "deploy.prototxt")
    trained = small_net()
    trained.layers.append(
        Layer(
            "loss_fc",
            "InnerProduct",
            ["flat"],
            ["loss"],
            {"inner_product_param": {"num_output": 1}},
            [np.ones((1, 5), np.float32)],
        )
    )
    write_caffemodel(trained, tmp_path / "trained.caffemodel")
    deploy = read_prototxt(tmp_path / "deploy.prototxt")
    assert copy_trained_layers(deploy, read_caffemodel(tmp_path / "trained.caffemodel")) == ["loss_fc"]
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((2, 3, 9, 9)).astype(np.float32))
    torch.testing.assert_close(run(deploy, x), run(net, x), rtol=0, atol=0)
