"""Image folders read safely: links stay inside the data root, loops end, bombs are not decoded.

:class:`SafeImageFolder` is torchvision's ``ImageFolder`` with its own walk and loader:

- a symbolic link (class folder, sub-folder or image) is followed only when its target lies inside
  the data root; a folder reached twice (``train/blue/loop -> ..``) is a loop and is not entered again;
- every image's header is read once when the folder is listed: a file over :data:`MAX_IMAGE_BYTES`,
  an image over :data:`MAX_IMAGE_PIXELS` (checked per image, PIL's process-wide limit is left as it is),
  and a file that is not a readable image are skipped with one warning that counts them and names the
  first, or refused with ``strict=True``;
- loading re-checks the size and names the file in any error ("image file is truncated" alone does not).
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS

from .._log import get_logger

__all__ = ["MAX_IMAGE_PIXELS", "MAX_IMAGE_BYTES", "BadImageError", "SafeImageFolder", "check_image", "load_image"]

_logger = get_logger(__name__)

MAX_IMAGE_PIXELS = 50_000_000  # ~7000 x 7000: a decoded RGB image of 150 MB at most
MAX_IMAGE_BYTES = 100 << 20  # a compressed image file


class BadImageError(ValueError):
    """An image that senet_zoo does not decode (too large, corrupt, or not an image); names the file."""


def check_image(path: str | os.PathLike[str]) -> str | None:
    """What is wrong with the image at ``path`` (None: nothing), from its header and size only."""
    from PIL import Image, UnidentifiedImageError

    try:
        size = os.stat(path).st_size
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if size > MAX_IMAGE_BYTES:
        return f"{size} bytes, over the {MAX_IMAGE_BYTES >> 20} MiB limit for an image file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    return f"{width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS:,} pixels"
                im.verify()  # checksums and structure without decoding (a cut PNG fails here)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return f"refused as a decompression bomb ({err})"
    except UnidentifiedImageError:
        return "not an image PIL can read"
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as err:
        return f"corrupt image ({' '.join(str(err).split()) or type(err).__name__})"
    return None


def load_image(path: str) -> Any:
    """The RGB image at ``path``; a :class:`BadImageError` naming the file when it cannot be decoded."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open(path, "rb") as fh, Image.open(fh) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise BadImageError(f"{path}: {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS:,}")
                return im.convert("RGB")
    except BadImageError:
        raise
    except Exception as err:  # noqa: BLE001 - PIL raises many types; each becomes one line naming the file
        raise BadImageError(f"{path}: cannot be decoded ({' '.join(str(err).split()) or type(err).__name__})") from None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class SafeImageFolder(ImageFolder):
    """``ImageFolder(root)`` that never leaves ``root`` through a link, never loops and skips bad images
    (``strict=True``: refuses them). ``skipped`` lists ``(path, problem)`` of the files left out."""

    def __init__(
        self, root: str | os.PathLike[str], transform: Callable | None = None, *, strict: bool = False
    ) -> None:
        self.strict = strict
        self.skipped: list[tuple[str, str]] = []
        self._real_root = os.path.realpath(root)
        super().__init__(str(root), transform=transform, loader=load_image)
        if self.skipped:
            path, problem = self.skipped[0]
            more = f" and {len(self.skipped) - 1} more" if len(self.skipped) > 1 else ""
            _logger.warning("%s: skipped %d file(s): %s: %s%s", root, len(self.skipped), path, problem, more)

    def find_classes(self, directory: str | Path) -> tuple[list[str], dict[str, int]]:
        classes = sorted(
            entry.name
            for entry in os.scandir(directory)
            if self._usable_folder(entry.path) and not entry.name.startswith(".")
        )
        if not classes:
            raise FileNotFoundError(f"Couldn't find any class folder in {directory}.")
        return classes, {name: i for i, name in enumerate(classes)}

    def make_dataset(  # torchvision's is a staticmethod, called through self
        self,
        directory: str | Path,
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        suffixes = tuple(s.lower() for s in (extensions or IMG_EXTENSIONS))
        samples = []
        for name in sorted(class_to_idx):
            count = 0
            for path in self._walk(os.path.join(directory, name)):
                if not path.lower().endswith(suffixes):
                    continue
                problem = check_image(path)
                if problem is not None:
                    self._skip(path, problem)
                    continue
                samples.append((path, class_to_idx[name]))
                count += 1
            if count == 0 and not allow_empty:
                raise FileNotFoundError(f"{directory}: no usable images in class folder {name!r}")
        return samples

    def _usable_folder(self, path: str) -> bool:
        if not os.path.isdir(path):
            return False
        if os.path.islink(path) and not _inside(os.path.realpath(path), self._real_root):
            self._skip(path, f"a link to {os.path.realpath(path)}, outside the data root {self._real_root}")
            return False
        return True

    def _skip(self, path: str, problem: str) -> None:
        if self.strict:
            raise BadImageError(f"{path}: {problem} (without --strict it would be skipped)")
        self.skipped.append((path, problem))

    def _walk(self, top: str) -> Iterator[str]:
        """Files under ``top`` in sorted order; links followed only inside the root, each folder once."""
        seen: set[tuple[int, int]] = set()
        stack = [top]
        while stack:
            folder = stack.pop()
            st = os.stat(folder)
            if (st.st_dev, st.st_ino) in seen:
                self._skip(folder, "a link that loops back to a folder already read")
                continue
            seen.add((st.st_dev, st.st_ino))
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError as err:
                self._skip(folder, f"cannot be listed ({err.strerror})")
                continue
            subfolders = []
            for entry in entries:
                if entry.is_symlink():
                    target = os.path.realpath(entry.path)
                    if not _inside(target, self._real_root):
                        self._skip(entry.path, f"a link to {target}, outside the data root {self._real_root}")
                        continue
                    if _inside(os.path.realpath(folder), target):  # e.g. loop -> ..: the walk would never end
                        self._skip(entry.path, f"a link to {target}, a folder that contains it (a loop)")
                        continue
                try:
                    mode = os.stat(entry.path).st_mode
                except OSError as err:
                    self._skip(entry.path, f"cannot be read ({err.strerror})")
                    continue
                if stat.S_ISDIR(mode):
                    subfolders.append(entry.path)
                elif stat.S_ISREG(mode):
                    yield entry.path
            stack.extend(reversed(subfolders))
