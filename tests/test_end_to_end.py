"""Convert → publish → fetch → load, against a Hub emulator on 127.0.0.1.

A synthesized full-size Caffe SE-ResNet-50 is converted, published with senet_zoo.hub.publish,
and then loaded three ways in fresh processes: `senet_zoo.create_model(pretrained=True)` through the
manifest the publish updated, `torch.hub.load(<checkout>, source='local')`, and plain
`timm.create_model('hf-hub:…', pretrained=True)` without importing senet_zoo and with an empty
HF_HOME. All three must give the same logits as the converted file itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.hub_fixtures import REPO_ROOT, hub_client_env, pending_manifest, publish_to_emulator, run_python
from support.hub_server import HubEmulator

import senet_zoo
from senet_zoo.caffe.synth import synth_net
from senet_zoo.caffe.writer import write_caffemodel
from senet_zoo.convert import convert

pytestmark = pytest.mark.slow  # full conversions / releases: run by CI and the full command

REPO_ID = "senet-zoo/se_resnet50.caffe_in1k"
LOGITS = (  # every route computes logits on the same seeded input and saves them to argv[1]
    "import json, sys, numpy as np, torch\n"
    "def save(model):\n"
    "    torch.manual_seed(0)\n"
    "    with torch.no_grad():\n"
    "        out = model.eval()(torch.randn(2, 3, 96, 96))\n"
    "    np.save(sys.argv[1], out.numpy())\n"
    "    print(json.dumps({'shape': list(out.shape)}))\n"
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    caffemodel = work / "SE-ResNet-50.caffemodel"
    write_caffemodel(synth_net("se_resnet50", seed=7), caffemodel)
    out = work / "se_resnet50"
    convert(caffemodel, out, verify=False, progress=False)
    return out


def _expected_logits(folder: Path) -> np.ndarray:
    model = senet_zoo.create_model("se_resnet50", pretrained=folder / "model.safetensors").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        return model(torch.randn(2, 3, 96, 96)).numpy()


def test_publish_then_three_loaders_agree(converted: Path, tmp_path: Path) -> None:
    manifest = pending_manifest(tmp_path / "manifest.json")
    with HubEmulator(lifetime_s=600) as hub:
        published = publish_to_emulator(hub, converted, REPO_ID, manifest, tmp_path / "publisher")
        local_sha = hashlib.sha256((converted / "model.safetensors").read_bytes()).hexdigest()
        assert published["sha256"] == local_sha
        recorded = json.loads(manifest.read_text())["models"]["se_resnet50"]["weights"]["caffe_in1k"]
        assert recorded["status"] == "published" and recorded["sha256"] == local_sha
        assert recorded["sources"][0]["revision"] == published["revision"] and len(published["revision"]) == 40

        env = hub_client_env(hub, tmp_path / "client", SENET_ZOO_MANIFEST=str(manifest))
        routes = {
            "senet_zoo": "import senet_zoo\nsave(senet_zoo.create_model('se_resnet50', pretrained=True))\n",
            "torch.hub": f"save(torch.hub.load({str(REPO_ROOT)!r}, 'se_resnet50', source='local', pretrained=True))\n",
        }
        results = {}
        for route, code in routes.items():
            run_python(LOGITS + code, env, str(tmp_path / f"{route}.npy"), timeout=300)
            results[route] = np.load(tmp_path / f"{route}.npy")
        plain_timm = (
            LOGITS + "import timm\nassert 'senet_zoo' not in sys.modules\n"
            f"save(timm.create_model('hf-hub:{REPO_ID}', pretrained=True))\n"
            "assert 'senet_zoo' not in sys.modules\n"
        )
        run_python(plain_timm, hub_client_env(hub, tmp_path / "fresh"), str(tmp_path / "timm.npy"), timeout=300)
        results["timm hf-hub"] = np.load(tmp_path / "timm.npy")
        assert hub.count("GET", "/lfs/", server="cdn") >= 2  # both clients really downloaded the LFS object

    expected = _expected_logits(converted)
    assert np.isfinite(expected).all() and expected.std() > 0
    for route, logits in results.items():
        assert logits.shape == (2, 1000), route
        assert np.abs(logits - expected).max() <= 1e-6, route
