"""``senet-zoo release``: command-line wrapper over :func:`senet_zoo.hub.release.release` (for maintainers)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``release`` subcommand."""
    p = subparsers.add_parser(
        "release",
        help="maintainers: convert, verify and publish the seven Caffe releases, then record them in the manifest",
        description="Identify the SENet caffemodels in SRC_DIR by content (any file names; prototxts optional), "
        "record their sha256 and size, convert and verify each, optionally measure top-1/top-5 on an ImageNet "
        "validation folder, publish each to ORG/<name>.caffe_in1k and update the manifest in one atomic write. "
        "A failed or interrupted run continues with --resume.",
    )
    p.add_argument("src_dir", metavar="SRC_DIR", help="the folder holding the downloaded caffemodels (+ prototxts)")
    p.add_argument("--org", required=True, help="Hub user or organisation to publish to")
    p.add_argument("--only", nargs="+", metavar="NAME", help="release only these registry names (default: all seven)")
    p.add_argument("--dry-run", action="store_true", help="do everything but the upload; print the manifest diff")
    p.add_argument("--resume", action="store_true", help="continue the run recorded in the work folder")
    p.add_argument("--val", metavar="DIR", help="ImageNet validation folder (DIR/<WNID>/<image>) to measure accuracy")
    p.add_argument(
        "--work-dir", default="senet-zoo-release", help="converted folders and run state (default: %(default)s)"
    )
    p.add_argument("--manifest", default=None, help="manifest to update (default: $SENET_ZOO_MANIFEST or shipped)")
    p.add_argument("--private", action="store_true", help="create the repositories as private")
    p.set_defaults(func=_release)


def _release(args: argparse.Namespace) -> int:
    from ..cli import progress_enabled
    from .release import release, summary_lines

    report = release(
        args.src_dir,
        args.org,
        only=args.only,
        dry_run=args.dry_run,
        resume=args.resume,
        val_dir=args.val,
        work_dir=args.work_dir,
        manifest_path=args.manifest,
        private=args.private,
        progress=progress_enabled(args),
    )
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
