"""`senet-zoo publish` against a Hub that hangs, echoes the token or cannot be reached, and the model card claim."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from pathlib import Path

import pytest
from support.hub_fixtures import (
    BARE_HUB_IMPORT,
    clean_env,
    hub_client_env,
    make_weights_folder,
    pending_manifest,
    publish_to_emulator,
    run_python,
)
from support.hub_server import HubEmulator

from senet_zoo.convert.card import model_card
from senet_zoo.hub.manifest import load_manifest
from senet_zoo.hub.publish import PublishError, publish

REPO = "senet-zoo/se_resnet50"

# Runs the real command line (senet_zoo.cli.main) once per argument list; reports exit status, output and time.
_CLI = (
    BARE_HUB_IMPORT
    + """
import contextlib, io, json, sys, time
import huggingface_hub, senet_zoo.convert.card
from senet_zoo.cli import build_parser, main
build_parser()  # imports every command module: not part of the timing
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue(), "seconds": time.monotonic() - start})
print(json.dumps(results))
"""
)


def _publish_argv(folder: Path, manifest: Path) -> list[str]:
    return ["publish", str(folder), "--repo-id", REPO, "--manifest", str(manifest)]


@pytest.mark.slow
def test_hung_and_echoing_hub_give_one_line_errors(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    manifest = pending_manifest(tmp_path / "m.json")
    token = "hf_EchoMe" + "x" * 20
    with HubEmulator(token=token, lifetime_s=60, hold_s=5) as hub:
        hub.fault("POST", "/api/repos/create", "hang", times=1)
        hub.fault("POST", "/api/repos/create", "echo:400", times=1)
        env = hub_client_env(hub, tmp_path / "home", SENET_ZOO_PUBLISH_TIMEOUT="1")
        argv = _publish_argv(folder, manifest)
        hung, echoed = run_python(_CLI, env, json.dumps([argv, argv]), forbid=(token, token[3:]), timeout=60)
        assert hub.count("POST", "/api/repos/create") >= 1  # the hung one is logged when it ends
    for result in (hung, echoed):
        assert result["code"] == 1 and result["out"] == "" and "Traceback" not in result["err"]
        assert len(result["err"].strip().splitlines()) == 1 and result["err"].startswith("senet-zoo publish: error:")
    assert hung["seconds"] < 4 and "did not answer within 1 s" in hung["err"]
    assert "Bad request: malformed Bearer ***" in echoed["err"]
    assert load_manifest(manifest).get("se_resnet50").status == "pending"


@pytest.mark.slow
def test_unreachable_hub_gives_one_line_error(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    manifest = pending_manifest(tmp_path / "m.json")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = clean_env(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_TOKEN="hf_" + "q" * 30)
    (result,) = run_python(_CLI, env, json.dumps([_publish_argv(folder, manifest)]), forbid=("q" * 30,))
    assert result["code"] == 1 and "Traceback" not in result["err"] and result["seconds"] < 10
    assert len(result["err"].strip().splitlines()) == 1 and "cannot reach the Hub" in result["err"]


def _claiming_folder(tmp_path: Path) -> Path:
    """A folder whose README claims the release's accuracy although its config describes unverified weights."""
    folder = make_weights_folder(tmp_path / "converted")
    config = json.loads((folder / "config.json").read_text())
    config["num_classes"] = 1000
    config["senet_zoo"].update(caffe_name="SE-ResNet-50", verification={"tolerance": 1e-4, "checks": []})
    config["senet_zoo"]["source"].update(bytes=1)
    config["senet_zoo"]["weights"].update(parameters=1)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "README.md").write_text(
        model_card(config, release_sha256=frozenset({config["senet_zoo"]["source"]["sha256"]}))
    )
    return folder


def test_dry_run_says_what_the_card_claims(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    manifest = pending_manifest(tmp_path / "m.json")
    from senet_zoo.cli import main

    assert main([*_publish_argv(folder, manifest), "--dry-run"]) == 0
    assert "model card: no accuracy claim (the conversion was not verified" in capsys.readouterr().out

    claiming = _claiming_folder(tmp_path / "b")
    with pytest.raises(PublishError, match="claims the release's accuracy, but the source caffemodel .* is not a"):
        publish(claiming, REPO, dry_run=True, manifest_path=manifest)
    config = json.loads((claiming / "config.json").read_text())
    (claiming / "README.md").write_text(model_card(config))  # re-rendered by the converter's rule: no claim
    result = publish(claiming, REPO, dry_run=True, manifest_path=manifest)
    assert result.card.startswith("no accuracy claim (the source caffemodel (sha256 ")
    assert "synthetic or other weights" in result.card


def test_repo_id_follows_the_hub_rule(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    manifest = pending_manifest(tmp_path / "m.json")
    for bad in ("no-namespace", "a--b/c", "org/name.", "org/../x", "a/b/c"):
        with pytest.raises(PublishError, match="ORG/NAME"):
            publish(folder, bad, dry_run=True, manifest_path=manifest)
    assert publish(folder, "Org-1/se_resnet50.caffe_in1k", dry_run=True, manifest_path=manifest).dry_run


_FETCH = (
    BARE_HUB_IMPORT
    + """
import json, sys
from senet_zoo.hub.fetch import DownloadError, fetch_weights, verify_cache
from senet_zoo.hub.manifest import load_manifest
manifest, mode = sys.argv[1:3]
if mode == "verify-cache":
    checks = verify_cache(load_manifest(manifest), dry_run=True)
    print(json.dumps([[str(c.path), c.status, c.problem] for c in checks]))
    raise SystemExit
try:
    path, _ = fetch_weights("se_resnet50", manifest=manifest, progress=False)
    print(json.dumps({"path": str(path), "bytes": open(path, "rb").read().hex()}))
except DownloadError as err:
    print(json.dumps({"error": str(err)}))
"""
)


_HF_DOWNLOAD = """
import json, sys
from huggingface_hub import hf_hub_download
print(json.dumps(hf_hub_download(sys.argv[1], "model.safetensors", revision=sys.argv[2])))
"""


@pytest.mark.slow
def test_corrupted_hub_cache_is_caught_even_with_restored_mtime(tmp_path: Path) -> None:
    import os

    folder = make_weights_folder(tmp_path / "converted", seed=3)
    weights = (folder / "model.safetensors").read_bytes()
    manifest = pending_manifest(tmp_path / "m.json")
    with HubEmulator(lifetime_s=90) as hub:
        revision = publish_to_emulator(hub, folder, REPO, manifest, tmp_path / "publisher")["revision"]
        env = hub_client_env(hub, tmp_path / "user")
        run_python(_HF_DOWNLOAD, env, REPO, revision)  # the file is in the Hugging Face cache (e.g. timm put it)
        first = run_python(_FETCH, env, str(manifest), "fetch")
        assert bytes.fromhex(first["bytes"]) == weights
        blob = Path(os.path.realpath(first["path"]))
        assert blob.name == hashlib.sha256(weights).hexdigest()  # the Hub cache names LFS blobs by sha256
        before = blob.stat()
        data = bytearray(blob.read_bytes())
        data[-5] ^= 0x01  # same size, same inode, mtime put back
        blob.write_bytes(bytes(data))
        os.utime(blob, ns=(before.st_atime_ns, before.st_mtime_ns))
        (checked,) = run_python(_FETCH, env, str(manifest), "verify-cache")
        assert checked[1] == "bad" and "sha256 mismatch" in checked[2] and blob.exists()  # dry run: reported only
        offline = run_python(_FETCH, {**env, "HF_HUB_OFFLINE": "1"}, str(manifest), "fetch")
        assert "sha256 mismatch" in offline["error"] and "(deleted)" in offline["error"] and not blob.exists()
        again = run_python(_FETCH, env, str(manifest), "fetch")  # online: downloaded again, verified
        assert bytes.fromhex(again["bytes"]) == weights
        assert hub.count("GET", "/lfs/", server="cdn") == 2


@pytest.mark.slow
def test_dripping_hub_download_is_a_stall(tmp_path: Path) -> None:
    """huggingface_hub's own download loop gets the stall window and deadline of URL downloads."""
    folder = make_weights_folder(tmp_path / "converted", seed=4)
    manifest = pending_manifest(tmp_path / "m.json")
    with HubEmulator(lifetime_s=60, hold_s=8) as hub:
        publish_to_emulator(hub, folder, REPO, manifest, tmp_path / "publisher")
        hub.fault("GET", "/lfs/", "drip:0.05", server="cdn")
        env = hub_client_env(
            hub,
            tmp_path / "user",
            SENET_ZOO_DOWNLOAD_STALL_SECONDS="0.5",
            SENET_ZOO_DOWNLOAD_STALL_BYTES="4096",
            HF_HUB_DOWNLOAD_TIMEOUT="30",
        )
        start = time.monotonic()
        result = run_python(_FETCH, env, str(manifest), "fetch")
        assert time.monotonic() - start < 8  # the drip would go on for hold_s
        assert "transfer stalled" in result["error"] and f"hf://{REPO}@" in result["error"]
        blobs = tmp_path / "user" / "hf" / "hub" / "models--senet-zoo--se_resnet50" / "blobs"
        assert not any(p.is_file() and not p.name.endswith(".incomplete") for p in blobs.rglob("*"))
