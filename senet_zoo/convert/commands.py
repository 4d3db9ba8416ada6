"""``senet-zoo convert`` and ``senet-zoo verify``: Caffe release → verified weights folder, and re-checking one."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import Any

from .._cli_helpers import add_command, call_with_options
from .._log import get_logger

logger = get_logger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(subparsers, "convert", _clean_errors("convert", _convert))
    p.add_argument("--caffemodel", required=True, help="the .caffemodel file")
    p.add_argument("--prototxt", help="the deploy .prototxt (optional: checked against the caffemodel)")
    p.add_argument("--arch", help="force the senet_zoo architecture (default: detected)")
    p.add_argument("--out", dest="out_dir", metavar="DIR", required=True, help="output folder (created atomically)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the numerical check")
    p.add_argument(
        "--force",
        dest="overwrite",
        action="store_true",
        help="replace a previous conversion in --out (never any other folder)",
    )
    p.add_argument(
        "--allow-suspicious",
        action="store_true",
        help="convert weights the sanity checks refuse (non-finite values, implausible BatchNorm statistics); "
        "the model card lists the findings",
    )

    p = add_command(subparsers, "verify", _clean_errors("verify", _verify))
    p.add_argument("folder", help="a folder written by `senet-zoo convert`")
    p.add_argument("--caffemodel", required=True)
    p.add_argument("--prototxt")


def _one_line(err: BaseException) -> str:
    from .._redact import redact

    text = " ".join(redact(err).split()) or type(err).__name__
    return text if len(text) <= 2000 else text[:2000] + " ..."


def _clean_errors(command: str, handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``handler``; any error becomes one line ``senet-zoo COMMAND: error: ...``: exit status 2 for a
    bad input file (the expected errors), 1 for anything else (the operation failed).

    The messages name the file (and line and column, or byte offset) and the layer. An error the
    converter did not anticipate is reported the same way (its traceback only with ``-v``).
    """
    from ..caffe.executor import ExecutionError
    from ..caffe.net import CaffeFormatError
    from .mapping import ConversionError

    expected = (CaffeFormatError, ConversionError, ExecutionError, OSError, MemoryError)

    @functools.wraps(handler)  # its docstring is the command's description
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except expected as err:
            print(f"senet-zoo {command}: error: {_one_line(err)}", file=sys.stderr)
            return 2
        except Exception as err:  # noqa: BLE001 - a traceback is never the answer to a bad file
            logger.debug("unexpected error", exc_info=True)
            print(f"senet-zoo {command}: error: {type(err).__name__}: {_one_line(err)}", file=sys.stderr)
            return 1

    return run


def print_checks(verification: dict[str, Any]) -> None:
    """The verification numbers as a small table on stdout."""
    print(
        f"{'check':<9} {'input':>14} {'max abs':>10} {'max rel':>10} {'tolerance':>10} {'float32 rel':>11} {'top-1':>6}"
    )
    float32 = verification.get("float32", {}).get("checks") or [{}] * len(verification["checks"])
    for c, c32 in zip(verification["checks"], float32):
        agree = "-" if c["top1_agreement"] is None else f"{c['top1_agreement']:.0%}"
        size = f"{c['batch']}x3x{c['size']}x{c['size']}"
        tol = c.get("tolerance", verification["tolerance"])
        rel32 = f"{c32['max_rel']:.3g}" if c32 else "-"
        print(
            f"{c['name']:<9} {size:>14} {c['max_abs']:>10.3g} {c['max_rel']:>10.3g} {tol:>10.3g} {rel32:>11} {agree:>6}"
        )
    print(
        f"decided in {verification.get('dtype', 'float32')} (relative to max |Caffe output|): passed; "
        "the float32 model's difference is for information"
    )


def _convert(args: argparse.Namespace) -> int:
    """Convert an SENet Caffe release (caffemodel [+ prototxt]) into a verified weights folder.

    Convert one of the SENet authors' Caffe models into a folder with model.safetensors, config.json
    (timm format) and README.md. The architecture is detected from the caffemodel; the result is checked
    against the Caffe net run by senet_zoo's executor unless --no-verify.
    """
    from ..cli import progress_enabled
    from .converter import convert

    report = call_with_options(convert, args, progress=progress_enabled(args))
    print(
        f"{report.source_file} → {report.out_dir}  ({report.arch}"
        f"{', ' + str(report.model_args) if report.model_args else ''}; timm: {report.timm_legacy or 'via senet_zoo'})"
    )
    print(
        f"{report.tensors} tensors, {report.parameters:,} parameters, {report.weights_bytes / 2**20:.1f} MiB, "
        f"sha256 {report.weights_sha256}, {report.seconds:.1f} s"
    )
    for note in report.notes:
        print(f"note: {note}")
    if report.verification:
        print_checks(report.verification)
    return 0


def _verify(args: argparse.Namespace) -> int:
    """Re-check a converted folder against its Caffe model.

    Run the Caffe net and the converted model on the same random images and compare logits (224) and the
    last feature map (259).
    """
    from .verify import verify_folder

    result = verify_folder(args.folder, args.caffemodel, args.prototxt)
    print_checks(result)
    if result["source_sha256_matches"] is False:
        print(f"warning: {args.caffemodel} is not the file this folder was converted from (sha256 differs)")
    return 0
