"""Convert an SENet Caffe release into a weights folder that senet_zoo, torch.hub and timm load.

    report = convert("SE-ResNet-50.caffemodel", "out/se_resnet50.caffe_in1k",
                     prototxt="SE-ResNet-50.prototxt")

The caffemodel's layers are the source of truth: their blobs must be exactly those of one release
(see :mod:`.detect`), each lands in exactly one tensor (:mod:`.mapping`), and a prototxt, when
given, must describe the same net. The first convolution's input channels are reversed (the Caffe
models read BGR), the classifier rows are reordered to sorted-WNID class order, BatchNorm
statistics are divided by Caffe's scale factor. Output folder: ``model.safetensors`` (timm legacy
key names, float32), ``config.json`` (timm format), ``README.md`` (model card).

The weights are streamed tensor by tensor from the memory-mapped caffemodel into the safetensors
file, and the pages already written are dropped from the process, so memory stays near one tensor,
never a copy of the model. The conversion itself uses numpy only; torch runs the optional
verification. Everything is built in a work folder beside ``out_dir`` and renamed into place
at the end (:mod:`.outdir`): on any error nothing is left behind, and a killed run's leftovers are
removed by the next run. Values no trained net holds are refused first (:mod:`.sanity`).
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import math
import mmap
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .._files import byte_bar, exclusive_output, sha256_file
from .._log import get_logger
from .._version import __version__
from ..caffe.synth import ARCHS
from ..catalog import CAFFE_RELEASES
from .card import build_config, write_card, write_config
from .classes import sorted_row_order
from .mapping import FAMILY_RULES, TORCH_BN_EPS, PlannedTensor, plan_tensors
from .outdir import check_output, work_folder
from .report import CARD_FILE, CONFIG_FILE, CONVERTER_VERSION, WEIGHTS_FILE, ConversionReport
from .safetensors_writer import Entry, aligned_order, write_safetensors
from .sanity import SuspiciousValues, check_bn, check_finite
from .source import CaffeSource, load_caffe

__all__ = [
    "convert",
    "ConversionReport",
    "CONVERTER_VERSION",
    "WEIGHTS_FILE",
    "CONFIG_FILE",
    "CARD_FILE",
    "load_caffe",
    "CaffeSource",
]  # load_caffe and CaffeSource live in .source, the report in .report: re-exported here

logger = get_logger(__name__)


def _plan(source: CaffeSource) -> list[PlannedTensor]:
    det = source.detection
    rules = FAMILY_RULES["inception" if ARCHS[det.arch].block == "inception" else "senet"]
    plan = plan_tensors(det.expected, det.shapes, rules)
    folded = []
    for i, t in enumerate(plan):
        if t.kind == "bn_var":
            eps = source.bn_eps[t.layer]
            if eps != TORCH_BN_EPS:
                plan[i] = dataclasses.replace(t, eps=eps)
                folded.append(t.layer)
    if folded:
        source.notes.append(
            f"{len(folded)} BatchNorm layer(s) use an eps other than 1e-5 (first: {folded[0]!r}); "
            "the difference is folded into running_var, which is exact"
        )
    return aligned_order(plan, lambda t: Entry(t.key, t.dtype, t.shape).nbytes)  # the file's storage order


def _values(
    plan: list[PlannedTensor], blobs: dict[str, list[np.ndarray]], where: str, suspicious: list[str], allow: bool
) -> Iterator[np.ndarray]:
    """Each planned tensor's values, computed from the (memory-mapped) blobs one at a time.

    Non-finite values are refused (:class:`SuspiciousValues`) unless ``allow``; then they are
    listed in ``suspicious``.
    """
    order = sorted_row_order()
    for t in plan:
        if t.kind == "count":
            yield np.zeros((), dtype=np.int64)
            continue
        value = np.asarray(blobs[t.layer][t.blob], dtype=np.float32).reshape(t.shape)
        problem = check_finite(where, t.layer, t.blob, value)
        if problem:
            if not allow:
                raise SuspiciousValues(f"{problem} (--allow-suspicious converts it anyway)")
            suspicious.append(problem)
        if t.kind in ("bn_mean", "bn_var"):
            s = np.float32(np.asarray(blobs[t.layer][2]).reshape(-1)[0])
            factor = np.float32(0.0) if s == 0 else np.float32(1.0) / s  # Caffe: 1 / s in float, then scale
            value = value * factor
            if t.kind == "bn_var" and t.eps != TORCH_BN_EPS:
                value = value + np.float32(t.eps - TORCH_BN_EPS)
        if t.flip_in:
            value = value[:, ::-1]
        if t.permute_rows:
            value = value[order]
        yield value


def _release_pages(array: np.ndarray) -> None:
    """Drop the whole pages of a memory-mapped blob from this process's resident set.

    The data stays in the page cache (a later read faults it back in cheaply), so the converter's
    memory stays near one tensor instead of growing to the size of the file as it reads every blob.
    """
    base: Any = array
    while isinstance(base, np.ndarray):
        base = base.base
    if not (isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)) or array.nbytes == 0:
        return
    mapping = base.obj
    offset = array.ctypes.data - np.frombuffer(mapping, np.uint8, count=1).ctypes.data
    start = -(-offset // mmap.PAGESIZE) * mmap.PAGESIZE
    end = (offset + array.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if end > start:
        mapping.madvise(mmap.MADV_DONTNEED, start, end - start)


def _progress(values: Iterator[np.ndarray], plan: list[PlannedTensor], bar: tqdm) -> Iterator[np.ndarray]:
    for t, value in zip(plan, values):
        bar.set_postfix_str(t.layer, refresh=False)
        yield value
        bar.update(value.nbytes)


class _BackgroundHash:
    """SHA-256 of the bytes handed to :meth:`update`, computed in a thread while the writer goes on.

    ``update(data, then)`` queues ``data``; ``then()`` runs once it is hashed (releasing the memory
    the data came from). At most ``limit`` bytes wait (a few tensors): enough that the writer and the
    hasher rarely wait for each other, little enough to keep the converter's memory near one tensor.
    """

    def __init__(self, limit: int = 16 << 20) -> None:
        self._hash = hashlib.sha256()
        self._limit = limit
        self._items: collections.deque[tuple[Any, Any, int]] = collections.deque()
        self._pending = 0  # bytes queued and not hashed yet
        self._closed = False
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="output-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                data, then, size = self._items.popleft()
            try:
                if data is not None and self._error is None:
                    self._hash.update(data)
                if then is not None:
                    then()
            except BaseException as err:  # reported by hexdigest()
                self._error = err
            with self._cond:
                self._pending -= size
                self._cond.notify_all()

    def update(self, data: Any, then: Any = None) -> None:
        size = memoryview(data).nbytes if data is not None else 0
        with self._cond:
            while self._pending > 0 and self._pending + size > self._limit:
                self._cond.wait()
            self._items.append((data, then, size))
            self._pending += size
            self._cond.notify_all()

    def after(self, then: Any) -> None:
        """Run ``then()`` in the hashing thread once everything queued before it is hashed."""
        self.update(None, then)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def hexdigest(self) -> str:
        self.close()
        if self._error is not None:
            raise self._error
        return self._hash.hexdigest()


def convert(
    caffemodel: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    prototxt: str | os.PathLike | None = None,
    arch: str | None = None,
    verify: bool = True,
    progress: bool = True,
    overwrite: bool = False,
    allow_suspicious: bool = False,
) -> ConversionReport:
    """Convert ``caffemodel`` into the folder ``out_dir``; see the module docstring.

    ``arch`` forces the senet_zoo architecture instead of detecting it. ``verify`` runs the Caffe net
    (executor) and the converted model on the same random images in float64 and fails above 1e-9
    relative difference (:mod:`.verify`). ``overwrite`` replaces a previous conversion in ``out_dir``
    (only a folder the converter wrote, only once the new one is complete; :mod:`.outdir`).
    ``allow_suspicious`` converts values the sanity checks refuse (:mod:`.sanity`), noting them.

    The source is hashed in a thread while it is read and converted, and the output while it is
    written (its header, computed from the blob shapes, goes first): no file is read twice.
    """
    with exclusive_output(out_dir, "convert"):  # a second conversion into out_dir fails at once
        return _convert(caffemodel, Path(out_dir), prototxt, arch, verify, progress, overwrite, allow_suspicious)


def _convert(
    caffemodel: str | os.PathLike,
    out_dir: Path,
    prototxt: str | os.PathLike | None,
    arch: str | None,
    verify: bool,
    progress: bool,
    overwrite: bool,
    allow_suspicious: bool,
) -> ConversionReport:
    start = time.perf_counter()
    caffemodel = Path(caffemodel)
    inputs = [caffemodel] + ([Path(prototxt)] if prototxt is not None else [])
    check_output(out_dir, inputs, overwrite=overwrite)
    if not caffemodel.is_file():
        raise FileNotFoundError(f"caffemodel not found: {caffemodel}")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="source-sha256") as pool:
        source_hash = pool.submit(sha256_file, caffemodel)
        try:
            source = load_caffe(caffemodel, prototxt, arch)
            plan = _plan(source)
        except BaseException:
            source_hash.cancel()
            raise
        det = source.detection
        release = CAFFE_RELEASES[det.arch]
        suspicious: list[str] = []
        for layer in sorted({t.layer for t in plan if t.kind == "bn_mean"}):
            suspicious += check_bn(str(caffemodel), layer, source.blobs[layer])
        if suspicious and not allow_suspicious:
            more = f" (and {len(suspicious) - 1} more)" if len(suspicious) > 1 else ""
            raise SuspiciousValues(f"{suspicious[0]}{more}; --allow-suspicious converts it anyway")
        with work_folder(out_dir, overwrite=overwrite) as tmp:
            entries = [Entry(t.key, t.dtype, t.shape) for t in plan]
            total = sum(e.nbytes for e in entries)
            metadata = {
                "format": "pt",
                "architecture": release.timm_legacy or det.arch,
                "senet_zoo_name": det.arch,
                "source_file": caffemodel.name,
                "converter_version": CONVERTER_VERSION,
                "senet_zoo_version": __version__,
            }
            output_hash = _BackgroundHash()

            def consumed(i: int) -> None:
                if plan[i].kind != "count":
                    output_hash.after(partial(_release_pages, source.blobs[plan[i].layer][plan[i].blob]))

            try:
                with byte_bar(total, f"converting {caffemodel.name}", progress, leave=True) as bar:
                    values = _values(plan, source.blobs, str(caffemodel), suspicious, allow_suspicious)
                    try:
                        weights_bytes = write_safetensors(
                            tmp / WEIGHTS_FILE,
                            entries,
                            _progress(values, plan, bar),
                            metadata,
                            done=consumed,
                            hasher=output_hash,
                        )
                    except OSError as err:  # "[Errno 27] File too large" alone does not say which file
                        if err.filename is not None:
                            raise
                        where = out_dir / WEIGHTS_FILE
                        raise OSError(err.errno, f"{err.strerror} (nothing written)", str(where)) from err
                weights_sha256 = output_hash.hexdigest()
            finally:
                output_hash.close()
            source_sha256 = source_hash.result()
            notes = list(source.notes)
            if suspicious:
                notes.append(
                    f"converted with --allow-suspicious despite {len(suspicious)} suspicious value finding(s): "
                    + "; ".join(suspicious[:5])
                    + ("; ..." if len(suspicious) > 5 else "")
                )
            report = ConversionReport(
                out_dir=out_dir,
                arch=det.arch,
                timm_legacy=release.timm_legacy,
                model_args=det.model_args,
                source_file=caffemodel.name,
                source_sha256=source_sha256,
                source_bytes=caffemodel.stat().st_size,
                weights_sha256=weights_sha256,
                weights_bytes=weights_bytes,
                tensors=len(entries),
                parameters=sum(math.prod(t.shape) for t in plan if t.kind == "copy"),
                seconds=0.0,
                notes=notes,
                suspicious=suspicious,
            )
            if verify:
                from .verify import verify_conversion  # torch, the model and the executor: only when asked

                report.verification = verify_conversion(source.topology, tmp / WEIGHTS_FILE, det.arch, det.model_args)
            config = build_config(
                report,
                num_classes=_num_classes(plan),
                num_features=_num_features(plan),
                first_conv=next(t.key for t in plan if t.flip_in).rpartition(".")[0],
            )
            write_config(tmp / CONFIG_FILE, config)
            write_card(tmp / CARD_FILE, config)
    report.seconds = time.perf_counter() - start
    for note in report.notes:
        logger.warning("%s: %s", caffemodel.name, note)
    return report


def _num_classes(plan: list[PlannedTensor]) -> int:
    """Output classes of the converted classifier."""
    return next(t.shape[0] for t in plan if t.key == "last_linear.weight")


def _num_features(plan: list[PlannedTensor]) -> int:
    """Width of the pooled features that feed the classifier."""
    return next(t.shape[1] for t in plan if t.key == "last_linear.weight")
