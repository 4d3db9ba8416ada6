"""Fine-tuning with the default settings on real data no one here made: scikit-learn's digits.

Writes the bundled digits (1,437 train / 360 val images, 10 classes, 8×8 greyscale; nothing is
downloaded) as an ImageFolder and runs, as a new user would,

    senet-zoo finetune --model se_resnet50 --pretrained none --data DIR --img-size 32 --epochs 4

with every other option at its default. Prints val top-1 per epoch, seconds per epoch, and checks
the target (>= 90 % val top-1 within 4 epochs). ``--contention`` then measures the CPU-sharing
target: the same run (``--contention-epochs`` epochs) alone and next to a busy process (a Python
busy loop), one after the other in this run, and prints seconds per epoch and the ratio (target
<= 3x). The machine's load average is printed before each run: on a shared machine the numbers are
noisy, the ratio measured in the same run is what counts. ``--omp-wait-policy PASSIVE`` measures
what ``senet-zoo --passive-openmp`` gives (by default the runs keep OpenMP's own spinning default).

    python scripts/finetune_digits.py [--work DIR] [--contention] [--epochs 4]

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from senet_zoo.finetune.metrics import read_metrics_csv
from senet_zoo.finetune.synthetic import make_digits_folder

WAIT_POLICY: str | None = None  # --omp-wait-policy


def finetune(data: Path, out: Path, epochs: int, *extra: str) -> tuple[dict, list[dict]]:
    """Run the CLI as a user would (a fresh process, the user's environment minus OMP_NUM_THREADS)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if WAIT_POLICY is not None:
        env["OMP_WAIT_POLICY"] = WAIT_POLICY
    cmd = [sys.executable, "-m", "senet_zoo.cli", "finetune", "--model", "se_resnet50", "--pretrained", "none"]
    cmd += ["--data", str(data), "--out", str(out), "--img-size", "32", "--epochs", str(epochs), "--json"]
    cmd += ["--no-progress", *extra]
    print(f"$ {' '.join(cmd[1:])}   (load average {os.getloadavg()[0]:.1f})", flush=True)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"finetune failed with exit status {proc.returncode}")
    return json.loads(proc.stdout), read_metrics_csv(out / "metrics.csv")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--target", type=float, default=90.0, help="val top-1 (%%) to reach")
    parser.add_argument("--contention", action="store_true", help="also measure alone vs next to a busy process")
    parser.add_argument("--contention-epochs", type=int, default=1)
    parser.add_argument("--skip-accuracy", action="store_true", help="only the contention measurement")
    parser.add_argument(
        "--omp-wait-policy",
        metavar="VALUE",
        help="set OMP_WAIT_POLICY for the runs (default: unset, the OpenMP runtime's own spinning default); "
        "PASSIVE is what `senet-zoo --passive-openmp` sets",
    )
    args = parser.parse_args()
    global WAIT_POLICY
    WAIT_POLICY = args.omp_wait_policy
    work = args.work or Path(tempfile.mkdtemp(prefix="digits-"))
    data = work / "digits"
    if not data.exists():
        make_digits_folder(data)
    ok = True
    if not args.skip_accuracy:
        summary, rows = finetune(data, work / f"run-{time.time_ns()}", args.epochs)
        for row in rows:
            print(f"epoch {int(row['epoch'])}: val top-1 {row['val_top1']:.2f}%  {row['epoch_time_s']:.1f} s/epoch")
        best = summary["best"]["val_top1"]
        mean_time = sum(r["epoch_time_s"] for r in rows) / len(rows)
        print(
            f"RESULT digits: best val top-1 {best:.2f}% within {args.epochs} epochs "
            f"(target >= {args.target}%), {mean_time:.1f} s/epoch, threads {summary['threads']}, "
            f"workers {summary['workers']}, augmentation {summary['augmentation']['preset']}"
        )
        ok &= best >= args.target
    if args.contention:
        n = args.contention_epochs
        _, alone = finetune(data, work / f"alone-{time.time_ns()}", n)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            _, shared = finetune(data, work / f"busy-{time.time_ns()}", n)
        finally:
            busy.kill()
            busy.wait()
        _, alone_again = finetune(data, work / f"alone-{time.time_ns()}", n)
        t_alone = min(sum(r["epoch_time_s"] for r in alone), sum(r["epoch_time_s"] for r in alone_again)) / n
        t_alone_max = max(sum(r["epoch_time_s"] for r in alone), sum(r["epoch_time_s"] for r in alone_again)) / n
        t_busy = sum(r["epoch_time_s"] for r in shared) / n
        print(
            f"RESULT contention: {t_alone:.1f} s/epoch alone (second alone run {t_alone_max:.1f}), "
            f"{t_busy:.1f} s/epoch next to a busy process: {t_busy / t_alone:.2f}x (target <= 3x)"
        )
        ok &= t_busy / t_alone <= 3.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
