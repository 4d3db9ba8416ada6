"""``senet-zoo release``: command-line wrapper over :func:`senet_zoo.release.release` (for maintainers)."""

from __future__ import annotations

import argparse

from .._cli_helpers import add_command, add_manifest_option, call_with_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``release`` subcommand."""
    p = add_command(subparsers, "release", _release)
    p.add_argument("src_dir", metavar="SRC_DIR", help="the folder holding the downloaded caffemodels (+ prototxts)")
    p.add_argument("--org", required=True, help="Hub user or organisation to publish to")
    p.add_argument("--only", nargs="+", metavar="NAME", help="release only these registry names (default: all seven)")
    p.add_argument("--dry-run", action="store_true", help="do everything but the upload; print the manifest diff")
    p.add_argument("--resume", action="store_true", help="continue the run recorded in the work folder")
    p.add_argument("--val", dest="val_dir", metavar="DIR", help="ImageNet val folder (DIR/WNID/IMAGE): accuracy")
    p.add_argument(
        "--work-dir", default="senet-zoo-release", help="converted folders and run state (default: %(default)s)"
    )
    add_manifest_option(p, "manifest to update")
    p.add_argument("--private", action="store_true", help="create the repositories as private")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _release(args: argparse.Namespace) -> int:
    """Maintainers: convert, verify and publish the seven Caffe releases, then record them in the manifest.

    Identify the SENet caffemodels in SRC_DIR by content (any file names; prototxts optional), record
    their sha256 and size, convert and verify each, optionally measure top-1/top-5 on an ImageNet
    validation folder, publish each to ORG/<name>.caffe_in1k and update the manifest in one atomic
    write. A failed or interrupted run continues with --resume.
    """
    from .pipeline import release, summary_lines

    report = call_with_options(release, args, progress=not args.quiet)
    for line in summary_lines(report):
        print(line)
    if report.dry_run:
        print(report.manifest_diff or "the manifest would not change")
    elif report.manifest_written:
        print(f"manifest updated: {report.manifest_path}")
    else:
        print(f"manifest unchanged: {report.manifest_path}")
    if not report.ok:
        print(
            f"some models were not released; fix the problems above and run again with --resume "
            f"--work-dir {args.work_dir}"
        )
    return 0 if report.ok else 1
