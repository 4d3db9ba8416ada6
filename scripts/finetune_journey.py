"""A fine-tuned model's journey, as a user takes it, on real data no one here made: scikit-learn's digits.

For each model (default: se_resnet50, which plain timm loads, and se_bn_inception, which needs senet_zoo):

1. ``senet-zoo finetune --model M --pretrained none --data DIGITS --img-size 32 --out RUN`` (defaults otherwise);
2. ``senet-zoo evaluate --weights RUN --data DIGITS/val``: the reference top-1;
3. ``senet-zoo export RUN``, then the ONNX file in ONNX Runtime with the preprocessing (input size, resize,
   crop, mean, std) and the label names read from the file's metadata only: its top-1;
4. ``senet-zoo publish RUN --repo-id ...`` to a Hub emulator on 127.0.0.1 (tests/support/hub_server.py);
5. in a fresh process with an empty Hugging Face cache: plain ``timm.create_model("hf-hub:...",
   pretrained=True)`` without senet_zoo (the ResNet family), or ``senet_zoo.create_model("hf-hub:...")``
   (se_bn_inception), evaluated with the transform of its own pretrained config: its top-1;
6. ``senet_zoo.create_model(M, pretrained=RUN)``: its logits against the checkpoint's tensors loaded into a
   plainly built network.

Every top-1 must equal evaluate's and the logits must be identical; exit status 1 otherwise. Prints one
line per step and, with ``--json``, a JSON summary last. ``--train-size``/``--val-size``/``--epochs``
shrink the run (the end-to-end test uses a tiny one).

    python scripts/finetune_journey.py [--work DIR] [--epochs 4] [--models se_resnet50 se_bn_inception]
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ORG = "journey"
# The fresh-process check: the model's own pretrained config gives the transform; labels map outputs to folders.
EVALUATE_HUB = """
import json, sys
import torch, timm
from torchvision.datasets import ImageFolder
repo, val, route = sys.argv[1:4]
if route == "senet_zoo":
    import senet_zoo
    model = senet_zoo.create_model("hf-hub:" + repo)
else:
    model = timm.create_model("hf-hub:" + repo, pretrained=True)
model.eval()
cfg = timm.data.resolve_data_config(model=model)
data = ImageFolder(val, transform=timm.data.create_transform(**cfg))
labels = model.pretrained_cfg["label_names"]
correct = 0
with torch.no_grad():
    for image, target in torch.utils.data.DataLoader(data, batch_size=64):
        pred = model(image).argmax(1)
        correct += sum(labels[p] == data.classes[t] for p, t in zip(pred.tolist(), target.tolist()))
print(json.dumps({"top1": 100.0 * correct / len(data), "senet_zoo_imported": "senet_zoo" in sys.modules,
                  "architecture": type(model).__name__, "input_size": list(cfg["input_size"])}))
"""


def _emulator() -> Any:
    sys.path.insert(0, str(REPO / "tests"))  # the test suite's Hub emulator: tests/support/hub_server.py
    from support.hub_server import HubEmulator

    return HubEmulator


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "SENET_ZOO_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return {**env, **extra}


def _run(cmd: list[str], env: dict[str, str], timeout: float = 1800) -> str:
    shown = " ".join(c if len(c) < 60 else "..." + c[-40:] for c in cmd[1:])
    print(f"$ {shown}", flush=True)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {shown}\n{proc.stderr[-3000:]}")
    return proc.stdout


def _cli(*args: str, env: dict[str, str]) -> str:
    return _run([sys.executable, "-m", "senet_zoo.cli", *args], env)


def onnx_top1(onnx_file: Path, val: Path) -> tuple[float, dict[str, Any]]:
    """Top-1 of ``onnx_file`` in ONNX Runtime over ``val``; preprocessing and labels from its metadata only."""
    import numpy as np
    import onnxruntime as ort
    from timm.data import create_transform
    from torchvision.datasets import ImageFolder

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    pre, labels = json.loads(meta["preprocessing"]), json.loads(meta["label_names"])
    transform = create_transform(
        input_size=tuple(pre["input_size"]),
        interpolation=pre["interpolation"],
        mean=tuple(pre["mean"]),
        std=tuple(pre["std"]),
        crop_pct=pre["crop_pct"],
        crop_mode=pre["crop_mode"],
    )
    data = ImageFolder(str(val), transform=transform)
    name = session.get_inputs()[0].name
    correct = 0
    for start in range(0, len(data), 64):
        items = [data[i] for i in range(start, min(start + 64, len(data)))]
        batch = np.stack([x.numpy() for x, _ in items])
        pred = session.run(None, {name: batch})[0].argmax(1)
        correct += sum(labels[p] == data.classes[t] for p, (_, t) in zip(pred.tolist(), items))
    return 100.0 * correct / len(data), pre


def same_logits(model_name: str, run: Path) -> dict[str, Any]:
    """``create_model(name, pretrained=RUN)`` against the run's tensors in a plainly built network."""
    import torch
    from safetensors.torch import load_file

    import senet_zoo

    loaded = senet_zoo.create_model(model_name, pretrained=str(run)).eval()
    tensors = load_file(str(run / "best.safetensors"))
    plain = senet_zoo.create_model(model_name, num_classes=loaded.num_classes).eval()
    plain.load_state_dict(tensors)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = loaded(x), plain(x)
    return dict(
        identical=bool(torch.equal(a, b)),
        num_classes=loaded.num_classes,
        labels=list(loaded.pretrained_cfg.get("label_names") or []),
        input_size=list(loaded.pretrained_cfg["input_size"]),
    )


def journey(model: str, data: Path, work: Path, hub: Any, epochs: int | None) -> dict[str, Any]:
    env = _env()
    run = work / f"run-{model}"
    extra = ["--epochs", str(epochs)] if epochs else []
    started = time.perf_counter()
    out = _cli(
        "finetune", "--model", model, "--pretrained", "none", "--data", str(data), "--out", str(run),
        "--img-size", "32", "--json", "-q", *extra, env=env,
    )  # fmt: skip
    summary = json.loads(out)
    result: dict[str, Any] = dict(
        model=model,
        epochs=summary["epochs"],
        best_val_top1=summary["best"]["val_top1"],
        finetune_s=round(time.perf_counter() - started, 1),
    )
    print(f"  {model}: best val top-1 {result['best_val_top1']:.2f}% after {result['epochs']} epochs")
    evaluated = json.loads(_cli("evaluate", "--weights", str(run), "--data", str(data / "val"), "--json", env=env))
    result["evaluate_top1"] = evaluated["top1"]
    onnx_file = work / f"{model}.onnx"
    _cli("export", str(run), "--out", str(onnx_file), "-q", env=env)
    result["onnx_top1"], result["onnx_preprocessing"] = onnx_top1(onnx_file, data / "val")
    repo = f"{ORG}/{model}-digits"
    home = work / f"home-{model}"
    hub_env = _env(**hub.client_env(home / "publish"))
    _cli("publish", str(run), "--repo-id", repo, "--dataset", "sklearn-digits", env=hub_env)
    route = "timm" if model != "se_bn_inception" else "senet_zoo"
    fresh = _env(**hub.client_env(home / "fresh"))  # an empty Hugging Face cache
    loaded = json.loads(
        _run([sys.executable, "-c", EVALUATE_HUB, repo, str(data / "val"), route], fresh).splitlines()[-1]
    )
    result.update(hub_route=route, hub_top1=loaded["top1"], hub_senet_zoo_imported=loaded["senet_zoo_imported"])
    result["hub_architecture"], result["hub_input_size"] = loaded["architecture"], loaded["input_size"]
    result["create_model_run"] = same_logits(model, run)
    result["ok"] = (
        result["evaluate_top1"] == result["onnx_top1"] == result["hub_top1"]
        and result["create_model_run"]["identical"]
        and (route == "senet_zoo" or not loaded["senet_zoo_imported"])
    )
    print(
        f"  {model}: top-1 evaluate {result['evaluate_top1']:.2f}%  ONNX Runtime {result['onnx_top1']:.2f}%  "
        f"hf-hub ({route}, {loaded['architecture']}) {result['hub_top1']:.2f}%  create_model(pretrained=RUN) "
        f"logits identical: {result['create_model_run']['identical']}  -> {'OK' if result['ok'] else 'MISMATCH'}",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--models", nargs="+", default=["se_resnet50", "se_bn_inception"])
    parser.add_argument("--epochs", type=int, default=4, help="finetune --epochs (0: finetune's default)")
    parser.add_argument("--train-size", type=int, help="training images (default: all 1,437)")
    parser.add_argument("--val-size", type=int, default=360, help="validation images")
    parser.add_argument("--json", action="store_true", help="print a JSON summary last")
    args = parser.parse_args()
    from senet_zoo.finetune.synthetic import make_digits_folder

    work = args.work or Path(tempfile.mkdtemp(prefix="journey-"))
    data = work / "digits"
    if not data.exists():
        make_digits_folder(data, val_size=args.val_size, train_size=args.train_size)
    with _emulator()(token="hf_journey_token", lifetime_s=3600) as hub:
        results = [journey(m, data, work, hub, args.epochs or None) for m in args.models]
    if args.json:
        print(json.dumps(results))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
