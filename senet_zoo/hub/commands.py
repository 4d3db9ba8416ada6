"""``senet-zoo fetch``, ``senet-zoo cache verify`` and ``senet-zoo publish``: wrappers over :mod:`senet_zoo.hub`."""

from __future__ import annotations

import argparse

from .._cli_helpers import add_manifest_option, call_with_options


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fetch``, ``cache`` and ``publish`` subcommands."""
    p = subparsers.add_parser("fetch", help="download and verify pretrained weights into the cache; print the path")
    p.add_argument("spec", metavar="NAME[.TAG]", help="registry name, optionally with a weights tag")
    add_manifest_option(p)
    p.add_argument("--no-progress", action="store_true", help="do not draw progress bars")
    p.add_argument("--verify", action="store_true", help="re-hash a cached file even when its stamp matches")
    p.set_defaults(func=_fetch)

    p = subparsers.add_parser("cache", help="inspect senet-zoo's weights cache")
    actions = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    v = actions.add_parser(
        "verify", help="re-hash every cached weights file the manifest names; remove bad ones (exit 1 if any)"
    )
    add_manifest_option(v)
    v.add_argument("--dry-run", action="store_true", help="report bad files, remove nothing")
    v.add_argument("--progress", action="store_true", help="draw a progress bar per file")
    v.set_defaults(func=_cache_verify)

    p = subparsers.add_parser("publish", help="upload a converted folder to the Hugging Face Hub, update the manifest")
    p.add_argument(
        "folder", metavar="DIR", help="output of `senet-zoo convert` (model.safetensors, config.json, README.md)"
    )
    p.add_argument("--repo-id", required=True, metavar="ORG/NAME", help="Hub repository to publish to")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--dry-run", action="store_true", help="validate and list what would be uploaded; change nothing")
    p.add_argument("--name", default=None, help="registry name (default: config.json senet_zoo.name)")
    p.add_argument("--tag", default="caffe_in1k", help="weights tag (default: %(default)s)")
    add_manifest_option(p, "manifest to update")
    p.set_defaults(func=_publish)


def _fetch(args: argparse.Namespace) -> int:
    from .fetch import fetch_weights
    from .manifest import split_name

    name, tag = split_name(args.spec)
    path, entry = fetch_weights(
        name, tag, manifest=args.manifest_path, progress=not args.no_progress, verify=args.verify
    )
    print(path)
    return 0


def _cache_verify(args: argparse.Namespace) -> int:
    from .fetch import cache_dir, verify_cache
    from .manifest import load_manifest

    checks = verify_cache(load_manifest(args.manifest_path), dry_run=args.dry_run, progress=args.progress)
    for check in checks:
        if check.status == "ok":
            print(f"ok  {check.path} ({check.spec})")
        elif check.status == "unknown":
            print(f"?   {check.path} (no manifest entry; left alone)")
        else:
            action = "removed" if check.removed else "would remove"
            print(f"BAD {check.path} ({check.spec}): {check.problem}; {action}")
    bad = sum(c.status == "bad" for c in checks)
    print(f"{len(checks)} file(s) checked under {cache_dir()} and the Hugging Face cache; {bad} bad")
    return 1 if bad else 0


def _publish(args: argparse.Namespace) -> int:
    from .publish import publish

    result = call_with_options(publish, args)
    verb = "would upload" if result.dry_run else "uploaded"
    print(f"{result.name}.{result.tag} -> {result.repo_id}: {verb}")
    for f in result.files:
        print(f"  {f.path_in_repo:<20} {f.size:>12} bytes  sha256 {f.sha256}")
    print(f"model card: {result.card}")
    if not result.dry_run:
        state = "new commit" if result.created_commit else "no changes, existing commit"
        print(f"{state} {result.revision}; manifest updated: {result.manifest_path}")
    return 0
