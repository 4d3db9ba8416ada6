"""Downloads from plain URLs against a real HTTP server on 127.0.0.1 with injected faults, and weight loading."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support.hub_fixtures import BARE_HUB_IMPORT, clean_env, entry, manifest_dict, url_source, write_manifest
from support.hub_server import FileServer

from senet_zoo.hub.fetch import (
    DownloadError,
    DownloadSettings,
    WeightsNotAvailableError,
    cache_dir,
    cached_path,
    fetch,
    fetch_weights,
)
from senet_zoo.hub.manifest import WeightsEntry, load_manifest
from senet_zoo.hub.weights_file import load_state_dict

FAST = DownloadSettings(retries=3, backoff_s=0.01, stall_window_s=10)
DATA = os.urandom(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server():
    with FileServer(lifetime_s=60) as srv:
        yield srv


def _entry(tmp_path: Path, urls: list[str], manifest: str = "manifest.json", **digest: object) -> WeightsEntry:
    digest = digest or {"sha256": SHA, "size": len(DATA)}
    doc = manifest_dict({"se_resnet50": {"caffe_in1k": entry(sources=[url_source(u) for u in urls], **digest)}})
    return load_manifest(write_manifest(tmp_path / manifest, doc)).get("se_resnet50")


def _cache_files() -> list[str]:
    """Everything in the download cache except lock files."""
    root = cache_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts)


def test_download_verifies_and_is_cached(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    path = fetch(e, progress=False, settings=FAST)
    assert path == cached_path(e) and path.read_bytes() == DATA
    assert path.is_relative_to(Path(os.environ["TORCH_HOME"]) / "hub" / "senet_zoo")
    assert fetch(e, progress=False, settings=FAST) == path
    assert server.gets["/w.safetensors"] == 1  # the second call used the cache
    assert _cache_files() == [
        "se_resnet50/caffe_in1k/model.safetensors",
        "se_resnet50/caffe_in1k/model.safetensors.verified.json",  # the stamp: verified once, then trusted
    ]


def test_interrupted_transfer_resumes_with_range(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA, ["cut:100000", "ok"])])
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA
    assert server.ranges == [("/w.safetensors", "bytes=100000-")]
    assert server.gets["/w.safetensors"] == 2 and server.wait_complete("/w.safetensors", 1) == 1


def test_server_ignoring_range_restarts_cleanly(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA, ["cut:100000", "no_range"])])
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA  # no duplicated prefix
    assert server.ranges == [("/w.safetensors", "bytes=100000-")] and server.gets["/w.safetensors"] == 2


def test_stale_partial_from_killed_process_is_resumed(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    part = cached_path(e).with_name("model.safetensors.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:123_456])
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA
    assert server.ranges == [("/w.safetensors", "bytes=123456-")] and not part.exists()


def test_5xx_is_retried_then_succeeds(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA, ["500", "500", "ok"])])
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA
    assert server.gets["/w.safetensors"] == 3


def test_connection_reset_is_retried_then_succeeds(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA, ["reset", "ok"])])
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA
    assert server.gets["/w.safetensors"] == 2


@pytest.mark.parametrize(
    "behaviour,reason",
    [
        ("500", "HTTP 500"),
        ("reset", "gave up after 4 attempts"),
        ("404", "HTTP 404"),
        ("short:1000", "size mismatch: expected 300000 bytes, got 1000"),
        ("corrupt", f"sha256 mismatch: expected {SHA}"),
    ],
)
def test_fault_leaves_nothing_and_names_source(server: FileServer, tmp_path: Path, behaviour: str, reason: str) -> None:
    url = server.add("/w.safetensors", DATA, [behaviour])
    with pytest.raises(DownloadError) as info:
        fetch(_entry(tmp_path, [url]), progress=False, settings=FAST)
    assert [where for where, _ in info.value.attempts] == [url]
    assert (
        reason in info.value.attempts[0][1] and url in str(info.value) and "se_resnet50.caffe_in1k" in str(info.value)
    )
    assert _cache_files() == []
    expected_gets = 1 + FAST.retries if behaviour in ("500", "reset") else 1  # bounded retries, none for 4xx/bad data
    assert server.gets["/w.safetensors"] == expected_gets


def test_bad_source_falls_through_to_next(server: FileServer, tmp_path: Path) -> None:
    bad = server.add("/bad.safetensors", DATA, ["corrupt"])
    good = server.add("/good.safetensors", DATA)
    assert fetch(_entry(tmp_path, [bad, good]), progress=False, settings=FAST).read_bytes() == DATA
    assert server.gets["/bad.safetensors"] == 1 and server.gets["/good.safetensors"] == 1


def test_all_sources_failing_lists_each(server: FileServer, tmp_path: Path) -> None:
    first = server.add("/a.safetensors", DATA, ["corrupt"])
    second = server.add("/b.safetensors", DATA, ["404"])
    with pytest.raises(DownloadError) as info:
        fetch(_entry(tmp_path, [first, second]), progress=False, settings=FAST)
    assert [a[0] for a in info.value.attempts] == [first, second]
    assert "sha256 mismatch" in info.value.attempts[0][1] and "HTTP 404" in info.value.attempts[1][1]
    assert _cache_files() == []


def test_prefix_only_legacy_entry(server: FileServer, tmp_path: Path) -> None:
    url = server.add("/w-x.pth", DATA)
    good = _entry(tmp_path, [url], sha256_prefix=SHA[:8], size=None)
    assert fetch(good, progress=False, settings=FAST).read_bytes() == DATA
    wrong_prefix = "00000000" if not SHA.startswith("00000000") else "11111111"
    bad = _entry(tmp_path, [url], "wrong.json", sha256_prefix=wrong_prefix, size=None)
    cached_path(bad).unlink()  # same name and tag: drop the verified copy so the download happens again
    with pytest.raises(DownloadError, match=f"expected prefix {wrong_prefix}"):
        fetch(bad, progress=False, settings=FAST)
    assert _cache_files() == []


@pytest.mark.parametrize("variable", ["SENET_ZOO_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_mode(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    monkeypatch.setenv(variable, "1")
    with pytest.raises(DownloadError) as info:
        fetch(e, progress=False, settings=FAST)
    message = str(info.value)
    assert "se_resnet50.caffe_in1k" in message and "offline" in message and str(cached_path(e)) in message
    assert server.gets["/w.safetensors"] == 0
    monkeypatch.delenv(variable)
    path = fetch(e, progress=False, settings=FAST)
    monkeypatch.setenv(variable, "1")
    assert fetch(e, progress=False, settings=FAST) == path and server.gets["/w.safetensors"] == 1


def test_pending_entry_explains_local_conversion(tmp_path: Path) -> None:
    doc = manifest_dict({"se_resnet50": {"caffe_in1k": entry(status="pending")}})
    with pytest.raises(WeightsNotAvailableError) as info:
        fetch_weights("se_resnet50", manifest=write_manifest(tmp_path / "m.json", doc))
    message = str(info.value)
    assert (
        "senet-zoo convert --prototxt SE-ResNet-50.prototxt --caffemodel SE-ResNet-50.caffemodel --out DIR" in message
    )
    assert "create_model('se_resnet50', pretrained=\"DIR/model.safetensors\")" in message


def test_fetch_weights_and_cli(
    server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENET_ZOO_DOWNLOAD_BACKOFF", "0.01")
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    path, got = fetch_weights("se_resnet50", manifest=tmp_path / "manifest.json", progress=False)
    assert got == e and path.read_bytes() == DATA
    from senet_zoo.cli import main

    assert (
        main(["fetch", "se_resnet50.caffe_in1k", "--manifest", str(tmp_path / "manifest.json"), "--no-progress"]) == 0
    )
    assert capsys.readouterr().out.strip() == str(path)
    assert (
        main(["fetch", "se_resnet50.in22k", "--manifest", str(tmp_path / "manifest.json")]) == 2
    )  # an unknown tag is bad input (exit-code convention)
    assert "known tags: caffe_in1k" in capsys.readouterr().err


_WORKER = (
    BARE_HUB_IMPORT
    + """
import json, sys, time, hashlib
from pathlib import Path
from senet_zoo.hub.fetch import fetch_weights
manifest, go = sys.argv[1], Path(sys.argv[2])
print("ready", flush=True)
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
path, _ = fetch_weights("se_resnet50", manifest=manifest, progress=False)
print(json.dumps({"path": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}))
"""
)


def test_two_processes_share_one_download(tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    with FileServer(chunk_delay_s=0.05, lifetime_s=60) as srv:  # ~0.8 s transfer: the processes overlap
        doc = manifest_dict(
            {
                "se_resnet50": {
                    "caffe_in1k": entry(
                        sources=[url_source(srv.add("/w.safetensors", data))],
                        sha256=hashlib.sha256(data).hexdigest(),
                        size=len(data),
                    )
                }
            }
        )
        manifest = write_manifest(tmp_path / "m.json", doc)
        go = tmp_path / "go"
        env = clean_env(TORCH_HOME=str(tmp_path / "torch"))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _WORKER, str(manifest), str(go)],
                env=env,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            go.touch()
            outputs = [proc.communicate(timeout=60) for proc in procs]
        finally:
            for proc in procs:
                proc.kill()
        assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in outputs]
        results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
        assert results[0] == results[1] and results[0]["sha256"] == hashlib.sha256(data).hexdigest()
        assert srv.gets["/w.safetensors"] == 1 and srv.wait_complete("/w.safetensors", 1) == 1


# --------------------------------------------------------------------------------------------- load_state_dict


def _tensors() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {"conv.weight": torch.randn(4, 3, 3, 3, generator=gen), "fc.bias": torch.randn(5, generator=gen)}


def _assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert sorted(got) == sorted(want)
    for key in want:
        assert torch.equal(got[key], want[key]) and got[key].device.type == "cpu"


def test_load_safetensors(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file(_tensors(), str(tmp_path / "w.safetensors"))
    _assert_same(load_state_dict(tmp_path / "w.safetensors"), _tensors())
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(ValueError, match="bad.safetensors: not a readable safetensors file"):
        load_state_dict(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("wrapper", [None, "state_dict", "model"])
@pytest.mark.parametrize("zipped", [True, False])
def test_load_legacy_pth(tmp_path: Path, wrapper: str | None, zipped: bool) -> None:
    obj = _tensors() if wrapper is None else {wrapper: _tensors(), "epoch": 3}
    torch.save(obj, tmp_path / "w.pth", _use_new_zipfile_serialization=zipped)
    _assert_same(load_state_dict(tmp_path / "w.pth"), _tensors())


class _Payload:
    def __reduce__(self):  # would run a command if unpickled without weights_only
        return (os.system, ("echo unsafe",))


def test_load_pth_refuses_arbitrary_objects(tmp_path: Path) -> None:
    torch.save({"fc.bias": torch.zeros(2), "evil": _Payload()}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match="w.pth: cannot be read as a weights-only PyTorch checkpoint"):
        load_state_dict(tmp_path / "w.pth")
    torch.save({"fc.bias": torch.zeros(2), "note": "text"}, tmp_path / "v.pth")
    with pytest.raises(ValueError, match="v.pth: expected a mapping of parameter names to tensors"):
        load_state_dict(tmp_path / "v.pth")
    with pytest.raises(ValueError, match="unsupported weights format '.npz'"):
        load_state_dict(tmp_path / "w.npz")
