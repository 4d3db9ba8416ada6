"""``senet-zoo release`` end to end: seven synthetic Caffe releases → Hub emulator → manifest → create_model.

The seven releases are synthesized at reduced depth (SE-BN-Inception at full size) and saved under
names that say nothing about what they are; one of them is first a truncated download. The first run
is killed while it uploads one model (the emulator holds that upload open); ``--resume`` finishes the
others without converting or uploading anything twice and records them, leaving the corrupt model and the
one whose upload the Hub now refuses pending; a third run with the good file completes the release.
Every model then loads with ``pretrained=True`` through the manifest, downloads from the emulator and
gives exactly the logits of its converted folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from support import hub_server
from support.hub_fixtures import REPO_ROOT, hub_client_env, run_python
from support.hub_server import HubEmulator

from senet_zoo.caffe.synth import synth_net
from senet_zoo.caffe.writer import write_caffemodel, write_prototxt
from senet_zoo.release.pipeline import STATE_FILE, ReleaseError, release

pytestmark = pytest.mark.slow  # full conversions / releases: run by CI and the full command

ORG = "zoo-test"
# name → (blocks per stage, file name in the download folder): distinct depths, uninformative names
RELEASES = {
    "se_bn_inception": (None, "download (1).bin"),
    "se_resnet50": ((1, 1, 1, 1), "model_a.caffemodel"),
    "se_resnet101": ((1, 1, 2, 1), "weights-2"),
    "se_resnet152": ((1, 2, 1, 1), "third.caffemodel"),
    "se_resnext50_32x4d": ((1, 1, 1, 1), "x50.caffemodel"),
    "se_resnext101_32x4d": ((1, 1, 2, 1), "nested/x101.caffemodel"),
    "senet154": ((1, 1, 1, 1), "big.caffemodel"),
}
CORRUPT, INTERRUPTED = "se_resnet152", "se_resnext101_32x4d"


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The authors' seven releases as a maintainer might have downloaded them, plus a prototxt and a readme."""
    src = tmp_path_factory.mktemp("downloads")
    for seed, (name, (layers, filename)) in enumerate(RELEASES.items()):
        path = src / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        write_caffemodel(synth_net(name, layers=layers, seed=seed), path)
    write_prototxt(synth_net("se_resnet50", layers=(1, 1, 1, 1), blobs=False), src / "deploy.prototxt")
    (src / "README.txt").write_text("SENet models, downloaded from the authors' links\n")
    return src


def _manifest_copy(tmp_path: Path) -> Path:
    target = tmp_path / "weights_manifest.json"
    target.write_bytes((REPO_ROOT / "weights_manifest.json").read_bytes())
    return target


def _cli(hub: HubEmulator, home: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "senet_zoo.cli", "-v", "release", *args, "--org", ORG, "--quiet"],
        env=hub_client_env(hub, home),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


@pytest.fixture
def held_upload(monkeypatch: pytest.MonkeyPatch):
    """Make the emulator's CDN misbehave on uploads to one repository: ``hang`` holds the transfer open until
    released (a stalled upload), ``refuse`` answers 400 (not retried by the client)."""
    reached, release_it = threading.Event(), threading.Event()
    holding: dict[str, str | None] = {"repo": None, "mode": "hang"}
    original = hub_server._CdnHandler.upload

    def upload(self, repo: str, oid: str, query: dict) -> None:
        if repo == holding["repo"] and holding["mode"] == "hang":
            reached.set()
            release_it.wait(60)
            raise hub_server._HttpError(503, "upload interrupted")
        if repo == holding["repo"]:
            raise hub_server._HttpError(400, "upload refused")
        original(self, repo, oid, query)

    monkeypatch.setattr(hub_server._CdnHandler, "upload", upload)
    yield holding, reached, release_it
    release_it.set()


def test_release_end_to_end(downloads: Path, tmp_path: Path, held_upload) -> None:  # noqa: PLR0915  (one journey)
    holding, reached, release_it = held_upload
    manifest = _manifest_copy(tmp_path)
    original_manifest = manifest.read_bytes()
    work = tmp_path / "work"
    good = (downloads / RELEASES[CORRUPT][1]).read_bytes()
    (downloads / RELEASES[CORRUPT][1]).write_bytes(good[: len(good) // 2])  # an interrupted download
    common = [str(downloads), "--manifest", str(manifest), "--work-dir", str(work)]
    try:
        with HubEmulator(lifetime_s=600) as hub:
            # Run 1: killed while the upload of INTERRUPTED hangs.
            holding["repo"] = f"{ORG}/{INTERRUPTED}.caffe_in1k"
            proc = _cli(hub, tmp_path / "home", *common)
            assert reached.wait(180), proc.communicate(timeout=5)[0] if proc.poll() is not None else "no upload"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            holding["mode"] = "refuse"
            release_it.set()
            assert manifest.read_bytes() == original_manifest  # the manifest is written once, at the end
            state = json.loads((work / STATE_FILE).read_text())["models"]
            before_kill = ["se_bn_inception", "se_resnet50", "se_resnet101", "se_resnext50_32x4d"]
            assert sorted(n for n, e in state.items() if e.get("published")) == sorted(before_kill)
            for name in before_kill:
                assert state[name]["published"]["revision"] == hub.head(f"{ORG}/{name}.caffe_in1k")
                assert state[name]["caffemodel_sha256"] and state[name]["caffemodel_size"] > 0
            assert len(hub.commits(holding_repo := f"{ORG}/{INTERRUPTED}.caffe_in1k")) == 1  # created, no weights

            # Without --resume the state of the interrupted run is refused (checked before any Hub access).
            with pytest.raises(ReleaseError, match="--resume"):
                release(downloads, ORG, manifest_path=manifest, work_dir=work)

            # Run 2: --resume finishes what it can: the truncated file stays unreleased and is named, the Hub
            # refuses INTERRUPTED's upload; senet154 is published and the other five are recorded.
            code, out = _finish(_cli(hub, tmp_path / "home", *common, "--resume"))
            assert code == 1, out
            assert f"{CORRUPT}: MISSING" in out and "third.caffemodel" in out and "truncated" in out, out
            assert f"{INTERRUPTED}: FAILED: PublishError" in out, out
            for name in before_kill:  # converted and uploaded once only
                assert f"{name}: converting" not in out, out
                assert len(hub.commits(f"{ORG}/{name}.caffe_in1k")) == 2
                assert hub.count("PUT", f"/upload/{ORG}/{name}.caffe_in1k/", server="cdn") == 1
            assert hub.count("PUT", f"/upload/{ORG}/senet154.caffe_in1k/", server="cdn") == 1
            assert len(hub.commits(holding_repo)) == 1
            document = json.loads(manifest.read_text())["models"]
            for name in RELEASES:
                entry = document[name]["weights"]["caffe_in1k"]
                if name in (CORRUPT, INTERRUPTED):
                    assert entry["status"] == "pending" and document[name]["default_tag"] == "cadene_in1k"
                    continue
                _check_recorded(hub, name, document, work)

            # Run 3: the good file arrives and the Hub accepts uploads again; only the two are released, the rest of
            # the manifest stays. A commit recorded in the state that is not on the Hub (here: altered) is reported
            # and never reaches the manifest.
            holding["repo"] = None
            (downloads / RELEASES[CORRUPT][1]).write_bytes(good)
            state = json.loads((work / STATE_FILE).read_text())
            state["models"]["se_resnet50"]["published"]["revision"] = "f" * 40
            (work / STATE_FILE).write_text(json.dumps(state))
            code, out = _finish(_cli(hub, tmp_path / "home", *common, "--resume", "--only", CORRUPT, INTERRUPTED))
            assert code == 1 and "se_resnet50: FAILED" in out and "f" * 40 in out, out
            assert f"{CORRUPT}: published" in out and f"{INTERRUPTED}: published" in out, out
            assert f"{INTERRUPTED}: converting" not in out, out  # verified in run 1; only its upload was missing
            assert "f" * 40 not in manifest.read_text()
            document = json.loads(manifest.read_text())["models"]
            for name in RELEASES:
                _check_recorded(hub, name, document, work)
            assert (
                json.loads(manifest.read_text())["models"]["se_resnet50"]["weights"]["cadene_in1k"]
                == (json.loads(original_manifest)["models"]["se_resnet50"]["weights"]["cadene_in1k"])
            )

            # Every model loads through the manifest from the Hub, with exactly the converted folder's logits.
            env = hub_client_env(hub, tmp_path / "client", SENET_ZOO_MANIFEST=str(manifest))
            result = run_python(_LOAD_ALL, env, str(work), json.dumps(RELEASES), timeout=300)
            assert sorted(result) == sorted(RELEASES)
            for name, check in result.items():
                assert check["same_file"], name
                assert check["max_diff"] == 0.0 and check["std"] > 0, (name, check)
            assert hub.count("GET", "/lfs/", server="cdn") >= len(RELEASES)
    finally:
        (downloads / RELEASES[CORRUPT][1]).write_bytes(good)


def _check_recorded(hub: HubEmulator, name: str, document: dict, work: Path) -> None:
    repo_id = f"{ORG}/{name}.caffe_in1k"
    entry = document[name]["weights"]["caffe_in1k"]
    folder = work / f"{name}.caffe_in1k"
    config = json.loads((folder / "config.json").read_text())
    assert entry["status"] == "published" and document[name]["default_tag"] == "caffe_in1k", name
    assert entry["sources"][0] == {
        "type": "hf",
        "repo_id": repo_id,
        "revision": hub.head(repo_id),
        "filename": "model.safetensors",
    }
    assert entry["sha256"] == config["senet_zoo"]["weights"]["sha256"]
    assert entry["sha256"] == hub.file_record(repo_id, "model.safetensors").sha256
    assert entry["size"] == (folder / "model.safetensors").stat().st_size
    assert entry["provenance"]["caffemodel_sha256"] == config["senet_zoo"]["source"]["sha256"]
    assert entry["provenance"]["caffemodel"] == Path(RELEASES[name][1]).name
    assert config["senet_zoo"]["verification"]["checks"], name  # only verified conversions are published
    card = hub.file_bytes(repo_id, "README.md").decode()
    assert f"hf-hub:{repo_id}" in card


_LOAD_ALL = """
import hashlib, json, sys
from pathlib import Path
import torch
import senet_zoo
from senet_zoo.hub.fetch import fetch_weights

work, releases = Path(sys.argv[1]), json.loads(sys.argv[2])
torch.manual_seed(0)
x = torch.randn(2, 3, 128, 128)
out = {}
for name, (layers, _) in releases.items():
    kwargs = {} if layers is None else {"layers": tuple(layers)}
    local = work / f"{name}.caffe_in1k" / "model.safetensors"
    hub_model = senet_zoo.create_model(name, pretrained=True, **kwargs).eval()
    folder_model = senet_zoo.create_model(name, pretrained=str(local), **kwargs).eval()
    with torch.no_grad():
        a, b = hub_model(x), folder_model(x)
    path, _ = fetch_weights(name)
    same = hashlib.sha256(Path(path).read_bytes()).hexdigest() == hashlib.sha256(local.read_bytes()).hexdigest()
    out[name] = {"max_diff": float((a - b).abs().max()), "std": float(a.std()), "same_file": same}
print(json.dumps(out))
"""


def test_dry_run_uploads_nothing_and_shows_the_diff(downloads: Path, tmp_path: Path) -> None:
    manifest = _manifest_copy(tmp_path)
    original = manifest.read_bytes()
    val = tmp_path / "val"
    from PIL import Image

    rng = np.random.default_rng(0)
    for wnid in ("n01440764", "n02119789"):  # tench (sorted index 0), kit fox
        (val / wnid).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)).save(val / wnid / f"{i}.png")
    with HubEmulator(lifetime_s=300) as hub:
        args = [str(downloads), "--manifest", str(manifest), "--work-dir", str(tmp_path / "work")]
        code, out = _finish(
            _cli(hub, tmp_path / "home", *args, "--dry-run", "--only", "se_resnet50", "--val", str(val))
        )
        assert code == 0, out
        assert hub.repo_ids() == [] and hub.requests == []  # nothing touched the Hub
    assert manifest.read_bytes() == original
    assert not (tmp_path / "work" / STATE_FILE).exists()
    assert '-      "default_tag": "cadene_in1k",' in out and '+      "default_tag": "caffe_in1k",' in out, out
    assert '"caffemodel": "model_a.caffemodel"' in out and '"prototxt": "deploy.prototxt"' in out, out
    assert '"revision": "<commit made by the upload>"' in out and '+          "status": "published"' in out, out
    config = json.loads((tmp_path / "work" / "se_resnet50.caffe_in1k" / "config.json").read_text())
    measured = config["senet_zoo"]["measured"]
    assert measured["images"] == 4 and measured["classes"] == 2
    assert 0 <= measured["top1_acc"] <= measured["top5_acc"] <= 100
    assert "measured top-1" in out
    card = (tmp_path / "work" / "se_resnet50.caffe_in1k" / "README.md").read_text()
    assert f"top-1 **{measured['top1_acc']:.2f}**" in card and "hf-hub:zoo-test/se_resnet50.caffe_in1k" in card
    assert '+            "measured": {' in out and '"images": 4,' in out, out  # next to the reported metrics


def test_evaluate_folder_maps_wnid_folders_to_the_model_classes(downloads: Path, tmp_path: Path) -> None:
    """Images filed under the WNID the model predicts for them score 100 % top-1, whatever subset of classes."""
    import torch
    from PIL import Image
    from timm.data import create_transform

    from senet_zoo.convert import convert
    from senet_zoo.convert.verify import load_converted
    from senet_zoo.release.pipeline import evaluate_folder

    folder = tmp_path / "se_resnet50"
    convert(downloads / RELEASES["se_resnet50"][1], folder, verify=False, progress=False)
    config = json.loads((folder / "config.json").read_text())
    cfg = config["pretrained_cfg"]
    transform = create_transform(
        input_size=tuple(cfg["input_size"]),
        interpolation=cfg["interpolation"],
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        crop_pct=cfg["crop_pct"],
    )
    model = load_converted(folder / "model.safetensors", "se_resnet50", config["model_args"])
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 255, (70, 90, 3), dtype=np.uint8)) for _ in range(4)]
    with torch.no_grad():
        predicted = model(torch.stack([transform(im) for im in images])).argmax(1).tolist()
    assert max(predicted) > 0  # not ImageFolder's own indices 0..k-1 by chance
    for i, (image, index) in enumerate(zip(images, predicted)):
        (tmp_path / "val" / config["label_names"][index]).mkdir(parents=True, exist_ok=True)
        image.save(tmp_path / "val" / config["label_names"][index] / f"{i}.png")
    measured = evaluate_folder(folder, tmp_path / "val")
    assert measured["top1_acc"] == 100.0 and measured["top5_acc"] == 100.0 and measured["images"] == 4


def test_find_releases_by_content(tmp_path: Path) -> None:
    """Names mean nothing; two different files of one release are refused; junk is listed, text is ignored."""
    from senet_zoo.release.pipeline import find_releases

    write_caffemodel(synth_net("se_resnet50", layers=(1, 1, 1, 1), seed=1), tmp_path / "SE-ResNet-101.caffemodel")
    write_caffemodel(synth_net("se_resnet50", layers=(1, 1, 1, 1), seed=2), tmp_path / "copy.bin")
    write_caffemodel(synth_net("se_resnet101", layers=(1, 1, 2, 1), seed=3), tmp_path / "a")
    (tmp_path / "b").write_bytes((tmp_path / "a").read_bytes())  # the same download twice is fine
    write_prototxt(synth_net("se_resnet101", layers=(1, 1, 2, 1), blobs=False), tmp_path / "x.txt")
    (tmp_path / "junk.caffemodel").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "SHA256SUMS").write_text("0123  a\n")
    found, failed, unidentified = find_releases(tmp_path)
    assert sorted(found) == ["se_resnet101"] and found["se_resnet101"].caffemodel.name == "a"
    assert found["se_resnet101"].prototxt == tmp_path / "x.txt"
    assert found["se_resnet101"].model_args == {"layers": [1, 1, 2, 1]}
    assert found["se_resnet101"].sha256 == hashlib.sha256((tmp_path / "a").read_bytes()).hexdigest()
    assert "2 different caffemodels are se_resnet50" in failed["se_resnet50"] and "copy.bin" in failed["se_resnet50"]
    assert len(unidentified) == 1 and unidentified[0].startswith(str(tmp_path / "junk.caffemodel"))
