"""A misbehaving HTTP server, corrupted caches, leaked secrets and no network: each download either ends with
verified bytes or fails cleanly with a helpful message, and nothing unverified stays in (or leaves) the cache."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

import pytest
from support.hub_fixtures import (
    BARE_HUB_IMPORT,
    clean_env,
    entry,
    manifest_dict,
    run_python,
    url_source,
    write_manifest,
)
from support.hub_server import FileServer, gzip_bomb

from senet_zoo._redact import redact
from senet_zoo.hub.fetch import (
    DownloadError,
    DownloadSettings,
    cache_dir,
    cached_path,
    fetch,
    max_download_bytes,
    stamp_path,
    verify_cache,
)
from senet_zoo.hub.manifest import WeightsEntry, load_manifest

DATA = os.urandom(200_000)
SHA = hashlib.sha256(DATA).hexdigest()
# short windows keep every fault under about a second
FAST = DownloadSettings(retries=2, backoff_s=0.01, stall_bytes=4096, stall_window_s=0.4, deadline_s=5.0)


@pytest.fixture
def server():
    with FileServer(lifetime_s=60, hold_s=3.0) as srv:
        yield srv


def _entry(tmp_path: Path, urls: list[str], **digest: object) -> WeightsEntry:
    digest = digest or {"sha256": SHA, "size": len(DATA)}
    doc = manifest_dict({"se_resnet50": {"caffe_in1k": entry(sources=[url_source(u) for u in urls], **digest)}})
    return load_manifest(write_manifest(tmp_path / "manifest.json", doc)).get("se_resnet50")


def _cache_files() -> list[str]:
    root = cache_dir()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".locks" not in p.parts)


def _fails(e: WeightsEntry, match: str, settings: DownloadSettings = FAST) -> DownloadError:
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch(e, progress=False, settings=settings)
    assert time.monotonic() - start < 5
    assert match in info.value.attempts[0][1], info.value.attempts
    assert _cache_files() == []  # no .part, no file, no stamp
    return info.value


# --------------------------------------------------------------------------------------------- the wire


def test_limit_is_known_before_the_first_byte(tmp_path: Path) -> None:
    sized = _entry(tmp_path, ["http://127.0.0.1:1/w.safetensors"])
    assert max_download_bytes(sized) == len(DATA)
    legacy = _entry(tmp_path, ["http://127.0.0.1:1/w.pth"], sha256_prefix=SHA[:8], size=None)
    bound = max_download_bytes(legacy)  # from SE-ResNet-50's parameter count: 28.09 M float32 + overhead
    assert 28_088_024 * 4 < bound < 150_000_000


def test_oversize_body_without_length_is_cut_at_the_limit(server: FileServer, tmp_path: Path) -> None:
    _fails(_entry(tmp_path, [server.add("/w.safetensors", DATA, ["long:100000"])]), "more than the 200000 bytes")


def test_announced_oversize_is_refused_before_the_body(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.pth", DATA, ["huge"])], sha256_prefix=SHA[:8], size=None)
    _fails(e, "announces 1000000000000 bytes, more than the")


def test_gzip_bomb_is_refused_undecoded(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.pth", DATA, ["gzip"])], sha256_prefix=SHA[:8], size=None)
    assert len(gzip_bomb()) < 200_000
    _fails(e, "refused a compressed answer (Content-Encoding: gzip")


def test_drip_is_a_stall(server: FileServer, tmp_path: Path) -> None:
    _fails(_entry(tmp_path, [server.add("/w.safetensors", DATA, ["drip:0.02"])]), "transfer stalled")


def test_silence_is_a_stall(server: FileServer, tmp_path: Path) -> None:
    _fails(_entry(tmp_path, [server.add("/w.safetensors", DATA, ["stall:1000"])]), "transfer stalled")


def test_overall_deadline(server: FileServer, tmp_path: Path) -> None:
    slow = DownloadSettings(retries=0, stall_bytes=10, stall_window_s=0.3, deadline_s=0.8)
    _fails(_entry(tmp_path, [server.add("/w.safetensors", DATA, ["drip:0.002"])]), "0.8 s deadline", slow)


@pytest.mark.parametrize(
    "behaviour,reason", [("loop", "TooManyRedirects"), ("html", "web page (text/html"), ("500", "HTTP 500")]
)
def test_bad_answers_fail_cleanly(server: FileServer, tmp_path: Path, behaviour: str, reason: str) -> None:
    _fails(_entry(tmp_path, [server.add("/w.safetensors", DATA, [behaviour])]), reason)


def test_reset_then_good_answer_gives_verified_bytes(server: FileServer, tmp_path: Path) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA, ["reset", "500", "ok"])])
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA


def test_faulty_sources_fall_through_to_a_good_one(server: FileServer, tmp_path: Path) -> None:
    urls = [server.add(f"/{b}.safetensors", DATA, [b]) for b in ("gzip", "html", "loop")]
    urls.append(server.add("/good.safetensors", DATA))
    assert fetch(_entry(tmp_path, urls), progress=False, settings=FAST).read_bytes() == DATA


# --------------------------------------------------------------------------------------------- the cache


def _flip_byte(path: Path, *, restore_mtime: bool) -> None:
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    with path.open("r+b") as fh:  # same inode, same size
        fh.write(data)
    if restore_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size


@pytest.mark.parametrize("restore_mtime", [False, True])
def test_same_size_cache_corruption_is_caught(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_mtime: bool
) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    path = fetch(e, progress=False, settings=FAST)
    assert json.loads(stamp_path(path).read_text())["sha256"] == SHA
    _flip_byte(path, restore_mtime=restore_mtime)
    monkeypatch.setenv("SENET_ZOO_OFFLINE", "1")
    with pytest.raises(DownloadError, match="failed verification .sha256 mismatch"):
        fetch(e, progress=False, settings=FAST)
    assert not path.exists() and not stamp_path(path).exists()  # never loaded, removed from the cache
    monkeypatch.delenv("SENET_ZOO_OFFLINE")  # online again: downloaded anew and verified
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA
    assert server.gets["/w.safetensors"] == 2


def test_stamp_is_trusted_without_hashing(server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    fetch(e, progress=False, settings=FAST)
    fetch_module = sys.modules["senet_zoo.hub.fetch"]  # the package re-exports a function of the same name

    def no_hashing(*args: object, **kwargs: object) -> None:
        raise AssertionError("a matching stamp must not re-hash")

    monkeypatch.setattr(fetch_module, "hash_file", no_hashing)
    assert fetch(e, progress=False, settings=FAST) == cached_path(e)
    with pytest.raises(AssertionError, match="must not re-hash"):
        fetch(e, progress=False, settings=FAST, verify=True)  # --verify hashes anyway


def test_file_placed_by_hand_is_verified_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    e = _entry(tmp_path, ["http://127.0.0.1:1/w.safetensors"])
    monkeypatch.setenv("SENET_ZOO_OFFLINE", "1")
    path = cached_path(e)
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(len(DATA)))  # random bytes, right size
    with pytest.raises(DownloadError, match="failed verification"):
        fetch(e, progress=False, settings=FAST)
    assert not path.exists()
    path.write_bytes(os.urandom(len(DATA)))
    from senet_zoo.cli import main

    assert main(["fetch", "se_resnet50", "--manifest", str(tmp_path / "manifest.json"), "--no-progress"]) == 1
    assert "failed verification" in capsys.readouterr().err and not path.exists()
    path.write_bytes(DATA)  # the right file, placed by hand
    assert fetch(e, progress=False, settings=FAST) == path and stamp_path(path).exists()


def test_cache_verify_reports_and_removes(server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    path = fetch(e, progress=False, settings=FAST)
    stray = cache_dir() / "notes.txt"
    stray.write_text("mine")
    manifest = load_manifest(tmp_path / "manifest.json")
    assert [(c.status, c.path) for c in verify_cache(manifest)] == [("ok", path), ("unknown", stray)]
    _flip_byte(path, restore_mtime=True)
    from senet_zoo.cli import main

    args = ["cache", "verify", "--manifest", str(tmp_path / "manifest.json")]
    assert main([*args, "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert f"BAD {path}" in out and "sha256 mismatch" in out and "would remove" in out and path.exists()
    assert main(args) == 1 and not path.exists() and stray.read_text() == "mine"  # a user's file is left alone
    assert "removed" in capsys.readouterr().out
    assert main(args) == 0


def test_fetch_verify_cli(server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    path = fetch(e, progress=False, settings=FAST)
    _flip_byte(path, restore_mtime=True)
    stamp_path(path).write_text(json.dumps({**json.loads(stamp_path(path).read_text())}))  # stamp looks fine
    from senet_zoo.cli import main

    argv = ["fetch", "se_resnet50", "--manifest", str(tmp_path / "manifest.json"), "--no-progress", "--verify"]
    assert main(argv) == 0  # re-hashed, found bad, removed, downloaded again
    assert capsys.readouterr().out.strip() == str(path) and path.read_bytes() == DATA


# --------------------------------------------------------------------------------------------- secrets


def test_credentials_in_a_mirror_url_are_never_printed(
    server: FileServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = server.add("/w.safetensors", DATA, ["echo"]).replace("http://", "http://alice:s3cr3t-pw@")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DownloadError) as info:
        fetch(_entry(tmp_path, [url]), progress=False, settings=FAST)
    text = str(info.value) + repr(info.value.attempts) + caplog.text
    assert "HTTP 403" in text and "***@127.0.0.1" in text
    assert "s3cr3t-pw" not in text and "alice" not in text and "YWxpY2U6czNjcjN0LXB3" not in text


def test_redact() -> None:
    secret = "hf_" + "Ab1" * 10
    text = redact(f"https://u:p@host/x?token=abc&x=1 Bearer {secret} {secret} {secret[3:]}.", secret)
    assert text == f"https://***@host/x?token=***&x=1 Bearer *** *** {secret[3:]}."  # only known or token-shaped
    assert redact("token hf_abcdefgh and (hf_XYZ123456)") == "token hf_*** and (hf_***)"


# --------------------------------------------------------------------------------------------- offline


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_fails_fast_with_a_helpful_message(tmp_path: Path) -> None:
    """No network: an unresolvable host and a closed port, with the default retry policy."""
    urls = ["http://nonexistent.invalid/w.safetensors", f"http://127.0.0.1:{_closed_port()}/w.safetensors"]
    e = _entry(tmp_path, urls)
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch(e, progress=False, settings=DownloadSettings())
    assert time.monotonic() - start < 2 * len(urls)
    message = str(info.value)
    assert "cannot resolve nonexistent.invalid" in info.value.attempts[0][1]
    assert "Connection refused" in info.value.attempts[1][1]
    for needed in (*urls, str(cached_path(e)), f"sha256 {SHA}", f"{len(DATA)} bytes", "--pretrained none"):
        assert needed in message
    assert "pretrained=False" in message and "Traceback" not in message and len(message.splitlines()) == 5


_OFFLINE_HF = (
    BARE_HUB_IMPORT
    + """
import json, sys, time
from senet_zoo.hub.fetch import DownloadError, fetch_weights
start = time.monotonic()
try:
    fetch_weights("se_resnet50", manifest=sys.argv[1], progress=False)
except DownloadError as err:
    print(json.dumps({"seconds": time.monotonic() - start, "message": str(err), "attempts": err.attempts}))
"""
)


def test_offline_hub_and_mirror_fail_fast(tmp_path: Path) -> None:
    """The same through a Hub source (huggingface_hub's client) and a mirror, in a fresh process."""
    sources = [
        {"type": "hf", "repo_id": "senet-zoo/se_resnet50", "revision": "a" * 40, "filename": "model.safetensors"},
        url_source("http://nonexistent.invalid/w.safetensors"),
    ]
    doc = manifest_dict({"se_resnet50": {"caffe_in1k": entry(sources=sources, sha256=SHA, size=len(DATA))}})
    manifest = write_manifest(tmp_path / "m.json", doc)
    env = clean_env(
        HF_ENDPOINT="http://nonexistent.invalid",
        HF_HOME=str(tmp_path / "hf"),
        TORCH_HOME=str(tmp_path / "torch"),
        HF_HUB_DISABLE_TELEMETRY="1",
    )
    result = run_python(_OFFLINE_HF, env, str(manifest))
    assert result["seconds"] < 4, result
    hub, mirror = (why for _, why in result["attempts"])
    assert "cannot resolve" in hub and "cannot resolve nonexistent.invalid" in mirror
    assert "--pretrained none" in result["message"] and str(tmp_path / "torch") in result["message"]


def test_manifest_errors_redact_credentials(tmp_path: Path) -> None:
    from senet_zoo.hub.manifest import ManifestError

    bad = {"type": "ftp", "url": "https://bob:hunter2pw@mirror.example/w.safetensors"}
    doc = manifest_dict({"se_resnet50": {"caffe_in1k": entry(sources=[bad], sha256=SHA, size=len(DATA))}})
    with pytest.raises(ManifestError) as info:
        load_manifest(write_manifest(tmp_path / "m.json", doc))
    assert "source #0" in str(info.value) and "***@mirror.example" in str(info.value)
    assert "hunter2pw" not in str(info.value)


# --------------------------------------------------------------------------------------------- links planted in a cache


def _user_file(tmp_path: Path) -> tuple[Path, bytes]:
    """A file of the user's, outside every cache, that a link planted in a cache points at (wrong bytes)."""
    precious = tmp_path / "user" / "thesis.bin"
    precious.parent.mkdir()
    content = b"the only copy " * 1000
    precious.write_bytes(content)
    return precious, content


def _hub_entry_with_planted_link(tmp_path: Path, target: Path) -> tuple[Path, Path]:
    """A manifest whose Hub source's file in the Hugging Face cache is a link to ``target``; (manifest, link)."""
    from huggingface_hub import constants

    repo_id, revision = f"planted/se_{tmp_path.name[-12:]}", "b" * 40
    source = {"type": "hf", "repo_id": repo_id, "revision": revision, "filename": "model.safetensors"}
    doc = manifest_dict({"se_resnet50": {"caffe_in1k": entry(sources=[source], sha256=SHA, size=len(DATA))}})
    manifest = write_manifest(tmp_path / "planted.json", doc)
    repo_cache = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    (repo_cache / "snapshots" / revision).mkdir(parents=True)
    link = repo_cache / "snapshots" / revision / "model.safetensors"
    link.symlink_to(target)
    return manifest, link


def test_link_planted_in_the_hub_cache_never_deletes_its_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    precious, content = _user_file(tmp_path)
    manifest, link = _hub_entry_with_planted_link(tmp_path, precious)
    monkeypatch.setenv("SENET_ZOO_OFFLINE", "1")
    with pytest.raises(DownloadError, match="size mismatch"):
        fetch(load_manifest(manifest).get("se_resnet50"), progress=False, settings=FAST)
    assert precious.read_bytes() == content and not link.is_symlink()  # the link goes, the user's file stays

    (tmp_path / "again").mkdir()
    manifest, link = _hub_entry_with_planted_link(tmp_path / "again", precious)
    from senet_zoo.cli import main

    assert main(["cache", "verify", "--manifest", str(manifest)]) == 1
    assert "BAD" in capsys.readouterr().out
    assert precious.read_bytes() == content and not link.is_symlink()


def test_links_planted_in_senet_zoos_cache_are_never_written_through(
    server: FileServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    precious, content = _user_file(tmp_path)
    e = _entry(tmp_path, [server.add("/w.safetensors", DATA)])
    dest = cached_path(e)
    dest.parent.mkdir(parents=True)
    dest.symlink_to(precious)  # the cached file
    dest.with_name(dest.name + ".part").symlink_to(precious)  # and a partial download
    monkeypatch.setenv("SENET_ZOO_OFFLINE", "1")
    with pytest.raises(DownloadError, match="failed verification"):
        fetch(e, progress=False, settings=FAST)
    assert precious.read_bytes() == content and not dest.is_symlink()
    monkeypatch.delenv("SENET_ZOO_OFFLINE")
    assert fetch(e, progress=False, settings=FAST).read_bytes() == DATA  # a fresh download, not a resume
    assert server.ranges == [] and precious.read_bytes() == content


# --------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "variable,value",
    [
        ("SENET_ZOO_DOWNLOAD_STALL_SECONDS", "inf"),
        ("SENET_ZOO_DOWNLOAD_STALL_SECONDS", "nan"),
        ("SENET_ZOO_DOWNLOAD_DEADLINE", "nan"),
        ("SENET_ZOO_DOWNLOAD_DEADLINE", "0"),
        ("SENET_ZOO_DOWNLOAD_RETRIES", "-1"),
        ("SENET_ZOO_DOWNLOAD_RETRIES", "2.5"),
        ("SENET_ZOO_DOWNLOAD_STALL_BYTES", "0"),
        ("SENET_ZOO_DOWNLOAD_CONNECT_TIMEOUT", "-3"),
        ("SENET_ZOO_DOWNLOAD_BACKOFF", "inf"),
    ],
)
def test_bad_download_settings_are_one_line_errors_naming_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError) as info:
        DownloadSettings.from_env()
    assert str(info.value).startswith(f"${variable} must be a finite") and repr(value) in str(info.value)
    _entry(tmp_path, ["http://127.0.0.1:1/w.safetensors"])
    from senet_zoo.cli import main

    assert (
        main(["fetch", "se_resnet50", "--manifest", str(tmp_path / "manifest.json"), "--no-progress"]) == 2
    )  # a bad setting is bad input (exit-code convention)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"${variable} must be a finite" in err and "Traceback" not in err


def test_good_download_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in [("SENET_ZOO_DOWNLOAD_RETRIES", "0"), ("SENET_ZOO_DOWNLOAD_STALL_SECONDS", "0.5")]:
        monkeypatch.setenv(variable, value)
    settings = DownloadSettings.from_env()
    assert (settings.retries, settings.stall_window_s, settings.deadline_s) == (0, 0.5, DownloadSettings.deadline_s)
    with pytest.raises(ValueError, match=r"DownloadSettings.stall_window_s must be a finite number > 0, got inf"):
        DownloadSettings(stall_window_s=float("inf"))
