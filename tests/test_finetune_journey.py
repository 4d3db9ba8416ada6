"""The fine-tuned model's journey end to end, on scikit-learn's digits (scripts/finetune_journey.py, tiny).

finetune (defaults, --pretrained none, 32 px) → evaluate RUN → export RUN → ONNX Runtime with the preprocessing
and labels of the file's metadata only → publish RUN to a Hub emulator → a fresh process with an empty cache:
plain timm (se_resnet50, no senet_zoo import) and senet_zoo.create_model (se_bn_inception) from ``hf-hub:`` →
``create_model(name, pretrained=RUN)``. Every top-1 equals evaluate's and the logits are identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_finetune_evaluate_export_publish_reload(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SENET_ZOO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmd = [sys.executable, str(REPO / "scripts" / "finetune_journey.py"), "--work", str(tmp_path), "--json"]
    cmd += ["--train-size", "150", "--val-size", "50", "--epochs", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500, cwd=REPO)
    assert proc.stdout.strip(), proc.stderr[-4000:]
    results = {r["model"]: r for r in json.loads(proc.stdout.strip().splitlines()[-1])}
    assert set(results) == {"se_resnet50", "se_bn_inception"}
    for r in results.values():
        assert r["onnx_top1"] == r["evaluate_top1"], r
        assert r["hub_top1"] == r["evaluate_top1"], r
        assert r["create_model_run"]["identical"], r
        assert r["create_model_run"]["labels"] == [str(i) for i in range(10)]
        assert r["onnx_preprocessing"]["input_size"] == r["hub_input_size"] == [3, 32, 32], r
    assert results["se_resnet50"]["hub_route"] == "timm" and not results["se_resnet50"]["hub_senet_zoo_imported"]
    assert results["se_resnet50"]["hub_architecture"] == "SENet"  # timm's legacy_seresnet50
    assert results["se_bn_inception"]["hub_architecture"] == "SEBNInception"
    assert proc.returncode == 0, proc.stderr[-4000:]
