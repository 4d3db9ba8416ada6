"""Run timm's own model test suite (``tests/test_models.py``) on senet-zoo's seven networks.

timm states its model contract in that file; this script takes it from the source distribution of the
installed timm version (downloaded with pip into a temporary directory, never copied into this
repository), selects the tests parametrized with one of our timm names (``arch`` or ``arch.tag``) and
runs them with ``import senet_zoo`` done before collection, so every list_models() filter in the file
(including the module-name filter of the intermediate-feature tests) sees our registrations.

    python scripts/timm_model_suite.py                       # the seven networks
    python scripts/timm_model_suite.py --control             # plus timm's legacy_seresnet50
    python scripts/timm_model_suite.py --sdist timm-1.0.31.tar.gz -- -x   # offline; extra pytest args

The pretrained tests (``test_model_load_pretrained``, ``test_model_features_pretrained``) download
weights; they are deselected unless ``--with-download`` is given. The last line is pytest's summary.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOWNLOAD_TESTS = ("test_model_load_pretrained", "test_model_features_pretrained")

CONFTEST = """
EXTRA_NAMES, SKIP_NAMES = {extra!r}, {skip!r}

import senet_zoo  # registers the models with timm before test_models.py builds its parameter lists
from senet_zoo.catalog import CATALOG

NAMES = {m.timm_name for m in CATALOG.values()} | set(EXTRA_NAMES)
SKIP_FUNCTIONS = set(SKIP_NAMES)


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        name = callspec.params.get("model_name") if callspec else None
        ours = isinstance(name, str) and name.split(".")[0] in NAMES
        (keep if ours and item.originalname not in SKIP_FUNCTIONS else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep
"""

PYTEST_INI = """[pytest]
markers =
    base
    cfg
    cfg_nonstd
    forward
    backward
    torchscript
    features
    fxforward
    fxbackward
    timeout
filterwarnings = ignore::DeprecationWarning
"""


def fetch_test_file(dest: Path, sdist: Path | None) -> Path:
    """Extract tests/test_models.py from timm's sdist (downloaded for the installed version unless given)."""
    version = importlib.metadata.version("timm")
    if sdist is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", f"timm=={version}",
             "-d", str(dest), "-q"],
            check=True,
        )  # fmt: skip
        sdist = next(dest.glob(f"timm-{version}.tar.gz"))
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/tests/test_models.py"))
        if f"timm-{version}/" not in member.name:
            print(f"warning: {sdist} is not timm {version} (the installed version)", file=sys.stderr)
        source = tar.extractfile(member)
        assert source is not None
        target = dest / "test_models.py"
        target.write_bytes(source.read())
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sdist", type=Path, help="a timm source archive to use instead of downloading one")
    parser.add_argument("--control", action="store_true", help="also run timm's legacy_seresnet50")
    parser.add_argument("--with-download", action="store_true", help="keep the tests that download weights")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="timm-suite-") as tmp:
        work = Path(tmp)
        test_file = fetch_test_file(work, args.sdist)
        extra = ["legacy_seresnet50"] if args.control else []
        skip = [] if args.with_download else list(DOWNLOAD_TESTS)
        (work / "conftest.py").write_text(CONFTEST.replace("{extra!r}", repr(extra)).replace("{skip!r}", repr(skip)))
        (work / "pytest.ini").write_text(PYTEST_INI)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        cmd = [sys.executable, "-m", "pytest", str(test_file), "-c", str(work / "pytest.ini"), "--rootdir", tmp]
        cmd += ["-q", "-rfE", "-p", "no:cacheprovider", *args.pytest_args]
        print("$", " ".join(cmd), flush=True)
        return subprocess.run(cmd, cwd=tmp, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
