"""OpenVINO export: the IR carries the ONNX export's metadata, is verified at fp32 / bf16 before it is
written, refuses atomically; ``senet-zoo export --format openvino``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

ov = pytest.importorskip("openvino")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from test_export import SMALL, _converted_folder, _model, _rel_diff  # noqa: E402

from senet_zoo.cli import main  # noqa: E402
from senet_zoo.export import ExportError, export_onnx, export_openvino, read_openvino_metadata  # noqa: E402
from senet_zoo.inference import optimize_for_inference  # noqa: E402


def _run(path: Path, x: torch.Tensor, precision: str) -> torch.Tensor:
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": precision})
    return compiled(x.numpy())[compiled.outputs[0]]


@pytest.mark.slow
def test_cli_exports_openvino_with_the_onnx_metadata(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = _converted_folder(tmp_path / "converted")
    xml = tmp_path / "out" / "model.xml"
    args = ["export", str(tmp_path / "converted"), "--format", "openvino", "--out", str(xml), "--size", "32"]
    assert main(args) == 0
    assert "OpenVINO f32 vs PyTorch (float64)" in capsys.readouterr().out
    assert sorted(p.name for p in xml.parent.iterdir()) == ["model.bin", "model.xml"]  # nothing else left
    meta = read_openvino_metadata(xml)
    assert meta["precision"] == "fp32"
    onnx_path = tmp_path / "model.onnx"
    assert main(["export", str(tmp_path / "converted"), "--out", str(onnx_path), "--size", "32"]) == 0
    onnx_meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    for key in ("architecture", "weights_tag", "num_classes", "preprocessing", "label_names", "label_descriptions"):
        assert meta[key] == onnx_meta[key], key
    assert json.loads(meta["label_names"])[3] == "class3"
    x = torch.randn(3, 3, 32, 32)
    assert _rel_diff(_run(xml, x, "f32"), model, x) <= 1e-4


@pytest.mark.slow
def test_bf16_export_is_verified_at_its_precision_and_refusal_keeps_the_old_file(tmp_path: Path) -> None:
    model = _model("se_resnet50", **SMALL)
    path = tmp_path / "m.xml"
    report = export_openvino(model, path, precision="bf16", input_size=(3, 32, 32))
    verification = json.loads(report.metadata["verification"])
    assert report.metadata["precision"] == "bf16" and verification["tolerance"] == 3e-2
    assert report.max_rel_diff <= 3e-2
    if "INFERENCE_PRECISION_HINT=bf16" in verification["runtime"]:  # the CPU runs bfloat16 natively
        assert report.max_rel_diff > 1e-5  # verified at bfloat16, not float32
    old = path.read_bytes()
    with pytest.raises(ExportError, match=r"not written.*> tolerance 1e-12"):
        export_openvino(model, path, precision="fp32", input_size=(3, 32, 32), tolerance=1e-12)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.bin", "m.xml"]


def test_openvino_export_refuses_bad_requests(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = _model("se_resnet50", **SMALL)
    with pytest.raises(ValueError, match=r"ends in \.xml"):
        export_openvino(model, tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="precision must be one of"):
        export_openvino(model, tmp_path / "m.xml", precision="int8")
    fast = optimize_for_inference(model, precision="bf16")
    if fast.precision == "bf16":
        with pytest.raises(ValueError, match="traces the float32 graph"):
            export_onnx(fast, tmp_path / "m.onnx")
    assert main(["export", "se_resnet50", "--out", str(tmp_path / "x.onnx"), "--precision", "bf16"]) == 2  # bad input
    assert "--format openvino" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
