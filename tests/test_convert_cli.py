"""``senet-zoo convert`` / ``senet-zoo verify`` through the real command-line entry point."""

from __future__ import annotations

import pytest
from support.convert_helpers import caffemodel, listing

from senet_zoo.cli import main


@pytest.mark.slow
def test_convert_then_verify(tmp_path, capsys) -> None:
    model = caffemodel(tmp_path, "se_resnext50_32x4d", seed=3, package_writer=True)
    out = tmp_path / "folder"
    assert main(["convert", "--caffemodel", str(model), "--out", str(out), "--no-verify", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "se_resnext50_32x4d" in printed and "legacy_seresnext50_32x4d" in printed and "sha256" in printed
    assert listing(out) == ["README.md", "config.json", "model.safetensors"]

    assert main(["verify", str(out), "--caffemodel", str(model)]) == 0
    printed = capsys.readouterr().out
    assert "logits" in printed and "features" in printed and "passed" in printed

    other = caffemodel(tmp_path, "se_resnet50", seed=4, name="other", package_writer=True)
    assert main(["verify", str(out), "--caffemodel", str(other)]) == 2  # fails before running anything
    assert "does not match architecture se_resnext50_32x4d" in capsys.readouterr().err


def test_convert_error_exit_code(tmp_path, capsys) -> None:
    bad = tmp_path / "broken.caffemodel"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    assert main(["convert", "--caffemodel", str(bad), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "senet-zoo convert: error" in err and "broken.caffemodel" in err
    assert listing(tmp_path) == ["broken.caffemodel"]
