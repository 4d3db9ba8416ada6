#!/usr/bin/env python
"""Fault injection through the command line: every case is a ``senet-zoo`` process, judged as a user sees it.

Categories (issue 20): concurrent converts and finetunes into one output, hostile ``$SENET_ZOO_MANIFEST``
files, secrets through every logger and error path, tampered ``release-state.json``, image folders
with link loops, links out of the folder and decompression bombs, disk-full writes (``RLIMIT_FSIZE`` in
the child process), crafted weights (NaN, wrong rank, int8, overflowing outputs).

Every case runs with ``HF_TOKEN`` set to a secret, next to a tree of the user's own files (with links
into it planted in the inputs). Counted over all cases:

- tracebacks: ``Traceback (most recent call last)`` in any output;
- hangs: a case over its time limit (killed);
- deletions: a file of the user's tree changed or gone;
- secrets: a secret in any output or in any file a case wrote;
- unexpected: an exit status outside the case's expectation (0 for what must work; 1 or 2 for a refusal).

    python scripts/fault_inject.py [--only CATEGORY ...] [--time-limit 240]

Last line: ``cases=<n> tracebacks=<n> hangs=<n> deletions=<n> secrets=<n> unexpected=<n> seconds=<s>``.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECRETS = ("hf_FaultInjectSecretToken1234567", "p4ssw0rd-of-the-mirror")
TOKEN, PASSWORD = SECRETS
SMALL = json.dumps({"layers": [1, 1, 1, 1]})
FAIL = (1, 2)


@dataclass
class Case:
    category: str
    name: str
    args: list[str]
    expect: tuple[int, ...]
    env: dict[str, str] = field(default_factory=dict)
    fsize: int | None = None  # RLIMIT_FSIZE of the child, bytes
    must_say: str | None = None  # a text the output must hold (the clear message)
    logs_traceback: bool = False  # the case logs a traceback on purpose (to see it redacted)


@dataclass
class Outcome:
    case: Case
    rc: int | None
    output: str
    seconds: float


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "senet_zoo.cli", *args]


def _run(case: Case, cwd: Path, time_limit: float) -> Outcome:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_TOKEN": TOKEN, **case.env}
    env["HF_HOME"] = str(cwd / "hf-home")

    def limits() -> None:
        if case.fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))

    start = time.perf_counter()
    try:
        proc = subprocess.run(
            case.args,
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=time_limit,
            preexec_fn=limits,
        )
        return Outcome(case, proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start)
    except subprocess.TimeoutExpired as err:
        text = (err.stdout or b"").decode(errors="replace") + (err.stderr or b"").decode(errors="replace")
        return Outcome(case, None, text, time.perf_counter() - start)


def _run_parallel(cases: Sequence[Case], cwd: Path, time_limit: float) -> list[Outcome]:
    """Start ``cases`` at once (concurrent runs into one output) and wait for all."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_TOKEN": TOKEN}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(c.args, cwd=cwd, env={**env, **c.env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for c in cases
    ]
    outcomes = []
    for case, proc in zip(cases, procs):
        try:
            out, _ = proc.communicate(timeout=max(1.0, time_limit - (time.perf_counter() - start)))
            outcomes.append(Outcome(case, proc.returncode, out.decode(errors="replace"), time.perf_counter() - start))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            outcomes.append(Outcome(case, None, out.decode(errors="replace"), time.perf_counter() - start))
    return outcomes


# ------------------------------------------------------------------------------------------- fixtures


def _user_tree(root: Path) -> dict[Path, str]:
    """Files that belong to the user: planted links in the inputs point at them; none may change."""
    files = {}
    for i in range(3):
        path = root / "precious" / f"notes{i}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"the user's file {i}\n")
    for i in range(3):
        from PIL import Image

        path = root / "precious" / "photos" / f"{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (12, 12), (10 * i, 100, 200)).save(path)
    for path in sorted((root / "precious").rglob("*")):
        if path.is_file():
            files[path] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _png(path: Path, size: int = 16, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)
    return path


def _png_claiming(path: Path, width: int, height: int) -> Path:
    import struct
    import zlib

    _png(path, 8)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


def _colour_folder(root: Path, per_class: int) -> Path:
    for split in ("train", "val"):
        for c, colour in enumerate(((220, 20, 20), (20, 220, 20))):
            for i in range(per_class):
                _png(root / split / f"c{c}" / f"{i}.png", 16, colour)
    return root


def _hostile_folder(root: Path, precious: Path) -> Path:
    data = _colour_folder(root, 3)
    for split in ("train", "val"):
        c0, c1 = data / split / "c0", data / split / "c1"
        (c0 / "loop").symlink_to("..")
        (c0 / "loop2").symlink_to("../..")
        (c1 / "outside").symlink_to(precious / "photos")
        (c1 / "one.png").symlink_to(precious / "photos" / "0.png")
        _png_claiming(c0 / "bomb.png", 30000, 30000)
        _png_claiming(c1 / "large.png", 11000, 11000)
        cut = _png(c1 / "cut.png", 64)
        cut.write_bytes(cut.read_bytes()[:60])
        (c0 / "notes.png").write_text("not an image")
    return data


def _weights(folder: Path) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    import senet_zoo

    model = senet_zoo.create_model("se_resnet50", num_classes=2, **json.loads(SMALL))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    first = next(iter(state))
    fc = f"{model.pretrained_cfg['classifier']}.weight"
    overflow = {**state, fc: torch.full_like(state[fc], 3e38)}
    overflow[fc][1] = -3e38
    variants = {
        "good": state,
        "nan": {**state, first: torch.full_like(state[first], float("nan"))},
        "rank": {**state, first: torch.zeros(state[first].shape[0])},
        "int8": {**state, first: state[first].to(torch.int8)},
        "overflow": overflow,
    }
    paths = {}
    for name, tensors in variants.items():
        paths[name] = folder / f"{name}.safetensors"
        save_file(tensors, str(paths[name]))
    return paths


def _caffemodel(folder: Path) -> Path:
    from senet_zoo.caffe.synth import synth_net
    from senet_zoo.caffe.writer import write_caffemodel

    path = folder / "se_resnet50.caffemodel"
    write_caffemodel(synth_net("se_resnet50", layers=(1, 1, 1, 1), seed=0), path)
    return path


def _manifests(folder: Path, precious: Path) -> dict[str, Path]:
    good = json.loads((REPO / "weights_manifest.json").read_text())
    folder.mkdir(parents=True)
    out = {}
    out["non-utf8"] = folder / "latin1.json"
    out["non-utf8"].write_bytes(b'{"description": "caf\xe9"}')
    out["deep"] = folder / "deep.json"
    out["deep"].write_text("[" * 200_000 + "]" * 200_000)
    out["fifo"] = folder / "fifo.json"
    os.mkfifo(out["fifo"])
    out["dev-zero"] = folder / "zero.json"
    out["dev-zero"].symlink_to("/dev/zero")
    out["duplicate-keys"] = folder / "dup.json"
    out["duplicate-keys"].write_text('{"schema_version": 1, "schema_version": 1, "models": {}}')
    out["digits"] = folder / "digits.json"
    out["digits"].write_text('{"schema_version": ' + "9" * 5000 + "}")
    huge = json.loads(json.dumps(good))
    entry = next(e for m in huge["models"].values() for e in m["weights"].values() if e["status"] == "published")
    entry["size"] = 2**80
    out["size-2**80"] = folder / "huge.json"
    out["size-2**80"].write_text(json.dumps(huge))
    mirror = json.loads(json.dumps(good))
    entry = mirror["models"]["se_resnet50"]["weights"]["cadene_in1k"]
    entry["sources"] = [{"type": "url", "url": f"http://mirror-user:{PASSWORD}@127.0.0.1:9/se.pth"}]
    out["mirror-with-password"] = folder / "mirror.json"
    out["mirror-with-password"].write_text(json.dumps(mirror))
    out["link-to-user-file"] = folder / "link.json"
    out["link-to-user-file"].symlink_to(precious / "notes0.txt")
    return out


# ------------------------------------------------------------------------------------------- the cases


def _release_state(work: Path, models: dict) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    (work / "release-state.json").write_text(json.dumps({"version": 1, "org": "zoo", "models": models}))
    return work


_LOGGERS_CODE = """
import importlib, logging, pkgutil, sys
import senet_zoo
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
names = set()
for info in pkgutil.walk_packages(senet_zoo.__path__, "senet_zoo."):
    module = importlib.import_module(info.name)
    for value in vars(module).values():
        if isinstance(value, logging.Logger) and value.name.startswith("senet_zoo"):
            names.add(value.name)
for name in sorted(names | {"senet_zoo"}):
    try:
        raise RuntimeError("echo: Authorization: Bearer %s")
    except RuntimeError:
        logging.getLogger(name).error("GET https://u:%s@mirror.example/x", exc_info=True)
print(len(names), "loggers")
"""

_RELEASE_HUB_ERROR_CODE = """
import huggingface_hub, json, sys
from senet_zoo.release.pipeline import release, summary_lines
def model_info(self, *a, **k):
    raise RuntimeError("500; request headers: {'authorization': 'Bearer %s'}")
huggingface_hub.HfApi.model_info = model_info
report = release(sys.argv[1], "zoo", only=["se_resnet50"], resume=True, work_dir=sys.argv[2], manifest_path=sys.argv[3])
print("\\n".join(summary_lines(report)))
"""


Runners = Iterator[tuple[str, Callable[[float], list[Outcome]]]]


@dataclass
class Inputs:
    """What the cases share: the work folder, the user's files and the prepared inputs."""

    tmp: Path
    precious: Path
    inputs: Path
    weights: dict[str, Path]
    manifest_copy: Path
    caffemodel: Path
    colours: Path
    model_args: list[str] = field(default_factory=lambda: ["--model", "se_resnet50", "--model-kwargs", SMALL])

    def single(self, case: Case) -> Callable[[float], list[Outcome]]:
        return lambda limit: [_run(case, self.tmp, limit)]


def build_cases(tmp: Path, precious: Path) -> Runners:
    """(category, runner) pairs; a runner returns the outcomes of its case(s)."""
    inputs = tmp / "inputs"
    inputs.mkdir()
    manifest_copy = inputs / "weights_manifest.json"
    manifest_copy.write_bytes((REPO / "weights_manifest.json").read_bytes())
    ctx = Inputs(
        tmp,
        precious,
        inputs,
        _weights(inputs),
        manifest_copy,
        _caffemodel(inputs),
        _colour_folder(inputs / "colours", 4),
    )
    yield from _concurrent_cases(ctx)
    yield from _hostile_input_cases(ctx)
    yield from _file_cases(ctx)


def _unpack(ctx: Inputs) -> tuple:
    return (ctx.tmp, ctx.precious, ctx.inputs, ctx.weights, ctx.manifest_copy, ctx.caffemodel, ctx.colours)


def _concurrent_cases(ctx: Inputs) -> Runners:
    """Concurrent runs into one output."""
    tmp, precious, inputs, weights, manifest_copy, caffemodel, colours = _unpack(ctx)
    model_args = ctx.model_args
    # concurrent runs into one output

    def converts(limit: float) -> list[Outcome]:
        out = tmp / "converted"
        cases = [
            Case(
                "concurrent",
                f"convert #{i}",
                _cli("convert", "--caffemodel", str(caffemodel), "--out", str(out), "--quiet"),
                (0, 1, 2),
            )
            for i in range(3)
        ]
        outcomes = _run_parallel(cases, tmp, limit)
        ok = [o for o in outcomes if o.rc == 0]
        names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        if len(ok) != 1 or names != ["README.md", "config.json", "model.safetensors"]:
            outcomes[0].rc = -1  # exactly one conversion wins, and its folder holds only its files
        return outcomes

    yield "concurrent", converts

    def appears_while_converting(limit: float) -> list[Outcome]:
        out = tmp / "appears"
        case = Case(
            "concurrent",
            "--out created meanwhile",
            _cli("convert", "--caffemodel", str(caffemodel), "--out", str(out), "--quiet"),
            FAIL,
            must_say="appeared while converting",
        )
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_TOKEN": TOKEN}
        start = time.perf_counter()
        proc = subprocess.Popen(case.args, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        while proc.poll() is None and not any(p.name.startswith(".appears.") for p in tmp.iterdir()):
            time.sleep(0.005)
        (out / "mine").mkdir(parents=True, exist_ok=True)
        (out / "mine" / "diary.txt").write_text("the user's\n")
        try:
            text, _ = proc.communicate(timeout=limit)
            rc: int | None = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            text, _ = proc.communicate()
            rc = None
        if not (out / "mine" / "diary.txt").is_file():
            rc = -1
        return [Outcome(case, rc, text.decode(errors="replace"), time.perf_counter() - start)]

    yield "concurrent", appears_while_converting

    def finetunes(limit: float) -> list[Outcome]:
        out = tmp / "run"
        args = ["finetune", *model_args, "--pretrained", "none", "--data", str(colours), "--out", str(out)]
        args += [
            "--img-size",
            "32",
            "--workers",
            "0",
            "--threads",
            "1",
            "--epochs",
            "2",
            "--no-progress",
            "--batch-size",
            "4",
        ]
        cases = [Case("concurrent", f"finetune #{i}", _cli(*args), (0, 1, 2)) for i in range(2)]
        outcomes = _run_parallel(cases, tmp, limit)
        ok = [o for o in outcomes if o.rc == 0]
        state = json.loads((out / "state.json").read_text()) if (out / "state.json").is_file() else {}
        if len(ok) != 1 or state.get("epoch") != 2:
            outcomes[0].rc = -1  # exactly one run wins and the folder is that run's, complete
        return outcomes

    yield "concurrent", finetunes


def _hostile_input_cases(ctx: Inputs) -> Runners:
    """Hostile manifests, secrets through every logger, tampered release state."""
    tmp, precious, inputs, weights, manifest_copy, caffemodel, colours = _unpack(ctx)
    single = ctx.single
    # hostile manifests
    for name, path in _manifests(inputs / "manifests", precious).items():
        env = {"SENET_ZOO_MANIFEST": str(path)}
        yield "manifest", single(Case("manifest", f"list with {name}", _cli("list"), (0,), env))
        if name in ("fifo", "dev-zero", "deep"):
            yield "manifest", single(Case("manifest", f"--help with {name}", _cli("--help"), (0,), env))
            yield "manifest", single(Case("manifest", f"--version with {name}", _cli("--version"), (0,), env))
        if name in ("mirror-with-password", "size-2**80", "fifo"):
            yield (
                "manifest",
                single(
                    Case(
                        "manifest",
                        f"fetch with {name}",
                        _cli("fetch", "se_resnet50.cadene_in1k"),
                        FAIL,
                        {**env, "SENET_ZOO_DOWNLOAD_RETRIES": "0"},
                    )
                ),
            )

    # secrets through every logger and error path
    yield (
        "secrets",
        single(
            Case(
                "secrets", "every package logger", _python(_LOGGERS_CODE % (TOKEN, PASSWORD)), (0,), logs_traceback=True
            )
        ),
    )
    src = inputs / "release-src"
    src.mkdir()
    published = {
        "caffemodel": "x.caffemodel",
        "caffemodel_sha256": "a" * 64,
        "verified": True,
        "weights_sha256": "b" * 64,
        "published": {"repo_id": "zoo/se_resnet50.caffe_in1k", "revision": "c" * 40, "sha256": "b" * 64, "size": 9},
    }
    work = _release_state(tmp / "release-hub-error", {"se_resnet50": published})
    code = _RELEASE_HUB_ERROR_CODE % TOKEN
    yield (
        "secrets",
        single(
            Case(
                "secrets", "release --resume Hub check", [*_python(code), str(src), str(work), str(manifest_copy)], (0,)
            )
        ),
    )

    # tampered release state
    tampered = {
        "entry 'x'": "x",
        "entry []": [],
        "repository outside --org": {
            **published,
            "published": {**published["published"], "repo_id": "evil/se_resnet50.caffe_in1k"},
        },
        "published not an object": {**published, "published": "yes"},
        "bad sha256": {**published, "weights_sha256": "../../etc"},
        "unknown model": None,
    }
    for i, (name, entry) in enumerate(tampered.items()):
        models = {"not_a_model": {}} if entry is None else {"se_resnet50": entry}
        work = _release_state(tmp / f"release-{i}", models)
        args = _cli(
            "release",
            str(src),
            "--org",
            "zoo",
            "--resume",
            "--work-dir",
            str(work),
            "--manifest",
            str(manifest_copy),
            "--only",
            "se_resnet50",
        )
        yield "release-state", single(Case("release-state", name, args, FAIL, must_say="release-state.json"))


def _file_cases(ctx: Inputs) -> Runners:
    """Image folders, disk-full writes, crafted weights."""
    tmp, precious, inputs, weights, manifest_copy, caffemodel, colours = _unpack(ctx)
    model_args, single = ctx.model_args, ctx.single
    # image folders: loops, links out, bombs, truncated files
    hostile = _hostile_folder(inputs / "hostile", precious)
    evaluate = [
        "evaluate",
        *model_args,
        "--weights",
        str(weights["good"]),
        "--img-size",
        "32",
        "--workers",
        "0",
        "--threads",
        "1",
    ]
    yield (
        "images",
        single(
            Case(
                "images",
                "evaluate, skipping",
                _cli(*evaluate, "--data", str(hostile / "val")),
                (0,),
                must_say="skipped",
            )
        ),
    )
    yield (
        "images",
        single(
            Case(
                "images",
                "evaluate --strict",
                _cli(*evaluate, "--data", str(hostile / "val"), "--strict"),
                FAIL,
                must_say="without --strict",
            )
        ),
    )
    train = [
        "finetune",
        *model_args,
        "--pretrained",
        "none",
        "--img-size",
        "32",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
        "--batch-size",
        "5",
    ]
    yield (
        "images",
        single(
            Case(
                "images",
                "finetune, skipping (last batch of one)",
                _cli(*train, "--data", str(hostile), "--out", str(tmp / "hostile-run")),
                (0,),
            )
        ),
    )
    excitations = [
        "excitations",
        *model_args,
        "--weights",
        str(weights["good"]),
        "--img-size",
        "32",
        "--workers",
        "0",
        "--threads",
        "1",
    ]
    yield (
        "images",
        single(
            Case(
                "images",
                "excitations, skipping",
                _cli(*excitations, "--data", str(hostile / "val"), "--out", str(tmp / "exc")),
                (0,),
            )
        ),
    )

    from senet_zoo.convert import convert

    exportable = tmp / "inputs" / "converted-for-export"
    convert(caffemodel, exportable, verify=False, progress=False)
    # disk full: RLIMIT_FSIZE in the child
    yield (
        "disk-full",
        single(
            Case(
                "disk-full",
                "convert",
                _cli("convert", "--caffemodel", str(caffemodel), "--out", str(tmp / "full-convert"), "--quiet"),
                FAIL,
                fsize=200_000,
                must_say="File too large",
            )
        ),
    )
    ft = [
        "finetune",
        *model_args,
        "--pretrained",
        "none",
        "--data",
        str(colours),
        "--img-size",
        "32",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-progress",
        "--batch-size",
        "4",
    ]
    yield (
        "disk-full",
        single(
            Case(
                "disk-full",
                "finetune checkpoint",
                _cli(*ft, "--out", str(tmp / "full-run")),
                FAIL,
                fsize=300_000,
                must_say="File too large",
            )
        ),
    )
    yield (
        "disk-full",
        single(
            Case(
                "disk-full",
                "export",
                _cli("export", str(exportable), "--out", str(tmp / "full.onnx")),
                FAIL,
                fsize=1_000_000,
                must_say="full.onnx",
            )
        ),
    )
    (tmp / "existing-folder").mkdir()
    yield (
        "disk-full",
        single(
            Case(
                "disk-full",
                "export onto a folder",
                _cli("export", str(exportable), "--out", str(tmp / "existing-folder")),
                FAIL,
                must_say="existing-folder",
            )
        ),
    )

    # crafted weights
    for name in ("nan", "rank", "int8"):
        path = str(weights[name])
        yield (
            "weights",
            single(
                Case(
                    "weights",
                    f"evaluate {name}",
                    _cli(*evaluate, "--weights", path, "--data", str(colours / "val")),
                    FAIL,
                    must_say=path,
                )
            ),
        )
        yield (
            "weights",
            single(
                Case(
                    "weights",
                    f"finetune --pretrained {name}",
                    _cli(*ft, "--pretrained", path, "--out", str(tmp / f"ft-{name}")),
                    FAIL,
                    must_say=path,
                )
            ),
        )
    yield (
        "weights",
        single(
            Case(
                "weights",
                "evaluate overflow (nan loss)",
                _cli(
                    *evaluate, "--weights", str(weights["overflow"]), "--data", str(colours / "val"), "--allow-mismatch"
                ),
                FAIL,
                must_say="loss",
            )
        ),
    )
    yield (
        "weights",
        single(
            Case(
                "weights",
                "excitations nan",
                _cli(
                    *excitations,
                    "--weights",
                    str(weights["nan"]),
                    "--data",
                    str(colours / "val"),
                    "--out",
                    str(tmp / "exc-nan"),
                ),
                FAIL,
                must_say=str(weights["nan"]),
            )
        ),
    )


# ------------------------------------------------------------------------------------------- judging


def _secret_files(root: Path, skip: tuple[Path, ...]) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if any(s in path.parents for s in skip) or path.is_symlink() or not path.is_file():
            continue
        try:
            with path.open("rb") as fh:
                data = fh.read(64 << 20)
        except OSError:
            continue
        if any(s.encode() in data for s in SECRETS):
            found.append(path)
    return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", help="categories to run (default: all)")
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--verbose", action="store_true", help="print each case's output tail")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.path.insert(0, str(REPO))
    counts: collections.Counter = collections.Counter()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="senet-zoo-faults-") as name:
        tmp = Path(name)
        user = tmp / "user"
        precious = _user_tree(user)
        for category, runner in build_cases(tmp, user / "precious"):
            if args.only and category not in args.only:
                continue
            for outcome in runner(args.time_limit):
                case, text = outcome.case, outcome.output
                problems = []
                if "Traceback (most recent call last)" in text and not case.logs_traceback:
                    problems.append("traceback")
                if outcome.rc is None:
                    problems.append("hang")
                elif outcome.rc not in case.expect:
                    problems.append(f"exit {outcome.rc}")
                if any(s in text for s in SECRETS):
                    problems.append("secret")
                if case.must_say and outcome.rc is not None and case.must_say not in text:
                    problems.append(f"no {case.must_say!r}")
                counts["cases"] += 1
                counts["tracebacks"] += "traceback" in problems
                counts["hangs"] += "hang" in problems
                counts["secrets"] += "secret" in problems
                counts["unexpected"] += any(p.startswith(("exit", "no ")) for p in problems)
                last = next((line for line in reversed(text.strip().splitlines()) if line.strip()), "")
                print(
                    f"{category:<13} {case.name:<40} rc={outcome.rc!s:<4} {outcome.seconds:5.1f}s "
                    f"{'OK' if not problems else 'PROBLEM: ' + ', '.join(problems)}  | {last[:110]}",
                    flush=True,
                )
                if args.verbose or problems:
                    print("    " + "\n    ".join(text.strip().splitlines()[-12:]))
        gone = [
            p
            for p, digest in precious.items()
            if not p.is_file() or hashlib.sha256(p.read_bytes()).hexdigest() != digest
        ]
        counts["deletions"] = len(gone)
        for path in gone:
            print(f"DELETED OR CHANGED: {path}")
        leaked = _secret_files(tmp, (user, tmp / "inputs"))  # the inputs hold secrets on purpose
        counts["secrets"] += len(leaked)
        for path in leaked:
            print(f"SECRET IN FILE: {path}")
    seconds = time.perf_counter() - start
    print(
        f"cases={counts['cases']} tracebacks={counts['tracebacks']} hangs={counts['hangs']} "
        f"deletions={counts['deletions']} secrets={counts['secrets']} unexpected={counts['unexpected']} "
        f"seconds={seconds:.0f}"
    )
    bad = counts["tracebacks"] + counts["hangs"] + counts["deletions"] + counts["secrets"] + counts["unexpected"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
