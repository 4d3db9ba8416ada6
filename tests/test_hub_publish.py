"""Publishing to, and fetching from, a Hugging Face Hub emulator on 127.0.0.1 (client code in subprocesses)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from support.hub_fixtures import (
    BARE_HUB_IMPORT,
    CAFFEMODEL_SHA256,
    clean_env,
    hf_source,
    hub_client_env,
    make_weights_folder,
    pending_manifest,
    publish_to_emulator,
    run_python,
    url_source,
    write_manifest,
)
from support.hub_server import FileServer, HubEmulator

from senet_zoo.hub.manifest import load_manifest
from senet_zoo.hub.publish import PublishError, publish

REPO = "senet-zoo/se_resnet50"

_REPUBLISH_AND_FETCH = (
    BARE_HUB_IMPORT
    + """
import argparse, contextlib, io, json, sys
from senet_zoo.hub import commands
from senet_zoo.hub.fetch import fetch_weights
folder, repo, manifest = sys.argv[1:4]
parser = argparse.ArgumentParser()
commands.register(parser.add_subparsers())
args = parser.parse_args(["publish", folder, "--repo-id", repo, "--manifest", manifest])
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = args.func(args)
path, entry = fetch_weights("se_resnet50", manifest=manifest, progress=False)
print(json.dumps({"code": code, "cli": out.getvalue(), "path": str(path), "tag": entry.tag,
                  "sha256": __import__("hashlib").sha256(open(path, "rb").read()).hexdigest()}))
"""
)

_FETCH_ALL = (
    BARE_HUB_IMPORT
    + """
import json, sys
from senet_zoo.hub.fetch import DownloadError, fetch_weights
manifest, results = sys.argv[1], {}
for tag in sys.argv[2:]:
    try:
        path, entry = fetch_weights("se_resnet50", tag, manifest=manifest, progress=False)
        results[tag] = {"path": str(path), "bytes": open(path, "rb").read().hex()}
    except DownloadError as err:
        results[tag] = {"error": str(err), "attempts": err.attempts}
print(json.dumps(results))
"""
)


def _fetch_all(hub: HubEmulator, home: Path, manifest: Path, *tags: str, **env: str) -> dict:
    return run_python(_FETCH_ALL, hub_client_env(hub, home, **env), str(manifest), *tags, forbid=(hub.token,))


@pytest.mark.slow
def test_publish_fetch_round_trip(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    weights = (folder / "model.safetensors").read_bytes()
    manifest = pending_manifest(tmp_path / "weights_manifest.json")
    with HubEmulator(lifetime_s=90) as hub:
        first = publish_to_emulator(hub, folder, REPO, manifest, tmp_path / "home")
        commits = hub.commits(REPO)
        assert [c.oid for c in commits][-1] == first["revision"] and len(commits) == 2  # initial + ours
        assert first["created_commit"] and first["sha256"] == hashlib.sha256(weights).hexdigest()
        assert set(commits[-1].files) == {".gitattributes", "model.safetensors", "config.json", "README.md"}
        assert commits[-1].files["model.safetensors"].lfs and not commits[-1].files["config.json"].lfs
        for name in ("model.safetensors", "config.json", "README.md"):
            assert hub.file_bytes(REPO, name, first["revision"]) == (folder / name).read_bytes()
        assert hub.count("POST", "/commit/") == 1 and hub.count("PUT", "/upload/", server="cdn") == 1

        entry = load_manifest(manifest).get("se_resnet50")
        assert entry.tag == "caffe_in1k" and entry.available and entry.status == "published"
        assert entry.sources[0].describe() == f"hf://{REPO}@{first['revision']}/model.safetensors"
        assert (entry.sha256, entry.size) == (first["sha256"], len(weights))
        assert entry.provenance.converter_version == "0.1.0-test"
        assert entry.provenance.caffemodel_sha256 == CAFFEMODEL_SHA256

        second = run_python(
            _REPUBLISH_AND_FETCH,
            hub_client_env(hub, tmp_path / "home"),
            str(folder),
            REPO,
            str(manifest),
            forbid=(hub.token,),
        )
        assert second["code"] == 0 and f"no changes, existing commit {first['revision']}" in second["cli"]
        assert len(hub.commits(REPO)) == 2 and hub.count("POST", "/commit/") == 1  # identical files: no commit
        assert hub.count("PUT", "/upload/", server="cdn") == 1  # and no second upload
        assert second["sha256"] == first["sha256"] and second["tag"] == "caffe_in1k"
        assert Path(second["path"]).is_relative_to(tmp_path / "home" / "torch" / "hub" / "senet_zoo")
        downloads = [r for r in hub.requests if r.server == "cdn" and r.method == "GET"]
        assert len(downloads) == 1 and not downloads[0].authorized  # the token never leaves the Hub origin
        resolves = [(r.method, r.path) for r in hub.requests if "/resolve/" in r.path]
        # one GET pinned to the commit: the redirect's X-Linked-Size/-Etag are checked before the first byte
        assert resolves == [("GET", f"/{REPO}/resolve/{first['revision']}/model.safetensors")]

        # Offline: the cached file is served without any request; an uncached revision fails clearly.
        doc = json.loads(manifest.read_text())
        doc["models"]["se_resnet50"]["weights"]["old_in1k"] = {
            **doc["models"]["se_resnet50"]["weights"]["caffe_in1k"],
            "sources": [hf_source(REPO, hub.commits(REPO)[0].oid)],
        }
        write_manifest(manifest, doc)
        before = len(hub.requests)
        offline = _fetch_all(hub, tmp_path / "home", manifest, "caffe_in1k", "old_in1k", HF_HUB_OFFLINE="1")
        assert len(hub.requests) == before
        assert (
            offline["caffe_in1k"]["path"] == second["path"] and bytes.fromhex(offline["caffe_in1k"]["bytes"]) == weights
        )
        error = offline["old_in1k"]["error"]
        assert "se_resnet50.old_in1k" in error and "offline" in error
        assert str(tmp_path / "home" / "hf" / "hub") in error


@pytest.mark.slow
def test_tampered_hub_file_is_deleted_and_next_source_used(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted", seed=1)
    weights = (folder / "model.safetensors").read_bytes()
    manifest = pending_manifest(tmp_path / "m.json")
    with HubEmulator(lifetime_s=90) as hub, FileServer(lifetime_s=90) as mirror:
        published = publish_to_emulator(hub, folder, REPO, manifest, tmp_path / "publisher")
        hub.tamper(REPO, "model.safetensors")
        doc = json.loads(manifest.read_text())
        e = doc["models"]["se_resnet50"]["weights"]["caffe_in1k"]
        doc["models"]["se_resnet50"]["weights"]["mirror_in1k"] = {
            **e,
            "sources": [*e["sources"], url_source(mirror.add("/model.safetensors", weights))],
        }
        write_manifest(manifest, doc)
        home = tmp_path / "user"
        result = _fetch_all(hub, home, manifest, "caffe_in1k", "mirror_in1k")
        attempts = result["caffe_in1k"]["attempts"]
        assert len(attempts) == 1 and attempts[0][0].startswith(f"hf://{REPO}@{published['revision']}")
        assert "sha256 mismatch" in attempts[0][1] and "(deleted)" in attempts[0][1]
        assert bytes.fromhex(result["mirror_in1k"]["bytes"]) == weights  # fell through to the mirror
        assert Path(result["mirror_in1k"]["path"]).is_relative_to(home / "torch" / "hub" / "senet_zoo")
        blobs = home / "hf" / "hub" / "models--senet-zoo--se_resnet50" / "blobs"
        assert not any(p.stat().st_size == len(weights) for p in blobs.rglob("*"))  # the bad blob is gone
        assert not list((home / "torch" / "hub" / "senet_zoo" / "se_resnet50" / "caffe_in1k").iterdir())
        assert hub.count("GET", "/lfs/", server="cdn") == 2 and mirror.gets["/model.safetensors"] == 1


@pytest.mark.slow
def test_private_repo_round_trip(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted", seed=2)
    manifest = pending_manifest(tmp_path / "m.json")
    with HubEmulator(lifetime_s=90) as hub:
        publish_to_emulator(hub, folder, "org/private_se", manifest, tmp_path / "home", private=True)
        assert hub.is_private("org/private_se")
        got = _fetch_all(hub, tmp_path / "reader", manifest, "caffe_in1k")
        assert bytes.fromhex(got["caffe_in1k"]["bytes"]) == (folder / "model.safetensors").read_bytes()
        anonymous = _fetch_all(hub, tmp_path / "anon", manifest, "caffe_in1k", HF_TOKEN="hf_wrong")
        assert "Repository Not Found" in anonymous["caffe_in1k"]["attempts"][0][1]


@pytest.mark.slow
def test_missing_token_is_a_clear_error(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    manifest = pending_manifest(tmp_path / "m.json")
    code = BARE_HUB_IMPORT + (
        "import json\nfrom senet_zoo.hub.publish import PublishError, publish\n"
        f"try:\n    publish({str(folder)!r}, {REPO!r}, manifest_path={str(manifest)!r})\n"
        "except PublishError as err:\n    print(json.dumps(str(err)))\n"
    )
    env = clean_env(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9")  # nothing may be contacted
    assert "no Hugging Face token" in run_python(code, env)
    assert load_manifest(manifest).get("se_resnet50").status == "pending"


def test_dry_run_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    manifest = pending_manifest(tmp_path / "m.json")
    before = manifest.read_bytes()
    from senet_zoo.cli import main

    assert main(["publish", str(folder), "--repo-id", REPO, "--dry-run", "--manifest", str(manifest)]) == 0
    out = capsys.readouterr().out
    sha = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert "would upload" in out and f"sha256 {sha}" in out and "config.json" in out and "README.md" in out
    assert manifest.read_bytes() == before
    result = publish(folder, REPO, dry_run=True, manifest_path=manifest)
    assert result.dry_run and result.revision is None and result.weights.sha256 == sha


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda f: (f / "README.md").unlink(), "missing README.md"),
        (lambda f: (f / "config.json").write_text("{"), "config.json: not valid JSON"),
        (lambda f: (f / "model.safetensors").write_bytes(b"garbage!" * 4), "not a readable safetensors file"),
        (
            lambda f: (f / "config.json").write_text(json.dumps({"senet_zoo": {"name": "senet154"}})),
            "no entry|senet154",
        ),
        (lambda f: (f / "config.json").write_text("{}"), "no senet_zoo.name"),
        (
            lambda f: (f / "model.safetensors").write_bytes((f / "model.safetensors").read_bytes()[:-4] + b"\0" * 4),
            "differs from the .* recorded in config.json",
        ),
        (
            lambda f: (f / "config.json").write_text(
                json.dumps({"senet_zoo": {"name": "se_resnet50", "source": {"sha256": "xyz"}}})
            ),
            "senet_zoo.source.sha256 is not a sha256",
        ),
    ],
)
def test_publish_rejects_bad_folders(tmp_path: Path, damage, message: str) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    damage(folder)
    with pytest.raises((PublishError, KeyError), match=message):
        publish(folder, REPO, dry_run=True, manifest_path=pending_manifest(tmp_path / "m.json"))


def test_publish_rejects_bad_repo_id_and_conflicting_name(tmp_path: Path) -> None:
    folder = make_weights_folder(tmp_path / "converted")
    manifest = pending_manifest(tmp_path / "m.json")
    with pytest.raises(PublishError, match="ORG/NAME"):
        publish(folder, "no-namespace", dry_run=True, manifest_path=manifest)
    with pytest.raises(PublishError, match="senet_zoo.name is 'se_resnet50' but 'senet154' was asked for"):
        publish(folder, REPO, dry_run=True, manifest_path=manifest, name="senet154")
