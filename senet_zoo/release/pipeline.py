"""Release the converted Caffe weights: the authors' download folder → verified, published, recorded.

    report = release("downloads/", "my-org", manifest_path="weights_manifest.json")

For every SENet release found in ``src_dir`` (files may have any name: each caffemodel is identified by
its content, as ``senet-zoo convert`` does; prototxts are optional and paired by their structure) the run

1. records the caffemodel's sha256 and size,
2. converts it into ``<work_dir>/<name>.caffe_in1k/`` and verifies it numerically (the converter's own check),
3. optionally measures top-1/top-5 on an ImageNet validation folder (``val_dir``, class folders named by WNID),
4. publishes the folder to ``<org>/<name>.caffe_in1k`` (:func:`senet_zoo.hub.publish.publish`),

and at the end writes the manifest once, atomically: each published model's ``caffe_in1k`` entry names
the commit, digest and size, and becomes the model's default (only verified conversions are published).

Every step's result is recorded in ``<work_dir>/release-state.json`` (atomic writes) as soon as it is
known, so a run that fails or is killed continues with ``resume=True``: unchanged caffemodels are not
converted again and folders already on the Hub are not uploaded again (publishing identical files makes
no commit). A failure in one model does not stop the others; the manifest then records those that were
published. Before the manifest is written each recorded commit is looked up on the Hub with its file's
sha256, so the manifest never names a revision that does not exist. ``dry_run`` does everything but the
upload, leaves the manifest alone and returns the diff the run would make.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import hash_file, write_text_atomic
from .._log import get_logger
from .._redact import redact
from ..catalog import CAFFE_RELEASES
from ..convert.card import write_card
from ..convert.converter import convert
from ..convert.report import CARD_FILE, CONFIG_FILE, CONVERTER_VERSION, WEIGHTS_FILE
from ..convert.source import load_caffe
from ..hub.manifest import load_manifest, record_published, resolve_manifest_path, update_entry
from ..hub.publish import publish
from ..preprocessing import cfg_eval_transform

__all__ = ["TAG", "STATE_FILE", "Found", "ModelResult", "ReleaseReport", "ReleaseError", "find_releases", "release"]

logger = get_logger(__name__)

TAG = "caffe_in1k"
STATE_FILE = "release-state.json"
STATE_VERSION = 1
PLACEHOLDER_REVISION = "0" * 40  # stands for the commit an upload would make, in a dry run's diff
_TEXT_SNIFF = 4096


class ReleaseError(RuntimeError):
    """The release cannot start (bad arguments, a previous run's state without ``resume``, ...)."""


@dataclass(frozen=True)
class Found:
    """A caffemodel in the source folder identified as one release (and its prototxt, if one was found)."""

    name: str  # registry name
    caffemodel: Path
    sha256: str
    size: int
    model_args: dict[str, Any]
    prototxt: Path | None = None


@dataclass
class ModelResult:
    """What happened to one model in this run."""

    name: str
    status: str  # "published", "verified" (dry run), "failed" or "missing"
    repo_id: str | None = None
    revision: str | None = None
    caffemodel: str | None = None
    caffemodel_sha256: str | None = None
    caffemodel_size: int | None = None
    weights_sha256: str | None = None
    weights_size: int | None = None
    measured: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class ReleaseReport:
    """The outcome of :func:`release`."""

    results: dict[str, ModelResult]
    manifest_path: Path
    manifest_written: bool
    manifest_diff: str
    unidentified: list[str] = field(default_factory=list)  # files of src_dir that are no release, with the reason
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        """True when every requested model reached its goal (published, or verified in a dry run)."""
        return all(r.status in ("published", "verified") for r in self.results.values())


# ------------------------------------------------------------------------------------------------ discovery


def _is_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(_TEXT_SNIFF)
    if b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start > len(head) - 4  # a multi-byte character cut at the end of the sniffed block
    return True


def _prototxt_release(path: Path) -> tuple[str, dict[str, Any]] | None:
    """The release a prototxt describes (name and depth), or None when it is not an SENet deploy prototxt."""
    from ..caffe.executor import param_shapes
    from ..caffe.prototxt import read_prototxt
    from ..convert.detect import detect_architecture

    try:
        net = read_prototxt(path)
        detection = detect_architecture(net.name, param_shapes(net), where=str(path))
    except (ValueError, OSError, KeyError, RuntimeError) as err:  # RuntimeError: the executor's shape checks
        logger.info("%s: not an SENet prototxt (%s)", path, err)
        return None
    return detection.arch, detection.model_args


def find_releases(src_dir: str | os.PathLike[str]) -> tuple[dict[str, Found], dict[str, str], list[str]]:
    """Identify the releases in ``src_dir`` (searched recursively, hidden files skipped).

    Returns ``(found, failed, unidentified)``: ``found`` maps registry names to their caffemodel,
    ``failed`` maps names to a problem that prevents a release (two different caffemodels of the same
    release), ``unidentified`` lists the binary files that are not an SENet caffemodel, each with the reason
    (a truncated download appears here). Text files that are no SENet prototxt are ignored.
    """
    src = Path(src_dir)
    if not src.is_dir():
        raise ReleaseError(f"{src}: source folder not found")
    caffemodels: dict[str, list[Found]] = {}
    prototxts: dict[str, list[tuple[Path, dict[str, Any]]]] = {}
    unidentified: list[str] = []
    files = sorted(p for p in src.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.parts))
    for path in files:
        text = _is_text(path)
        if text:
            found = _prototxt_release(path)
            if found is not None:
                prototxts.setdefault(found[0], []).append((path, found[1]))
                continue
        try:
            source = load_caffe(path)
        except (ValueError, OSError, KeyError, IndexError, RuntimeError) as err:
            if not text:  # a text file that is neither (a readme, a checksum list) is no problem
                unidentified.append(str(err) if str(err).startswith(str(path)) else f"{path}: {err}")
            continue
        size, sha256 = hash_file(path)
        det = source.detection
        caffemodels.setdefault(det.arch, []).append(Found(det.arch, path, sha256, size, det.model_args))
    found_by_name: dict[str, Found] = {}
    failed: dict[str, str] = {}
    for name, candidates in caffemodels.items():
        digests = {c.sha256 for c in candidates}
        if len(digests) > 1:
            listed = ", ".join(f"{c.caffemodel} (sha256 {c.sha256[:12]}…)" for c in candidates)
            failed[name] = f"{len(candidates)} different caffemodels are {name}: {listed}; keep one"
            continue
        best = candidates[0]
        matching = [p for p, args in prototxts.get(name, []) if args == best.model_args]
        found_by_name[name] = dataclasses.replace(best, prototxt=matching[0] if matching else None)
    return found_by_name, failed, unidentified


# ------------------------------------------------------------------------------------------------ state


class _State:
    """``release-state.json``: what each model reached, rewritten atomically after every step."""

    def __init__(self, path: Path | None, org: str, models: dict[str, dict[str, Any]] | None = None) -> None:
        self.path, self.org = path, org
        self.models: dict[str, dict[str, Any]] = models or {}

    @classmethod
    def load(cls, path: Path, org: str) -> _State:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ReleaseError(f"{path}: cannot read the release state ({err}); remove it to start over") from err
        if (
            not isinstance(data, dict)
            or data.get("version") != STATE_VERSION
            or not isinstance(data.get("models"), dict)
        ):
            raise ReleaseError(f"{path}: not a release state file of this version; remove it to start over")
        if data.get("org") != org:
            raise ReleaseError(f"{path}: the interrupted run published to {data.get('org')!r}, not {org!r}")
        for name, entry in data["models"].items():
            _check_state_entry(path, org, name, entry)
        return cls(path, org, data["models"])

    def update(self, name: str, **values: Any) -> dict[str, Any]:
        entry = self.models.setdefault(name, {})
        entry.update(values)
        self.save()
        return entry

    def save(self) -> None:
        if self.path is None:  # a dry run keeps its state in memory
            return
        text = json.dumps({"version": STATE_VERSION, "org": self.org, "models": self.models}, indent=2) + "\n"
        write_text_atomic(self.path, text)


_HEX64 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")


def _check_state_entry(path: Path, org: str, name: Any, entry: Any) -> None:
    """Refuse a model entry of ``release-state.json`` that this code did not write: every value a resumed
    run reuses has its type, and a published repository must be the one this run publishes to."""

    def fail(problem: str) -> ReleaseError:
        return ReleaseError(f"{path}: model {name!r}: {problem}; remove the file to start over")

    if name not in CAFFE_RELEASES:
        raise fail("not a model senet-zoo releases")
    if not isinstance(entry, dict):
        raise fail(f"expected an object, got {type(entry).__name__}")
    kinds: dict[str, Callable[[Any], bool]] = {
        "caffemodel": lambda v: isinstance(v, str),
        "prototxt": lambda v: v is None or isinstance(v, str),
        "error": lambda v: v is None or isinstance(v, str),
        "measured_on": lambda v: isinstance(v, str),
        "verified": lambda v: isinstance(v, bool),
        "caffemodel_sha256": lambda v: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
        "weights_sha256": lambda v: v is None or (isinstance(v, str) and bool(_HEX64.fullmatch(v))),
        "config_sha256": lambda v: isinstance(v, str) and bool(_HEX64.fullmatch(v)),
        "caffemodel_size": _is_size,
        "weights_size": _is_size,
        "max_rel": lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
        "measured": lambda v: v is None or isinstance(v, dict),
        "published": lambda v: v is None or isinstance(v, dict),
    }
    for key, ok in kinds.items():
        if key in entry and not ok(entry[key]):
            raise fail(f"malformed {key!r}: {entry[key]!r}"[:300])
    if entry.get("published"):
        _check_published(fail, org, name, entry)


def _check_published(fail: Callable[[str], ReleaseError], org: str, name: str, entry: dict[str, Any]) -> None:
    """A published model's record: the commit of the repository this run publishes to, and its file."""
    published = entry["published"]
    for key in ("caffemodel", "caffemodel_sha256", "weights_sha256"):
        if key not in entry:
            raise fail(f"a published model without {key!r}")
    repo_id = f"{org}/{name}.{TAG}"
    if published.get("repo_id") != repo_id:
        raise fail(f"recorded repository {published.get('repo_id')!r} is not {repo_id!r} under --org {org}")
    if not (isinstance(published.get("revision"), str) and _COMMIT.fullmatch(published["revision"])):
        raise fail(f"malformed published revision {published.get('revision')!r}")
    if not (isinstance(published.get("sha256"), str) and _HEX64.fullmatch(published["sha256"])):
        raise fail(f"malformed published sha256 {published.get('sha256')!r}")
    if not _is_size(published.get("size")):
        raise fail(f"malformed published size {published.get('size')!r}")


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 40


# ------------------------------------------------------------------------------------------------ the run


def release(
    src_dir: str | os.PathLike[str],
    org: str,
    *,
    only: Sequence[str] | None = None,
    dry_run: bool = False,
    resume: bool = False,
    val_dir: str | os.PathLike[str] | None = None,
    work_dir: str | os.PathLike[str] = "senet-zoo-release",
    manifest_path: str | os.PathLike[str] | None = None,
    private: bool = False,
    progress: bool = True,
) -> ReleaseReport:
    """Find, convert, verify, (evaluate,) publish and record the SENet releases in ``src_dir``; see the module.

    ``only`` restricts the run to these registry names (default: all seven, each of which must be found).
    ``manifest_path`` is the manifest to update (default: ``$SENET_ZOO_MANIFEST`` or the shipped one).
    """
    names = _requested(only)
    if not org or "/" in org:
        raise ReleaseError(f"--org must be a Hub user or organisation name, got {org!r}")
    target = Path(os.path.realpath(resolve_manifest_path(manifest_path)))
    manifest = load_manifest(target)
    for name in names:
        manifest.get(name, TAG)  # the entries must exist before anything is converted or uploaded
    if not Path(src_dir).is_dir():
        raise ReleaseError(f"{src_dir}: source folder not found")
    if val_dir is not None and not Path(val_dir).is_dir():
        raise ReleaseError(f"--val {val_dir}: not a folder (expected {val_dir}/<WNID>/<image> files)")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(work / ".release.lock"), timeout=0):
            return _run(src_dir, org, names, dry_run, resume, val_dir, work, target, private, progress)
    except Timeout:
        raise ReleaseError(f"{work}: another release run is using this work folder") from None


def _requested(only: Sequence[str] | None) -> list[str]:
    if not only:
        return list(CAFFE_RELEASES)
    unknown = [n for n in only if n not in CAFFE_RELEASES]
    if unknown:
        raise ReleaseError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(CAFFE_RELEASES)}")
    return list(dict.fromkeys(only))


def _run(
    src_dir: str | os.PathLike[str],
    org: str,
    names: list[str],
    dry_run: bool,
    resume: bool,
    val_dir: str | os.PathLike[str] | None,
    work: Path,
    target: Path,
    private: bool,
    progress: bool,
) -> ReleaseReport:
    state_path = work / STATE_FILE
    if dry_run:
        state = _State(None, org)  # a dry run neither continues nor disturbs a real run
    elif state_path.exists():
        if not resume:
            raise ReleaseError(
                f"{state_path}: a previous release run left its state here; continue it with --resume "
                f"or choose another --work-dir"
            )
        state = _State.load(state_path, org)
    else:
        state = _State(state_path, org)
    found, failed, unidentified = find_releases(src_dir)
    for line in unidentified:
        logger.warning("not an SENet caffemodel: %s", line)
    # publish() records into this copy; the target is written once. A new file of this run's own (O_EXCL):
    # a link planted in the work folder is never written through.
    fd, staging_name = tempfile.mkstemp(prefix=".manifest.staging.", suffix=".json", dir=work)
    os.close(fd)
    staging = Path(staging_name)
    shutil.copyfile(target, staging)
    results: dict[str, ModelResult] = {}
    for name in names:
        if name in failed or name not in found:
            problem = failed.get(name) or f"no caffemodel of {name} found in {src_dir}" + (
                f" (unidentified files: {'; '.join(unidentified)})" if unidentified else ""
            )
            results[name] = ModelResult(name, "missing", error=problem)
            logger.error("%s: %s", name, problem)
            continue
        try:
            results[name] = _release_one(found[name], org, state, work, staging, dry_run, val_dir, private, progress)
        except Exception as err:  # one model's failure (conversion, verification, network, Hub) spares the others
            problem = _describe(err)
            logger.error("%s: %s", name, problem)
            state.update(name, error=problem)
            results[name] = ModelResult(
                name,
                "failed",
                caffemodel=str(found[name].caffemodel),
                caffemodel_sha256=found[name].sha256,
                error=problem,
            )
    written, diff = _write_manifest(target, results, state, work, dry_run)
    staging.unlink(missing_ok=True)
    return ReleaseReport(results, target, written, diff, unidentified, dry_run)


def _describe(err: BaseException) -> str:
    """The error on one line, with its cause (a Hub client error wraps the server's answer)."""
    text = " ".join(f"{type(err).__name__}: {err}".split())
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text += " (" + " ".join(str(cause).split()) + ")"
    return redact(text)  # a Hub error may echo the request's headers


def _release_one(
    found: Found,
    org: str,
    state: _State,
    work: Path,
    staging: Path,
    dry_run: bool,
    val_dir: str | os.PathLike[str] | None,
    private: bool,
    progress: bool,
) -> ModelResult:
    name = found.name
    repo_id = f"{org}/{name}.{TAG}"
    out = work / f"{name}.{TAG}"
    recorded = state.models.get(name, {})
    if recorded.get("caffemodel_sha256") != found.sha256:
        recorded = {}  # a new caffemodel: nothing of an earlier run applies
    state.models[name] = recorded
    state.update(
        name,
        caffemodel=str(found.caffemodel),
        caffemodel_sha256=found.sha256,
        caffemodel_size=found.size,
        prototxt=str(found.prototxt) if found.prototxt else None,
        error=None,
    )
    weights, config_sha = recorded.get("weights_sha256"), recorded.get("config_sha256")
    reusable = (  # everything reused is hashed again: the weights and the config they were converted with
        recorded.get("verified")
        and weights
        and _file_sha256(out / WEIGHTS_FILE) == weights
        and _file_sha256(out / CONFIG_FILE) == config_sha
    )
    if not reusable:
        logger.info("%s: converting %s", name, found.caffemodel)
        state.update(name, verified=False, weights_sha256=None, published=None)
        report = convert(
            found.caffemodel, out, prototxt=found.prototxt, arch=name, verify=True, progress=progress, overwrite=True
        )
        if report.source_sha256 != found.sha256:
            raise RuntimeError(f"{found.caffemodel} changed while it was being released; run again")
        state.update(
            name,
            verified=report.verification is not None,
            weights_sha256=report.weights_sha256,
            weights_size=report.weights_bytes,
            max_rel=max(c["max_rel"] for c in report.verification["checks"]) if report.verification else None,
        )
    config = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    if val_dir is not None and recorded.get("measured_on") != str(val_dir):
        measured = evaluate_folder(out, val_dir, progress=progress)
        state.update(name, measured=measured, measured_on=str(val_dir))
    if recorded.get("measured"):
        config["senet_zoo"]["measured"] = recorded["measured"]
        write_text_atomic(out / CONFIG_FILE, json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    state.update(name, config_sha256=_file_sha256(out / CONFIG_FILE))
    write_card(out / CARD_FILE, config, repo_id)  # the card names the repository it is published to
    result = ModelResult(
        name,
        "verified",
        repo_id=repo_id,
        caffemodel=str(found.caffemodel),
        caffemodel_sha256=found.sha256,
        caffemodel_size=found.size,
        weights_sha256=recorded["weights_sha256"],
        weights_size=recorded["weights_size"],
        measured=recorded.get("measured"),
    )
    if dry_run:
        return result
    published = publish(
        out, repo_id, private=private, manifest_path=staging, name=name, tag=TAG, commit_message=_message(found)
    )
    if published.weights.sha256 != recorded["weights_sha256"]:
        raise RuntimeError(f"{out / WEIGHTS_FILE} changed while it was being published; run again with --resume")
    state.update(
        name,
        published={
            "repo_id": repo_id,
            "revision": published.revision,
            "sha256": published.weights.sha256,
            "size": published.weights.size,
        },
    )
    logger.info("%s: published %s@%s", name, repo_id, published.revision)
    return dataclasses.replace(result, status="published", revision=published.revision)


def _message(found: Found) -> str:
    return f"Add {found.name}.{TAG}: converted from {found.caffemodel.name} (sha256 {found.sha256})"


def _file_sha256(path: Path) -> str | None:
    return hash_file(path)[1] if path.is_file() and not path.is_symlink() else None


def evaluate_folder(
    folder: str | os.PathLike[str], val_dir: str | os.PathLike[str], *, batch_size: int = 50, progress: bool = False
) -> dict[str, Any]:
    """Top-1/top-5 (%) of a converted folder on ``val_dir`` (``val_dir/<WNID>/<image>``; any subset of the
    1000 classes), with the weights' own preprocessing (resize, centre crop, mean/std of ``config.json``)."""
    import torch
    from tqdm.auto import tqdm

    from ..convert.verify import load_converted
    from ..finetune.images import SafeImageFolder

    folder = Path(folder)
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    labels: list[str] = config["label_names"]
    dataset = SafeImageFolder(val_dir, transform=cfg_eval_transform(config["pretrained_cfg"]))  # links, bombs
    unknown = [c for c in dataset.classes if c not in labels]
    if unknown:
        raise ValueError(f"{val_dir}: class folders {unknown[:3]} are not ImageNet WNIDs of these weights")
    index = [labels.index(c) for c in dataset.classes]  # folder order → the model's (sorted-WNID) outputs
    dataset.target_transform = index.__getitem__
    model = load_converted(folder / WEIGHTS_FILE, config["senet_zoo"]["name"], config.get("model_args"))
    loader: torch.utils.data.DataLoader[Any] = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=0
    )
    top1 = top5 = count = 0
    with torch.inference_mode():
        for images, targets in tqdm(loader, desc=f"evaluating {folder.name}", disable=not progress):
            best = model(images).topk(5, dim=1).indices
            top1 += int((best[:, 0] == targets).sum())
            top5 += int((best == targets[:, None]).any(dim=1).sum())
            count += len(targets)
    return {
        "top1_acc": round(100.0 * top1 / count, 3),
        "top5_acc": round(100.0 * top5 / count, 3),
        "images": count,
        "classes": len(dataset.classes),
        "folder": Path(val_dir).name,
    }


# ------------------------------------------------------------------------------------------------ the manifest


def _write_manifest(
    target: Path, results: dict[str, ModelResult], state: _State, work: Path, dry_run: bool
) -> tuple[bool, str]:
    """Apply the run to a copy of ``target``; write it over ``target`` in one atomic replace (not in a dry run).

    Models published by an earlier run that this run did not touch are recorded too (from the state file).
    """
    before = target.read_text(encoding="utf-8")
    recorded: list[tuple[str, dict[str, Any]]] = []
    for name, entry in state.models.items():
        published = entry.get("published")
        result = results.get(name)
        if dry_run and result is not None and result.status == "verified":
            published = {
                "repo_id": result.repo_id,
                "revision": PLACEHOLDER_REVISION,
                "sha256": result.weights_sha256,
                "size": result.weights_size,
            }
        if published and entry.get("verified") and published.get("sha256") == entry.get("weights_sha256"):
            recorded.append((name, published))
    if not recorded:
        return False, ""
    if not dry_run:
        recorded = [(name, p) for name, p in recorded if _on_hub(name, p, results)]
    fd, scratch_name = tempfile.mkstemp(prefix=".manifest.", suffix=".json", dir=work)
    os.close(fd)
    scratch = Path(scratch_name)
    try:
        scratch.write_text(before, encoding="utf-8")
        for name, published in recorded:
            entry = state.models[name]
            record_published(
                scratch,
                name,
                TAG,
                repo_id=published["repo_id"],
                revision=published["revision"],
                filename=WEIGHTS_FILE,
                sha256=published["sha256"],
                size=published["size"],
                converter_version=_converter_version(),
                caffemodel_sha256=entry["caffemodel_sha256"],
                make_default=True,
            )
            raw = json.loads(scratch.read_text(encoding="utf-8"))["models"][name]["weights"][TAG]
            changes: dict[str, Any] = {"provenance": raw["provenance"]}
            changes["provenance"]["caffemodel"] = Path(entry["caffemodel"]).name
            if entry.get("prototxt"):
                changes["provenance"]["prototxt"] = Path(entry["prototxt"]).name
            if entry.get("measured") and raw["metrics"] is not None:
                changes["metrics"] = {**raw["metrics"], "measured": entry["measured"]}
            update_entry(scratch, name, TAG, changes)
        after = scratch.read_text(encoding="utf-8")
    finally:
        scratch.unlink(missing_ok=True)
    if dry_run:
        after = after.replace(PLACEHOLDER_REVISION, "<commit made by the upload>")
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), str(target), f"{target} (after release)"
        )
    )
    if dry_run or after == before:
        return False, diff
    write_text_atomic(target, after)
    logger.info("manifest %s: recorded %s", target, ", ".join(n for n, _ in recorded))
    return True, diff


def _converter_version() -> str:

    return str(CONVERTER_VERSION)


def _on_hub(name: str, published: dict[str, Any], results: dict[str, ModelResult]) -> bool:
    """Whether the recorded commit exists on the Hub and holds the recorded weights file."""
    from huggingface_hub import HfApi

    try:
        info = HfApi().model_info(published["repo_id"], revision=published["revision"], files_metadata=True)
    except Exception as err:  # any Hub error means the commit cannot be vouched for
        logger.error(
            "%s: %s@%s cannot be confirmed on the Hub (%s); not recorded",
            name,
            published["repo_id"],
            published["revision"],
            err,
        )
        _fail(results, name, redact(f"{published['repo_id']}@{published['revision']} not found on the Hub: {err}"))
        return False
    for sibling in info.siblings or []:
        if sibling.rfilename == WEIGHTS_FILE and sibling.lfs is not None and sibling.lfs.sha256 == published["sha256"]:
            return True
    _fail(results, name, f"{published['repo_id']}@{published['revision']} does not hold the published {WEIGHTS_FILE}")
    return False


def _fail(results: dict[str, ModelResult], name: str, error: str) -> None:
    """Mark ``name`` failed (also a model of an earlier run that this run was not asked to release)."""
    result = results.setdefault(name, ModelResult(name, "failed"))
    result.status, result.error = "failed", error


def summary_lines(report: ReleaseReport) -> Iterable[str]:
    """Human-readable lines describing ``report`` (what the command prints)."""
    for result in report.results.values():
        if result.status in ("published", "verified"):
            what = (
                f"published {result.repo_id}@{result.revision}"
                if result.status == "published"
                else "verified, not uploaded (dry run)"
            )
            measured = (
                f"; measured top-1 {result.measured['top1_acc']:.2f} top-5 {result.measured['top5_acc']:.2f}"
                if result.measured
                else ""
            )
            source = f"{result.caffemodel}, sha256 {result.caffemodel_sha256}, {result.caffemodel_size} bytes"
            yield f"{result.name}: {what} ({source}){measured}"
        else:
            yield f"{result.name}: {result.status.upper()}: {result.error}"
    for line in report.unidentified:
        yield f"not an SENet caffemodel: {line}"
