"""The converter's output folder: built aside, swapped in at the end, never deleting what it did not make.

A conversion builds its result in a work folder beside ``--out`` (``.<out>.<random>.senet-zoo-convert``)
holding an ``owner`` file that records the process id and stays locked (``flock``) while the
process lives, and the new folder ``new/``. At the end the new folder is renamed to ``--out``; a
previous converter output there is first moved into the work folder (``old/``) and deleted once
the new one is in place, so ``--out`` is never empty for longer than two renames and no ``.old``
sibling is left behind.

A killed run leaves its work folder; the next run in the same parent folder removes every work
folder whose lock no live process holds (and restores ``old/`` to ``--out`` if the run died between
the two renames). Nothing else is ever deleted: ``--force`` replaces only a folder the converter
wrote (its ``config.json`` carries the ``senet_zoo`` section, and it holds nothing but the
converter's files), and no output folder may contain the conversion's inputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._files import fsync_dir, rename_noreplace
from .._log import get_logger
from .mapping import ConversionError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no stale-folder detection, nothing is removed
    fcntl = None  # type: ignore[assignment]

__all__ = ["OUTPUT_FILES", "WORK_SUFFIX", "check_output", "work_folder", "remove_stale_work"]

logger = get_logger(__name__)

OUTPUT_FILES = frozenset({"model.safetensors", "config.json", "README.md"})
WORK_SUFFIX = ".senet-zoo-convert"
_OWNER = "owner"
_OWNER_TEXT = "senet-zoo convert work folder; pid {pid}\n"


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _is_converter_output(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and isinstance(config.get("senet_zoo"), dict) and "name" in config["senet_zoo"]


def _identity(path: Path) -> tuple[int, int] | None:
    """The (device, inode) of ``path`` itself (a link is not followed), or None when nothing is there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _replaceable(folder: Path, overwrite: bool) -> bool:
    """An empty real folder, or with ``overwrite`` one the converter wrote holding only its files."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return not names or (overwrite and names <= OUTPUT_FILES and _is_converter_output(folder))


def check_output(out_dir: Path, inputs: Sequence[Path], *, overwrite: bool) -> None:
    """Refuse an ``out_dir`` that holds an input, or that exists and may not be replaced."""
    for source in inputs:
        if _inside(source, out_dir):
            raise ConversionError(f"{out_dir}: the output folder holds the input {source}; choose another --out")
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_symlink() or not out_dir.is_dir():
        raise ConversionError(f"{out_dir} exists and is not a folder; it is never replaced, choose another --out")
    entries = sorted(p.name for p in out_dir.iterdir())
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(f"{out_dir} already exists and is not empty (replace a previous conversion with --force)")
    if not _is_converter_output(out_dir):
        raise ConversionError(
            f"{out_dir}: --force replaces only a folder written by senet-zoo convert, and this one is not "
            f"(no senet_zoo config.json); nothing was changed"
        )
    foreign = [name for name in entries if name not in OUTPUT_FILES]
    if foreign:
        raise ConversionError(
            f"{out_dir}: --force would delete files the converter did not write ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); move them away first; nothing was changed"
        )


def _lock(fd: int) -> bool:
    """Take the work folder's lock without waiting; True when no live process holds it."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def remove_stale_work(parent: Path, out_name: str | None = None) -> list[Path]:
    """Delete the work folders of dead conversions in ``parent``; returns those removed.

    Only folders named like ours that contain our ``owner`` file, whose lock nobody holds. A
    previous output parked in ``old/`` by a run killed between its two renames goes back to its
    place when that place is still empty.
    """
    removed: list[Path] = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(".") and p.name.endswith(WORK_SUFFIX)]
    except OSError:
        return removed
    for work in candidates:
        owner = work / _OWNER
        if work.is_symlink() or not work.is_dir() or owner.is_symlink() or not owner.is_file():
            continue
        try:
            fd = os.open(owner, os.O_RDWR)
        except OSError:
            continue
        try:
            if not _lock(fd) or not os.read(fd, 64).startswith(b"senet-zoo convert"):
                continue
            target = parent / work.name[1:].rsplit(".", 2)[0]
            old = work / "old"
            if old.is_dir() and not target.exists() and not target.is_symlink():
                os.rename(old, target)
                logger.warning("restored %s from an interrupted conversion", target)
            shutil.rmtree(work, ignore_errors=True)
            removed.append(work)
            logger.info("removed %s, left by an interrupted conversion", work)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def work_folder(out_dir: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh, empty ``new`` folder to fill; on success it becomes ``out_dir`` (see module doc).

    The final move re-checks ``out_dir``: what is there must still be what :func:`check_output`
    accepts (nothing, an empty folder, or with ``overwrite`` a previous conversion), the same folder
    as when the work began; a folder that appeared meanwhile is never replaced (``RENAME_NOREPLACE``).
    On any error, or when interrupted, the work folder is removed and ``out_dir`` is as it was.
    """
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_work(parent)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=WORK_SUFFIX, dir=parent))
    fd = os.open(work / _OWNER, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process ends: the folder is alive
        os.write(fd, _OWNER_TEXT.format(pid=os.getpid()).encode())
        new = work / "new"
        os.mkdir(new)  # mode 0777 & ~umask, like any folder the user creates
        before = _identity(out_dir)  # what check_output approved: nothing, or a previous conversion
        yield new
        old = work / "old"
        if before is not None:
            os.rename(out_dir, old)  # a folder is moved, never followed: a link here would fail the check below
            if _identity(old) != before or not _replaceable(old, overwrite):
                os.rename(old, out_dir)
                raise ConversionError(f"{out_dir} was replaced by something else while converting; nothing was changed")
        try:
            rename_noreplace(new, out_dir)  # the kernel re-checks that nothing appeared meanwhile
        except FileExistsError:
            if old.exists():
                os.rename(old, out_dir)
            raise ConversionError(
                f"{out_dir} appeared while converting (another program or conversion wrote it); "
                "it was left untouched and this conversion discarded"
            ) from None
        except BaseException:
            if old.exists():
                os.rename(old, out_dir)
            raise
        fsync_dir(parent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)
