"""Issue 20: nothing deleted that senet-zoo did not write, no secret shown, no input that breaks the CLI.

One test (or a few) per finding of the issue, numbered as there; each fails without the fix.
"""

from __future__ import annotations

import errno
import importlib
import json
import logging
import os
import pkgutil
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from support.convert_helpers import caffemodel, listing

import senet_zoo
from senet_zoo.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2-very-secret"
TOKEN = "hf_abcdefghijklmnopqrstuvwxyz0123"
SMALL = {"layers": [1, 1, 1, 1]}
DEADLINE_S = 900  # a bound against a hang, generous enough for a machine shared by many busy processes


def _python(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in a fresh process importing this checkout's senet_zoo, ``env`` added; output captured."""
    return subprocess.run(
        [sys.executable, *args],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=DEADLINE_S,
    )


def _manifest_copy(tmp_path: Path) -> Path:
    target = tmp_path / "weights_manifest.json"
    target.write_bytes((REPO_ROOT / "weights_manifest.json").read_bytes())
    return target


def _png(path: Path, size: int = 8, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)
    return path


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A small valid PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's header)."""
    _png(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", width, height)
    data[ihdr + 13 : ihdr + 17] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : ihdr + 13])))
    path.write_bytes(bytes(data))
    return path


def _colour_folder(root: Path, per_class: int = 4) -> Path:
    for split in ("train", "val"):
        for c, colour in enumerate(((220, 20, 20), (20, 220, 20))):
            for i in range(per_class):
                _png(root / split / f"c{c}" / f"{i}.png", 16, colour)
    return root


# ------------------------------------------------------------------------------ 2. secrets in any output


def _package_loggers() -> list[logging.Logger]:
    found = {}
    for info in pkgutil.walk_packages(senet_zoo.__path__, "senet_zoo."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, logging.Logger) and value.name.startswith("senet_zoo"):
                found[value.name] = value
    return [logging.getLogger("senet_zoo"), *found.values()]


def test_2_every_package_logger_redacts_secrets(monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    loggers = _package_loggers()
    assert len(loggers) > 10
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        for logger in loggers:
            try:
                raise RuntimeError(f"server said: Authorization: Bearer {TOKEN}")
            except RuntimeError:
                logger.warning("fetching https://user:%s@mirror.example/x (%s)", SECRET, TOKEN, exc_info=True)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert len(records) == len(loggers)
    leaked = [r for r in records if SECRET in r or TOKEN in r]
    assert not leaked, leaked[0]


def test_2_manifest_objects_do_not_show_url_credentials() -> None:
    from senet_zoo.hub.manifest import Source, load_manifest

    source = Source("url", url=f"https://bob:{SECRET}@mirror.example/se.safetensors")
    assert SECRET not in repr(source) and SECRET not in str(source) and "mirror.example" in repr(source)
    entry = next(load_manifest().entries())
    import dataclasses

    with_mirror = dataclasses.replace(entry, sources=(source,))
    assert SECRET not in repr(with_mirror) and SECRET not in str(with_mirror)


def test_2_release_resume_hub_check_error_is_redacted(tmp_path, monkeypatch, caplog) -> None:
    """The Hub check of recorded commits may echo the request's Authorization header."""
    import huggingface_hub

    from senet_zoo.release.pipeline import STATE_FILE, release

    monkeypatch.setenv("HF_TOKEN", TOKEN)

    def model_info(self, *args, **kwargs):
        raise RuntimeError(f"500 from the Hub; request headers: {{'authorization': 'Bearer {TOKEN}'}}")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "src").mkdir()
    state = {
        "caffemodel": "x.caffemodel",
        "caffemodel_sha256": "a" * 64,
        "caffemodel_size": 10,
        "verified": True,
        "weights_sha256": "b" * 64,
        "weights_size": 10,
        "published": {"repo_id": "zoo/se_resnet50.caffe_in1k", "revision": "c" * 40, "sha256": "b" * 64, "size": 10},
    }
    (work / STATE_FILE).write_text(json.dumps({"version": 1, "org": "zoo", "models": {"se_resnet50": state}}))
    with caplog.at_level(logging.INFO):
        report = release(
            tmp_path / "src",
            "zoo",
            only=["se_resnet50"],
            resume=True,
            work_dir=work,
            manifest_path=_manifest_copy(tmp_path),
        )
    assert report.results["se_resnet50"].status == "failed"
    assert TOKEN not in report.results["se_resnet50"].error
    assert TOKEN not in caplog.text and "cannot be confirmed" in caplog.text


# ------------------------------------------------------------------------------ 3. convert --out D while it runs


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    return caffemodel(tmp_path, "se_resnet50", seed=1, package_writer=True)


def test_3_a_folder_created_at_out_while_converting_is_never_replaced(tmp_path, good, monkeypatch) -> None:
    from senet_zoo.convert import ConversionError, convert, converter

    out = tmp_path / "out"
    original = converter.write_card

    def write_card(*args, **kwargs):  # meanwhile, someone else creates --out
        (out / "theirs").mkdir(parents=True)
        (out / "theirs" / "notes.txt").write_text("precious")
        return original(*args, **kwargs)

    monkeypatch.setattr(converter, "write_card", write_card)
    with pytest.raises(ConversionError, match="appeared while converting"):
        convert(good, out, verify=False, progress=False)
    assert (out / "theirs" / "notes.txt").read_text() == "precious"
    assert listing(tmp_path) == ["out", "se_resnet50.caffemodel"]  # no work folder left


def test_3_a_second_convert_into_the_same_out_fails_clearly(tmp_path, good, monkeypatch) -> None:
    from senet_zoo.convert import convert, converter

    out = tmp_path / "out"
    inside, release_first = threading.Event(), threading.Event()
    original = converter.write_card

    def write_card(*args, **kwargs):
        inside.set()
        release_first.wait(DEADLINE_S)
        return original(*args, **kwargs)

    monkeypatch.setattr(converter, "write_card", write_card)
    errors: list[BaseException] = []

    def first() -> None:
        try:
            convert(good, out, verify=False, progress=False)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert inside.wait(DEADLINE_S)
        monkeypatch.setattr(converter, "write_card", original)
        with pytest.raises(OSError, match="another senet-zoo convert is writing there"):
            convert(good, out, verify=False, progress=False, overwrite=True)
    finally:
        release_first.set()
        thread.join(DEADLINE_S)
    assert not errors and sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]


# ------------------------------------------------------------------------------ 4. a hostile $SENET_ZOO_MANIFEST


def _hostile_manifests(tmp_path: Path) -> dict[str, Path]:
    """Files that are manifests in name only (the FIFO and the device are :func:`_special_manifests`)."""
    good = json.loads((REPO_ROOT / "weights_manifest.json").read_text())
    cases = {}
    cases["non-utf8"] = tmp_path / "latin1.json"
    cases["non-utf8"].write_bytes(b'{"description": "caf\xe9"}')
    cases["deep"] = tmp_path / "deep.json"
    cases["deep"].write_text("[" * 100_000 + "]" * 100_000)
    cases["duplicate"] = tmp_path / "dup.json"
    cases["duplicate"].write_text('{"schema_version": 1, "schema_version": 1, "models": {}}')
    huge = json.loads(json.dumps(good))
    entry = next(e for m in huge["models"].values() for e in m["weights"].values() if e["status"] == "published")
    entry["size"] = 2**80  # was accepted, and became the download limit
    cases["size 2**80"] = tmp_path / "huge.json"
    cases["size 2**80"].write_text(json.dumps(huge))
    cases["digits"] = tmp_path / "digits.json"
    cases["digits"].write_text('{"schema_version": ' + "9" * 5000 + "}")
    return cases


def _special_manifests(tmp_path: Path) -> dict[str, Path]:
    """A FIFO (reading it waited for ever) and a link to /dev/zero (read without limit): only ever read in a
    subprocess with a deadline, so that a regression cannot hang the suite."""
    fifo, zero = tmp_path / "fifo.json", tmp_path / "zero.json"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    return {"fifo": fifo, "device": zero}


def test_4_hostile_manifests_are_one_line_errors_naming_the_file(tmp_path) -> None:
    from senet_zoo.hub.manifest import ManifestError, load_manifest

    for case, path in _hostile_manifests(tmp_path).items():
        with pytest.raises(ManifestError) as info:
            load_manifest(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message and len(message) < 400, (case, message)


@pytest.mark.slow  # subprocesses or full conversions: 30-200 s on a loaded machine
def test_4_help_and_list_work_with_a_fifo_or_device_as_manifest(tmp_path) -> None:
    for case, path in _special_manifests(tmp_path).items():
        for args in (["--help"], ["list"]):
            proc = _python("-m", "senet_zoo.cli", *args, SENET_ZOO_MANIFEST=str(path))
            assert proc.returncode == 0 and "Traceback" not in proc.stderr, (case, args, proc.stderr[-2000:])
        assert "se_resnet50" in proc.stdout and str(path) in proc.stderr


def test_4_list_and_version_in_process(tmp_path, monkeypatch, capsys) -> None:
    for case, path in _hostile_manifests(tmp_path).items():
        monkeypatch.setenv("SENET_ZOO_MANIFEST", str(path))
        assert main(["list"]) == 0, case
        assert "se_resnext50_32x4d" in capsys.readouterr().out
        with pytest.raises(SystemExit) as info:
            main(["--version"])
        assert info.value.code == 0


# ------------------------------------------------------------------------------ 5. two finetunes into one --out


def test_5_a_second_finetune_into_the_same_out_fails(tmp_path, one_thread) -> None:
    from senet_zoo.finetune import TrainConfig, Trainer, image_folder_datasets

    data = _colour_folder(tmp_path / "data")
    model = senet_zoo.create_model("se_resnet50", num_classes=2, **SMALL)
    train, val, _ = image_folder_datasets(data, model, 32, "none", pretrained=False)
    config = TrainConfig(epochs=1, batch_size=4, num_workers=0, threads=1, progress=False, device="cpu")
    out = tmp_path / "run"
    inside, release_first = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    class Blocking(torch.utils.data.Dataset):  # run A is held inside its first batch
        def __init__(self, inner):
            self.inner, self.classes, self.data_config = inner, inner.classes, inner.data_config
            self.augmentation = inner.augmentation

        def __len__(self):
            return len(self.inner)

        def __getitem__(self, i):
            inside.set()
            release_first.wait(DEADLINE_S)
            return self.inner[i]

    def run_a() -> None:
        try:
            Trainer(model, Blocking(train), val, out_dir=out, num_classes=2, config=config).fit()
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    thread = threading.Thread(target=run_a)
    thread.start()
    try:
        assert inside.wait(DEADLINE_S)
        other = senet_zoo.create_model("se_resnet50", num_classes=2, **SMALL)
        with pytest.raises(OSError, match="another senet-zoo finetune is writing there"):
            Trainer(other, train, val, out_dir=out, num_classes=2, config=config).fit()
        assert not out.exists() or not (out / "state.json").exists()
    finally:
        release_first.set()
        thread.join(DEADLINE_S)
    assert not errors and (out / "state.json").is_file()


# ------------------------------------------------------------------------------ 6. links in image folders


def test_6_links_out_of_the_root_and_loops_are_not_followed(tmp_path) -> None:
    from senet_zoo.finetune.data import image_folder

    data = _colour_folder(tmp_path / "data", per_class=3)
    outside = tmp_path / "elsewhere"
    for i in range(5):
        _png(outside / f"{i}.png")
    (data / "train" / "c0" / "loop").symlink_to("..")
    (data / "train" / "c1" / "away").symlink_to(outside)
    (data / "train" / "c1" / "one.png").symlink_to(outside / "0.png")
    folder = image_folder(data / "train")
    assert len(folder) == 6
    assert all(str(data / "train") in path for path, _ in folder.samples)
    assert len(folder.skipped) == 3


@pytest.mark.slow  # subprocesses or full conversions: 30-200 s on a loaded machine
def test_6_two_loops_end_quickly(tmp_path) -> None:
    """With two loop links the walk grew exponentially (2.3 M paths in 15 s): it runs in a subprocess
    with a deadline so that the suite cannot hang on it."""
    data = _colour_folder(tmp_path / "data", per_class=2)
    (data / "train" / "c0" / "a").symlink_to("..")
    (data / "train" / "c0" / "b").symlink_to("../..")
    code = (
        "import sys; from senet_zoo.finetune.data import image_folder; "
        f"f = image_folder({str(data / 'train')!r}); print(len(f), len(f.skipped))"
    )
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["4", "2"]


# ------------------------------------------------------------------------------ 7 and 8. crafted inputs


def _write_state(work: Path, models: dict) -> None:
    from senet_zoo.release.pipeline import STATE_FILE

    work.mkdir(parents=True, exist_ok=True)
    (work / STATE_FILE).write_text(json.dumps({"version": 1, "org": "zoo", "models": models}))


def _resume_release(tmp_path: Path) -> None:
    """``release --resume`` of se_resnet50 into org ``zoo`` from the state :func:`_write_state` wrote."""
    from senet_zoo.release.pipeline import release

    (tmp_path / "src").mkdir()
    release(
        tmp_path / "src",
        "zoo",
        only=["se_resnet50"],
        resume=True,
        work_dir=tmp_path / "work",
        manifest_path=_manifest_copy(tmp_path),
    )


@pytest.mark.parametrize("entry", ["x", [], {"published": "yes"}, {"verified": "no"}, {"weights_sha256": 5}])
def test_7_malformed_release_state_is_a_one_line_error(tmp_path, entry) -> None:
    from senet_zoo.release.pipeline import ReleaseError

    _write_state(tmp_path / "work", {"se_resnet50": entry})
    with pytest.raises(ReleaseError, match=r"release-state\.json: model 'se_resnet50'"):
        _resume_release(tmp_path)


def test_7_8_bombs_and_broken_images_are_skipped_or_refused(tmp_path) -> None:
    from senet_zoo.finetune.data import image_folder

    data = _colour_folder(tmp_path / "data", per_class=3)
    train = data / "train"
    _png_claiming(train / "c0" / "bomb.png", 30000, 30000)  # over PIL's own limit
    _png_claiming(train / "c1" / "large.png", 11000, 11000)  # under PIL's limit, 1.8 GB decoded
    cut = _png(train / "c1" / "cut.png", 64)
    cut.write_bytes(cut.read_bytes()[:60])  # "image file is truncated"
    (train / "c0" / "notes.png").write_text("not an image")
    pixels = Image.MAX_IMAGE_PIXELS
    folder = image_folder(train)
    assert Image.MAX_IMAGE_PIXELS == pixels  # no process-wide side effect
    assert len(folder) == 6 and len(folder.skipped) == 4
    assert {Path(p).name for p, _ in folder.skipped} == {"bomb.png", "large.png", "cut.png", "notes.png"}
    from senet_zoo.finetune.images import BadImageError

    with pytest.raises(BadImageError, match=r"bomb\.png"):
        image_folder(train, strict=True)


def test_7_8_weights_are_checked_before_use(tmp_path) -> None:
    model = senet_zoo.create_model("se_resnet50", num_classes=3, **SMALL)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    first = next(iter(state))
    cases = {
        "nan": {**state, first: torch.full_like(state[first], float("nan"))},
        "one inf": {
            **state,
            first: state[first].flatten().index_fill(0, torch.tensor([7]), float("inf")).view_as(state[first]),
        },
        "rank": {**state, first: torch.zeros(state[first].shape[0])},
        "int8": {**state, first: state[first].to(torch.int8)},
    }
    for case, tensors in cases.items():
        path = tmp_path / f"{case.replace(' ', '_')}.safetensors"
        save_file(tensors, str(path))
        with pytest.raises(ValueError) as info:
            senet_zoo.create_model("se_resnet50", pretrained=str(path), num_classes=3, **SMALL)
        message = str(info.value)
        assert str(path) in message and first in message and "\n" not in message, (case, message)


def test_8_evaluate_does_not_exit_0_with_a_nan_loss(tmp_path, capsys, one_thread) -> None:
    """Finite weights whose outputs overflow: the loss is not a number, and that is a failure."""
    data = _colour_folder(tmp_path / "data", per_class=2)
    model = senet_zoo.create_model("se_resnet50", num_classes=2, **SMALL)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    classifier = model.pretrained_cfg["classifier"]
    state[f"{classifier}.weight"] = torch.full_like(state[f"{classifier}.weight"], 3e38)
    state[f"{classifier}.weight"][1] = -3e38
    weights = tmp_path / "overflow.safetensors"
    save_file(state, str(weights))
    args = ["evaluate", "--model", "se_resnet50", "--model-kwargs", json.dumps(SMALL), "--weights", str(weights)]
    args += ["--data", str(data / "val"), "--img-size", "32", "--workers", "0", "--allow-mismatch", "-q"]
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 1 and "loss" in err and str(weights) in err


@pytest.mark.slow  # subprocesses or full conversions: 30-200 s on a loaded machine
def test_7_11_disk_full_while_writing_a_checkpoint_names_the_file(tmp_path) -> None:
    """``ulimit -f``: the write fails with EFBIG; the error names the checkpoint, not a SafetensorError."""
    target = tmp_path / "run" / "best.safetensors"
    code = f"""
import resource, torch
from senet_zoo.finetune.checkpoint import save_model
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    save_model({str(target)!r}, {{"w": torch.zeros(100000)}}, {{}})
except OSError as err:
    print("OSError", err)
"""
    proc = _python("-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("OSError") and str(target) in proc.stdout and "File too large" in proc.stdout
    assert listing(target.parent) == []  # no temporary file left


# ------------------------------------------------------------------------------ 9. a last batch of one


def test_9_a_last_training_batch_of_one_is_dropped(tmp_path, one_thread) -> None:
    from senet_zoo.finetune import TrainConfig, Trainer, image_folder_datasets

    data = _colour_folder(tmp_path / "data", per_class=2)
    _png(data / "train" / "c0" / "extra.png", 16)  # 5 training images, batches of 4: the last holds one
    model = senet_zoo.create_model("se_resnet50", num_classes=2, **SMALL)
    train, val, _ = image_folder_datasets(data, model, 32, "none", pretrained=False)
    config = TrainConfig(epochs=1, batch_size=4, num_workers=0, threads=1, progress=False, device="cpu")
    history = Trainer(model, train, val, out_dir=tmp_path / "run", num_classes=2, config=config).fit()
    assert history[0]["train_samples"] == 4 and (tmp_path / "run" / "state.json").is_file()


# ------------------------------------------------------------------------------ 11. messages that name the file


def test_11_atomic_writes_name_the_file(tmp_path) -> None:
    from senet_zoo._files import atomic_open

    target = tmp_path / "model.onnx"
    with pytest.raises(OSError) as info:
        with atomic_open(target, "wb"):
            raise OSError(errno.EFBIG, "File too large")
    assert info.value.filename == str(target) and info.value.errno == errno.EFBIG
    folder = tmp_path / "exported"
    folder.mkdir()
    with pytest.raises(OSError) as info:
        with atomic_open(folder, "wb") as fh:
            fh.write(b"x")
    assert info.value.filename == str(folder) and ".tmp" not in str(info.value)
    assert listing(tmp_path) == ["exported"]


def test_11_a_number_of_thousands_of_digits_names_the_file_and_line(tmp_path) -> None:
    from senet_zoo.caffe.net import CaffeFormatError
    from senet_zoo.caffe.prototxt import read_prototxt

    path = tmp_path / "deploy.prototxt"
    path.write_text(
        'name: "x"\nlayer {\n  name: "c" type: "Convolution"\n  convolution_param { num_output: '
        + "9" * 5000
        + " }\n}\n"
    )
    with pytest.raises(CaffeFormatError, match=rf"{path.name}:4:"):
        read_prototxt(path)


# ------------------------------------------------------------------------------ 12. release --resume


def test_12_resume_refuses_repositories_outside_org(tmp_path) -> None:
    from senet_zoo.release.pipeline import ReleaseError

    entry = {
        "caffemodel": "x.caffemodel",
        "caffemodel_sha256": "a" * 64,
        "verified": True,
        "weights_sha256": "b" * 64,
        "published": {"repo_id": "evil/se_resnet50.caffe_in1k", "revision": "c" * 40, "sha256": "b" * 64, "size": 9},
    }
    _write_state(tmp_path / "work", {"se_resnet50": entry})
    with pytest.raises(ReleaseError, match="not 'zoo/se_resnet50.caffe_in1k'"):
        _resume_release(tmp_path)


@pytest.mark.slow  # subprocesses or full conversions: 30-200 s on a loaded machine
def test_12_resume_rehashes_the_config_it_reuses(tmp_path, monkeypatch) -> None:
    from senet_zoo.caffe.synth import synth_net
    from senet_zoo.caffe.writer import write_caffemodel
    from senet_zoo.release import pipeline as release_module

    src = tmp_path / "src"
    src.mkdir()
    write_caffemodel(synth_net("se_resnet50", layers=(1, 1, 1, 1), seed=0), src / "model.caffemodel")
    converted = []
    original = release_module.convert

    def convert(*args, **kwargs):
        converted.append(args[1])
        return original(*args, **kwargs)

    def publish(*args, **kwargs):
        raise RuntimeError("the Hub is away")

    monkeypatch.setattr(release_module, "convert", convert)
    monkeypatch.setattr(release_module, "publish", publish)
    common = dict(only=["se_resnet50"], work_dir=tmp_path / "work", manifest_path=_manifest_copy(tmp_path))
    first = release_module.release(src, "zoo", progress=False, **common)
    assert first.results["se_resnet50"].status == "failed" and len(converted) == 1
    config = converted[0] / "config.json"
    tampered = json.loads(config.read_text())
    tampered["pretrained_cfg"]["mean"] = [0.0, 0.0, 0.0]  # preprocessing that would be published
    config.write_text(json.dumps(tampered))
    release_module.release(src, "zoo", resume=True, progress=False, **common)
    assert len(converted) == 2  # the tampered config was not reused: the folder was converted again
    assert json.loads(config.read_text())["pretrained_cfg"]["mean"] != [0.0, 0.0, 0.0]
    release_module.release(src, "zoo", resume=True, progress=False, **common)
    assert len(converted) == 2  # an untouched folder is reused
