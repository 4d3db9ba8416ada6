"""--force, killed runs and folder permissions: the converter deletes only what it made."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.convert_helpers import caffemodel, listing

from senet_zoo.convert import ConversionError, convert
from senet_zoo.convert.outdir import WORK_SUFFIX, remove_stale_work

OUTPUT = ["README.md", "config.json", "model.safetensors"]


@pytest.fixture()
def good(tmp_path: Path) -> Path:
    return caffemodel(tmp_path, "se_resnet50", seed=1, package_writer=True)


def test_force_replaces_only_a_previous_conversion(tmp_path, good) -> None:
    out = tmp_path / "out"
    first = convert(good, out, verify=False, progress=False)
    other = caffemodel(tmp_path, "se_resnet50", seed=2, name="other", package_writer=True)
    second = convert(other, out, verify=False, progress=False, overwrite=True)
    assert listing(out) == OUTPUT and first.weights_sha256 != second.weights_sha256
    assert listing(tmp_path) == ["other.caffemodel", "out", "se_resnet50.caffemodel"]  # no .old, no work folder
    (out / "notes.txt").write_text("mine")  # the user added a file: --force would delete it
    with pytest.raises(ConversionError, match=r"did not write \(notes\.txt\)"):
        convert(good, out, verify=False, progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine" and listing(out) == sorted([*OUTPUT, "notes.txt"])


def test_force_refuses_inputs_inside_out_and_files(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    source = caffemodel(out, "se_resnet50", seed=1, package_writer=True)
    for overwrite in (False, True):
        with pytest.raises(ConversionError, match="holds the input"):
            convert(source, out, verify=False, progress=False, overwrite=overwrite)
    assert listing(out) == ["se_resnet50.caffemodel"]
    target = tmp_path / "file"
    target.write_text("precious")
    with pytest.raises(ConversionError, match="not a folder"):
        convert(source, target, verify=False, progress=False, overwrite=True)
    assert target.read_text() == "precious"


def test_output_folder_follows_umask(tmp_path, good) -> None:
    old = os.umask(0o022)
    try:
        convert(good, tmp_path / "out", verify=False, progress=False)
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "model.safetensors").stat().st_mode & 0o777 == 0o644


def _work(parent: Path, name: str, owner: bytes | None) -> Path:
    work = parent / f".{name}.abc123{WORK_SUFFIX}"
    (work / "new").mkdir(parents=True)
    if owner is not None:
        (work / "owner").write_bytes(owner)
    return work


def test_stale_work_folders(tmp_path) -> None:
    """Dead runs' folders go; a live run's folder, look-alikes and everything else stay."""
    dead = _work(tmp_path, "a", b"senet-zoo convert work folder; pid 1\n")
    live = _work(tmp_path, "b", b"senet-zoo convert work folder; pid 2\n")
    lookalike = _work(tmp_path, "c", None)  # no owner file: not ours
    foreign = _work(tmp_path, "d", b"something else")
    parked = _work(tmp_path, "e", b"senet-zoo convert work folder; pid 3\n")
    (parked / "old").mkdir()
    (parked / "old" / "config.json").write_text("{}")  # killed between its two renames
    fd = os.open(live / "owner", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: as another process holds it
    try:
        removed = remove_stale_work(tmp_path)
    finally:
        os.close(fd)
    assert sorted(removed) == sorted([dead, parked])
    assert live.exists() and lookalike.exists() and foreign.exists() and not dead.exists()
    assert (tmp_path / "e" / "config.json").read_text() == "{}"  # restored to its place


KILLED = r"""
import sys, time
import senet_zoo.convert.converter as c
real = c.write_safetensors
def slow(*args, **kwargs):
    print("writing", flush=True)
    time.sleep(60)
c.write_safetensors = slow
c.convert(sys.argv[1], sys.argv[2], verify=False, progress=False)
"""


@pytest.mark.slow
def test_killed_run_is_cleaned_by_the_next(tmp_path, good) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(good), str(out)], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        work = [p for p in tmp_path.iterdir() if p.name.endswith(WORK_SUFFIX)]
        assert len(work) == 1
        assert remove_stale_work(tmp_path) == []  # the run is alive: its folder stays
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert work[0].exists() and not out.exists()
    time.sleep(0.1)
    convert(good, out, verify=False, progress=False)
    assert listing(tmp_path) == ["out", "se_resnet50.caffemodel"]
