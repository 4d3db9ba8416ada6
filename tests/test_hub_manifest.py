"""weights_manifest.json: the shipped content, validation of every kind of bad entry, lookups, atomic rewrites."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hub_fixtures import entry, hf_source, manifest_dict, url_source, write_manifest
from support.expected import CAFFE_ERRORS, TIMM_LEGACY

from senet_zoo.hub.manifest import (
    ManifestError,
    UnknownWeightsError,
    load_manifest,
    record_published,
    split_name,
    update_entry,
)

SHA = "ab" * 32
REV = "0123456789abcdef0123456789abcdef01234567"


def test_shipped_manifest_caffe_entries(repo_root: Path) -> None:
    manifest = load_manifest(repo_root / "weights_manifest.json")
    assert manifest.names() == sorted(CAFFE_ERRORS)
    for name, (stem, top1_err, top5_err) in CAFFE_ERRORS.items():
        e = manifest.get(name, "caffe_in1k")
        assert e.format == "safetensors" and e.license == "apache-2.0"
        assert [round(v * 255, 9) for v in e.preprocessing.mean] == [123, 117, 104]
        assert [round(v * 255, 9) for v in e.preprocessing.std] == [1, 1, 1]
        assert e.preprocessing.input_size == (3, 224, 224)
        assert (e.preprocessing.crop_pct, e.preprocessing.interpolation) == (0.875, "bilinear")
        assert e.metrics is not None
        assert e.metrics.top1_acc == pytest.approx(100 - top1_err, abs=1e-9)
        assert e.metrics.top5_acc == pytest.approx(100 - top5_err, abs=1e-9)
        assert e.metrics.protocol == "single 224 centre crop of 256-short-side"
        assert e.provenance.caffemodel == f"{stem}.caffemodel" and e.provenance.prototxt == f"{stem}.prototxt"
        if e.status == "pending":
            assert not e.available and e.sources == () and e.sha256 is None


def test_shipped_manifest_legacy_entries_match_timm(repo_root: Path) -> None:
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from timm.models.senet import default_cfgs

    manifest = load_manifest(repo_root / "weights_manifest.json")
    assert [n for n in manifest.names() if "cadene_in1k" in manifest.tags(n)] == sorted(TIMM_LEGACY)
    for name, timm_name in TIMM_LEGACY.items():
        e = manifest.get(name, "cadene_in1k")
        cfg = default_cfgs[timm_name].cfgs["in1k"]
        assert [s.url for s in e.sources] == [cfg.url]
        assert e.filename == cfg.url.rsplit("/", 1)[1]
        assert re.search(rf"-{e.sha256_prefix}\.pth$", cfg.url) and e.sha256 is None and e.size is None
        assert e.format == "pth" and e.available
        assert e.preprocessing.mean == IMAGENET_DEFAULT_MEAN and e.preprocessing.std == IMAGENET_DEFAULT_STD
        assert (e.preprocessing.crop_pct, e.preprocessing.interpolation) == (cfg.crop_pct, cfg.interpolation)
        caffe = manifest.get(name, "caffe_in1k")
        assert manifest.default_tag(name) == ("caffe_in1k" if caffe.available else "cadene_in1k")


def test_lookup_api_and_errors(tmp_path: Path) -> None:
    doc = manifest_dict(
        {
            "se_resnet50": {
                "caffe_in1k": entry(status="pending"),
                "cadene_in1k": entry(
                    fmt="pth",
                    filename="w-ce0d4300.pth",
                    sha256_prefix="ce0d4300",
                    sources=[url_source("https://example.org/w-ce0d4300.pth")],
                ),
            },
            "senet154": {"caffe_in1k": entry(sha256=SHA, size=10, sources=[hf_source("org/senet154", REV)])},
        },
        defaults={"se_resnet50": "cadene_in1k"},
    )
    manifest = load_manifest(write_manifest(tmp_path / "m.json", doc))
    assert manifest.names() == ["se_resnet50", "senet154"]
    assert manifest.tags("se_resnet50") == ["caffe_in1k", "cadene_in1k"]
    assert manifest.get("se_resnet50").tag == "cadene_in1k"
    hf = manifest.get("senet154").sources[0]
    assert (hf.kind, hf.repo_id, hf.revision, hf.filename) == ("hf", "org/senet154", REV, "model.safetensors")
    assert manifest.get("se_resnet50", "caffe_in1k").available is False
    assert dict(manifest.get("senet154").preprocessing)["mean"] == (0.485, 0.456, 0.406)
    with pytest.raises(UnknownWeightsError, match="known models: se_resnet50, senet154"):
        manifest.get("resnet50")
    with pytest.raises(KeyError, match="known tags: caffe_in1k, cadene_in1k"):
        manifest.get("se_resnet50", "imagenet")
    assert split_name("se_resnet50.caffe_in1k") == ("se_resnet50", "caffe_in1k")
    assert split_name("senet154") == ("senet154", None)
    with pytest.raises(ValueError):
        split_name("senet154.")


def _valid() -> dict[str, Any]:
    return manifest_dict(
        {
            "se_resnet50": {
                "caffe_in1k": entry(
                    sha256=SHA,
                    size=100,
                    sources=[hf_source("org/se_resnet50", REV), url_source("https://example.org/model.safetensors")],
                ),
                "cadene_in1k": entry(
                    fmt="pth",
                    filename="se_resnet50-ce0d4300.pth",
                    sha256_prefix="ce0d4300",
                    sources=[url_source("https://example.org/se_resnet50-ce0d4300.pth")],
                ),
            }
        }
    )


def _set(path: str, value: Any) -> Callable[[dict], None]:
    """Mutation setting a '/'-separated path inside the document (``None`` value with key '-x' deletes x)."""

    def mutate(doc: dict) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if last.startswith("-"):
            del node[last[1:]]
        else:
            node[last] = value

    return mutate


E = "models/se_resnet50/weights/caffe_in1k"
L = "models/se_resnet50/weights/cadene_in1k"
BAD = [
    ("bad hex sha256", _set(f"{E}/sha256", "zz" * 32), ["'se_resnet50'", "'caffe_in1k'", "'sha256'"]),
    ("short sha256", _set(f"{E}/sha256", "ab" * 31), ["'sha256'", "64"]),
    ("upper-case hex", _set(f"{E}/sha256", "AB" * 32), ["'sha256'"]),
    ("bad revision", _set(f"{E}/sources/0/revision", "main"), ["source #0", "'revision'", "40-hex"]),
    ("bad prefix", _set(f"{L}/sha256_prefix", "ce0d"), ["'cadene_in1k'", "'sha256_prefix'"]),
    ("unknown entry key", _set(f"{E}/sha265", SHA), ["'caffe_in1k'", "unknown key", "'sha265'"]),
    ("unknown top key", _set("version", 1), ["unknown key", "'version'"]),
    ("unknown source key", _set(f"{E}/sources/1/mirror", True), ["source #1", "'mirror'"]),
    ("unknown preprocessing key", _set(f"{E}/preprocessing/resize", 256), ["'preprocessing'", "'resize'"]),
    ("slash in filename", _set(f"{E}/filename", "a/model.safetensors"), ["'filename'", "path separators"]),
    ("backslash in filename", _set(f"{E}/filename", "a\\model.safetensors"), ["'filename'"]),
    ("dotdot in filename", _set(f"{E}/filename", "..model.safetensors"), ["'filename'", "'..'"]),
    ("slash in hf filename", _set(f"{E}/sources/0/filename", "sub/model.safetensors"), ["source #0", "'filename'"]),
    ("dotdot in repo id", _set(f"{E}/sources/0/repo_id", "org/../x"), ["'repo_id'"]),
    ("missing license", _set(f"{E}/-license", None), ["'caffe_in1k'", "missing required key", "'license'"]),
    ("missing sources", _set(f"{E}/-sources", None), ["'sources'"]),
    ("missing provenance key", _set(f"{E}/provenance/-converter", None), ["'provenance'", "'converter'"]),
    ("size as string", _set(f"{E}/size", "100"), ["'size'", "positive integer"]),
    ("size as bool", _set(f"{E}/size", True), ["'size'"]),
    ("mean of two", _set(f"{E}/preprocessing/mean", [0.5, 0.5]), ["'mean'", "3 numbers"]),
    ("std zero", _set(f"{E}/preprocessing/std", [0.2, 0, 0.2]), ["'std'", "positive"]),
    ("input size", _set(f"{E}/preprocessing/input_size", [224, 224]), ["'input_size'"]),
    ("crop pct", _set(f"{E}/preprocessing/crop_pct", 1.5), ["'crop_pct'"]),
    ("interpolation", _set(f"{E}/preprocessing/interpolation", "cubic"), ["'interpolation'"]),
    ("metrics order", _set(f"{E}/metrics/top5_acc", 50.0), ["'metrics'", "top1_acc <= top5_acc"]),
    ("sources not a list", _set(f"{E}/sources", {"type": "url"}), ["'sources'", "list"]),
    ("unknown source type", _set(f"{E}/sources/1/type", "s3"), ["source #1", "hf", "url"]),
    ("ftp url", _set(f"{E}/sources/1/url", "ftp://example.org/x"), ["'url'", "http"]),
    ("status", _set(f"{E}/status", "draft"), ["'status'", "pending"]),
    ("format", _set(f"{E}/format", "onnx"), ["'format'"]),
    ("format vs suffix", _set(f"{L}/filename", "se_resnet50.safetensors"), ["'cadene_in1k'", "match format"]),
    ("no digest", _set(f"{E}/-sha256", None), ["'caffe_in1k'", "exactly one of"]),
    ("both digests", _set(f"{E}/sha256_prefix", "abababab"), ["'caffe_in1k'", "exactly one of"]),
    ("full digest without size", _set(f"{E}/size", None), ["'size'", "prefix"]),
    ("published without sources", _set(f"{E}/sources", []), ["'sources'", "at least one"]),
    ("pending with digest", _set(f"{E}/status", "pending"), ["'caffe_in1k'", "pending entry"]),
    ("unknown default tag", _set("models/se_resnet50/default_tag", "in22k"), ["'default_tag'", "'in22k'"]),
    ("schema version", _set("schema_version", 2), ["schema_version", "unsupported"]),
    ("model name", _set("models/SE-ResNet", {"default_tag": "a", "weights": {}}), ["'SE-ResNet'"]),
]


@pytest.mark.parametrize("mutate,fragments", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validation_rejects(tmp_path: Path, mutate: Callable[[dict], None], fragments: list[str]) -> None:
    doc = _valid()
    load_manifest(write_manifest(tmp_path / "ok.json", doc))  # the base document is valid
    mutate(doc)
    path = write_manifest(tmp_path / "bad.json", doc)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_default_must_be_published_when_something_is(tmp_path: Path) -> None:
    doc = _valid()
    doc["models"]["se_resnet50"]["weights"]["caffe_in1k"] = entry(status="pending")
    doc["models"]["se_resnet50"]["default_tag"] = "cadene_in1k"
    load_manifest(write_manifest(tmp_path / "ok.json", doc))  # default cadene_in1k is published: fine
    doc["models"]["se_resnet50"]["default_tag"] = "caffe_in1k"
    with pytest.raises(ManifestError, match="default tag 'caffe_in1k' is pending while cadene_in1k is published"):
        load_manifest(write_manifest(tmp_path / "bad.json", doc))


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ManifestError, match="broken.json: not valid JSON"):
        load_manifest(tmp_path / "broken.json")
    with pytest.raises(ManifestError, match="missing.json"):
        load_manifest(tmp_path / "missing.json")


def test_record_published_rewrites_through_symlink_atomically(tmp_path: Path) -> None:
    doc = _valid()
    doc["models"]["se_resnet50"]["weights"]["caffe_in1k"] = entry(status="pending", sha256=None, size=None)
    doc["models"]["se_resnet50"]["default_tag"] = "cadene_in1k"
    real = write_manifest(tmp_path / "weights_manifest.json", doc)
    (tmp_path / "pkg").mkdir()
    link = tmp_path / "pkg" / "weights_manifest.json"
    link.symlink_to(os.path.relpath(real, link.parent))
    before = load_manifest(link)
    assert before.default_tag("se_resnet50") == "cadene_in1k"

    published = record_published(
        link,
        "se_resnet50",
        "caffe_in1k",
        repo_id="org/se_resnet50",
        revision=REV,
        filename="model.safetensors",
        sha256=SHA,
        size=1234,
        converter_version="0.1.0",
    )
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "weights_manifest.json"]
    text = real.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"  # 2-space indentation, one trailing newline
    raw = data["models"]["se_resnet50"]["weights"]["caffe_in1k"]
    assert list(raw) == list(doc["models"]["se_resnet50"]["weights"]["caffe_in1k"])  # key order kept
    assert raw["status"] == "published" and raw["sha256"] == SHA and raw["size"] == 1234
    assert raw["sources"] == [hf_source("org/se_resnet50", REV)]
    assert raw["provenance"]["converter_version"] == "0.1.0"
    assert data["models"]["se_resnet50"]["default_tag"] == "caffe_in1k"
    assert published.available and published.sha256 == SHA

    reloaded = load_manifest(link)  # the cache notices the rewrite
    assert reloaded is not before and reloaded.get("se_resnet50").tag == "caffe_in1k"
    assert load_manifest(link) is reloaded


def test_prefix_entry_gets_full_digest_and_keeps_mirrors(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.json", _valid())
    e = record_published(
        path,
        "se_resnet50",
        "cadene_in1k",
        repo_id="org/legacy",
        revision=REV,
        filename="se_resnet50-ce0d4300.pth",
        sha256="ce0d4300" + "0" * 56,
        size=99,
        make_default=False,
    )
    assert e.sha256_prefix is None and e.sha256 == "ce0d4300" + "0" * 56
    assert [s.kind for s in e.sources] == ["hf", "url"]
    assert "sha256_prefix" not in json.loads(path.read_text())["models"]["se_resnet50"]["weights"]["cadene_in1k"]
    assert load_manifest(path).default_tag("se_resnet50") == "caffe_in1k"


def test_invalid_update_leaves_file_untouched(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.json", _valid())
    original = path.read_bytes()
    with pytest.raises(ManifestError, match="'sha256'"):
        update_entry(path, "se_resnet50", "caffe_in1k", {"sha256": "not-hex"})
    with pytest.raises(UnknownWeightsError):
        update_entry(path, "se_resnet50", "in22k", {"size": 5})
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp files left behind


def test_environment_variable_selects_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = manifest_dict({"se_resnet50": {"caffe_in1k": entry(status="pending")}})
    monkeypatch.setenv("SENET_ZOO_MANIFEST", str(write_manifest(tmp_path / "env.json", doc)))
    assert load_manifest().names() == ["se_resnet50"]
    assert load_manifest().path == tmp_path / "env.json"
