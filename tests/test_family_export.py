"""ONNX export of SE-VGG-16 (timm's ConvMlp head): verified at its 224×224, a one-line error below it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import senet_zoo  # noqa: E402
from senet_zoo.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def vgg() -> torch.nn.Module:
    torch.manual_seed(0)
    return senet_zoo.create_model("se_vgg16_bn", num_classes=10).eval()


def test_too_small_an_input_is_one_line_naming_the_smallest(vgg: torch.nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"at 32×32: .* the smallest input is 224×224") as info:
        senet_zoo.export_onnx(vgg, tmp_path / "m.onnx", input_size=(3, 32, 32))
    assert "\n" not in str(info.value) and not (tmp_path / "m.onnx").exists()
    with pytest.raises(ValueError, match=r"at 100×256: .* gets a 3×8 feature map .* the smallest input is 224×224"):
        senet_zoo.export_onnx(vgg, tmp_path / "m.onnx", input_size=(3, 100, 256))


def test_cli_too_small_an_input_is_a_one_line_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m.onnx"
    assert main(["export", "se_vgg16_bn", "--weights", "random", "--size", "32", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "smallest input is 224×224" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.slow  # a 530 MB graph: ~30 s on a shared 2-core CPU
def test_cli_exports_at_the_default_224_verified_with_onnxruntime(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "se_vgg16_bn.onnx"
    assert main(["export", "se_vgg16_bn", "--weights", "random", "--out", str(out)]) == 0
    assert "ONNX Runtime vs PyTorch (float64) at batch 1, 3, 224×224" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [3, 224, 224]
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    (logits,) = session.run(None, {"input": x})
    assert logits.shape == (2, 1000) and np.isfinite(logits).all()
