"""ONNX export: every architecture runs in ONNX Runtime with the PyTorch model's outputs; metadata, dynamic
batch, refusal above the tolerance with nothing written, and ``senet-zoo export`` on a converted folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import senet_zoo  # noqa: E402
from senet_zoo.cli import main  # noqa: E402
from senet_zoo.convert.classes import sorted_wnids  # noqa: E402
from senet_zoo.export import ExportError, export_onnx  # noqa: E402
from senet_zoo.inference import optimize_for_inference  # noqa: E402

SMALL = dict(layers=(1, 1, 1, 1))
# (name, architecture kwargs, input size): every family's blocks (grouped 3x3, SENet-154's 3x3 stem and 3x3
# projections, the Inception modules) at reduced depth and size; se_resnet50 at full depth.
ARCHS = [
    ("se_resnet50", {}, 32),
    ("se_resnet101", SMALL, 32),
    ("se_resnet152", SMALL, 32),
    ("se_resnext50_32x4d", SMALL, 32),
    ("se_resnext101_32x4d", SMALL, 32),
    ("senet154", SMALL, 32),
    ("se_bn_inception", {}, 64),
]


def _model(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    model = senet_zoo.create_model(name, num_classes=num_classes, **kwargs)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial BatchNorm, so that folding changes every convolution
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.5)
    return model.eval()


def _onnxruntime(path: Path, x: torch.Tensor) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.numpy()})


def _rel_diff(got: np.ndarray, model: nn.Module, x: torch.Tensor) -> float:
    """max |ORT - PyTorch float64| / max |PyTorch float64|."""
    import copy

    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    return float((torch.from_numpy(got).double() - ref).abs().max() / ref.abs().max())


@pytest.mark.slow
@pytest.mark.parametrize("name,kwargs,size", ARCHS, ids=[a[0] for a in ARCHS])
def test_export_runs_in_onnxruntime_like_pytorch(tmp_path: Path, name: str, kwargs: dict, size: int) -> None:
    model = _model(name, **kwargs)
    path = tmp_path / f"{name}.onnx"
    report = export_onnx(model, path, input_size=(3, size, size))
    assert path.is_file() and report.bytes == path.stat().st_size
    assert report.max_rel_diff <= 1e-4 and [c["batch"] for c in report.checks] == [1, 3]
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops and {"Conv", "GlobalAveragePool", "Gemm", "Sigmoid", "Mul"} <= ops
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # Independently of the report: a batch size the export never saw, against the float64 model.
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(7)) * 50
    (out,) = _onnxruntime(path, x)
    assert out.shape == (2, 10)
    assert _rel_diff(out, model, x) <= 1e-4


@pytest.mark.slow
def test_metadata_carries_preprocessing_labels_and_verification(tmp_path: Path) -> None:
    model = _model("se_resnet50", num_classes=1000, **SMALL)
    path = tmp_path / "m.onnx"
    export_onnx(model, path, input_size=(3, 32, 32))
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    pre = json.loads(meta["preprocessing"])
    assert pre["mean"] == pytest.approx(list(model.pretrained_cfg["mean"]))
    assert pre["std"] == pytest.approx(list(model.pretrained_cfg["std"]))
    assert pre["input_size"] == [3, 224, 224] and pre["interpolation"] == "bilinear"
    assert meta["architecture"] == "se_resnet50" and meta["num_classes"] == "1000"
    names = json.loads(meta["label_names"])
    assert names == sorted_wnids() and len(json.loads(meta["label_descriptions"])) == 1000
    verification = json.loads(meta["verification"])
    assert verification["tolerance"] == 1e-4 and all(c["max_rel"] <= 1e-4 for c in verification["checks"])


@pytest.mark.slow
def test_refused_export_writes_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    model = _model("se_resnet50", **SMALL)
    path = tmp_path / "m.onnx"
    path.write_bytes(b"the user's previous export")
    with pytest.raises(ExportError, match=r"not written.*max rel diff .* > tolerance 1e-12"):
        export_onnx(model, path, input_size=(3, 32, 32), tolerance=1e-12)  # float32 rounding exceeds it
    assert path.read_bytes() == b"the user's previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temporary file left behind


@pytest.mark.slow
def test_fixed_batch_and_fused_model_and_feature_extractor(tmp_path: Path) -> None:
    model = _model("se_resnet50", **SMALL)
    fixed = tmp_path / "fixed.onnx"
    export_onnx(optimize_for_inference(model), fixed, dynamic_batch=False, batch_size=2, input_size=(3, 32, 32))
    assert onnx.load(str(fixed)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2
    x = torch.randn(2, 3, 32, 32)
    assert _rel_diff(_onnxruntime(fixed, x)[0], model, x) <= 1e-4
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        _onnxruntime(fixed, torch.randn(3, 3, 32, 32))

    feats = _model("se_resnet50", features_only=True, out_indices=(1, 4), **SMALL)
    report = export_onnx(feats, tmp_path / "feats.onnx", input_size=(3, 32, 32))
    assert report.output_names == ("output0", "output1") and report.max_rel_diff <= 1e-4
    assert "label_names" not in report.metadata and report.metadata["num_classes"] == "0"


def test_refuses_a_model_in_training_mode(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="eval mode"):
        export_onnx(senet_zoo.create_model("se_resnet50", **SMALL), tmp_path / "m.onnx")


def test_missing_onnxruntime_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(ExportError, match=r"pip install 'senet-zoo\[export\]'"):
        export_onnx(_model("se_resnet50", **SMALL), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def _converted_folder(folder: Path) -> nn.Module:
    """A folder as `senet-zoo convert` writes it (model.safetensors + config.json), reduced in size."""
    model = _model("se_resnext101_32x4d", **SMALL)
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    config = {
        "architecture": "legacy_seresnext101_32x4d",
        "num_classes": 10,
        "model_args": {"layers": [1, 1, 1, 1]},
        "pretrained_cfg": {"tag": "caffe_in1k", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2], "crop_pct": 0.875},
        "label_names": [f"class{i}" for i in range(10)],
        "label_descriptions": {f"class{i}": f"thing {i}" for i in range(10)},
        "senet_zoo": {"name": "se_resnext101_32x4d", "tag": "caffe_in1k"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    return model


@pytest.mark.slow
def test_cli_exports_a_converted_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = _converted_folder(tmp_path / "converted")
    out = tmp_path / "out" / "model.onnx"
    assert main(["export", str(tmp_path / "converted"), "--format", "onnx", "--out", str(out), "--size", "32"]) == 0
    assert "max rel diff" in capsys.readouterr().out
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(meta["label_names"]) == [f"class{i}" for i in range(10)]
    assert json.loads(meta["label_descriptions"])[3] == "thing 3"
    assert meta["weights_tag"] == "caffe_in1k" and json.loads(meta["preprocessing"])["mean"] == [0.5, 0.4, 0.3]
    x = torch.randn(2, 3, 32, 32)
    assert _rel_diff(_onnxruntime(out, x)[0], model, x) <= 1e-4


def test_cli_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "config.json" in capsys.readouterr().err
    assert main(["export", "se_resnet50", "--out", str(tmp_path / "x.onnx"), "--batch", "many"]) == 2
    assert "--batch" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_dynamo_export_of_the_fused_model_runs_in_onnxruntime(tmp_path: Path) -> None:
    """torch.onnx.export(dynamo=True) (onnxscript, in the export extra) on optimize_for_inference's result."""
    pytest.importorskip("onnxscript")
    model = _model("se_resnet50", **SMALL)
    x = torch.randn(2, 3, 32, 32)
    path = tmp_path / "dynamo.onnx"
    torch.onnx.export(optimize_for_inference(model), (x,), str(path), dynamo=True)
    assert _rel_diff(_onnxruntime(path, x)[0], model, x) <= 1e-4


@pytest.mark.slow
def test_se_excitation_is_exported_as_1x1_convolutions(tmp_path: Path) -> None:
    """As timm's export has it (ONNX Runtime keeps the chain in its blocked layout): only the classifier is a Gemm."""
    report = export_onnx(_model("se_resnet50", **SMALL), tmp_path / "m.onnx", input_size=(3, 32, 32))
    ops = [n.op_type for n in onnx.load(str(report.path)).graph.node]
    assert ops.count("Gemm") == 1 and ops.count("GlobalAveragePool") == 4 + 1
    assert ops.count("Sigmoid") == 4
