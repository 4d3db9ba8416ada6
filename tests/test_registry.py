"""Registry, model_info, and the three ways in: senet_zoo, torch.hub and timm."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from support.expected import MODEL_NAMES
from torch.utils.flop_counter import FlopCounterMode

import senet_zoo
from senet_zoo.hub.manifest import load_manifest

ALL = MODEL_NAMES
# beyond the Caffe release (tests/test_family.py, tests/test_models_paper_light.py)
FAMILY = ["se_inception_resnet_v2", "se_inception_v3", "se_vgg16_bn", "se_mobilenet", "se_shufflenet"]


def test_list_models() -> None:
    assert senet_zoo.list_models() == sorted(ALL + FAMILY)
    assert senet_zoo.list_models("se_resnext*") == ["se_resnext101_32x4d", "se_resnext50_32x4d"]
    assert senet_zoo.list_models("nothing*") == []


@pytest.mark.parametrize("name", ALL)
def test_model_info_params_and_flops(name: str) -> None:
    info = senet_zoo.model_info(name)
    with torch.device("meta"):  # shapes are all that parameter and FLOP counting need
        model = senet_zoo.create_model(name).eval()
        assert info["params"] == sum(p.numel() for p in model.parameters())
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(torch.randn(1, 3, 224, 224))
    counted_gflops = counter.get_total_flops() / 1e9  # multiply and add counted separately
    assert abs(info["gflops"] - counted_gflops) / counted_gflops <= 0.02
    assert info["top1_acc"] == pytest.approx(100 - info["top1_err"])
    assert 0 < info["top5_err"] < info["top1_err"] < 30


def test_unknown_name_lists_close_matches() -> None:
    with pytest.raises(ValueError, match=r"Unknown model 'se_resnet5'.*se_resnet50"):
        senet_zoo.create_model("se_resnet5")
    with pytest.raises(ValueError, match="Unknown model"):
        senet_zoo.model_info("resnet50x")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(num_classes=-1), "num_classes"),
        (dict(num_classes=2.5), "num_classes"),
        (dict(num_classes=True), "num_classes"),
        (dict(in_chans=0), "in_chans"),
        (dict(in_chans="3"), "in_chans"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        senet_zoo.create_model("se_resnet50", **kwargs)


@pytest.mark.parametrize(
    "kwargs,match",
    [(dict(se_gate="softmax"), "gate"), (dict(se_squeeze="median"), "squeeze"), (dict(se_reduction=0), "reduction")],
)
def test_bad_se_options_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        senet_zoo.create_model("se_resnet50", **kwargs)


@pytest.mark.parametrize("name", ["se_resnet50", "se_bn_inception"])
def test_three_ways_in_give_identical_outputs(name: str, repo_root: Path) -> None:
    x = torch.randn(2, 3, 96, 96)
    timm_name = senet_zoo.model_info(name)["timm_name"]
    builders = {
        "senet_zoo": lambda: senet_zoo.create_model(name),
        "torch.hub": lambda: torch.hub.load(str(repo_root), name, source="local"),
        "timm": lambda: timm.create_model(timm_name),
    }
    outputs = {}
    for how, build in builders.items():
        torch.manual_seed(123)
        with torch.no_grad():
            outputs[how] = build().eval()(x)
    assert torch.equal(outputs["senet_zoo"], outputs["torch.hub"])
    assert torch.equal(outputs["senet_zoo"], outputs["timm"])


def test_hubconf_entry_points_are_listed_and_documented(repo_root: Path) -> None:
    """What torch.hub.list / torch.hub.help report for a checkout (they only take GitHub repos)."""
    spec = importlib.util.spec_from_file_location("hubconf_under_test", repo_root / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    listed = [f for f in dir(hubconf) if callable(getattr(hubconf, f)) and not f.startswith("_")]
    assert sorted(listed) == sorted(ALL + FAMILY)  # the same filter torch.hub.list applies
    assert set(hubconf.dependencies) >= {"torch", "timm", "safetensors"}
    doc = hubconf.se_resnet50.__doc__
    assert "SE-ResNet-50" in doc and "weights" in doc and "28.09M parameters" in doc


def test_timm_registration_with_config_and_new_head() -> None:
    model = timm.create_model("se_resnet50", num_classes=10)
    assert model.get_classifier().out_features == 10
    cfg = model.pretrained_cfg
    assert cfg["first_conv"] == "layer0.conv1" and cfg["classifier"] == "last_linear"
    assert cfg["input_size"] == (3, 224, 224) and cfg["crop_pct"] == 0.875
    data_cfg = timm.data.resolve_data_config(model=model)  # random weights: ImageNet's, as timm's own models
    assert data_cfg["mean"] == pytest.approx((0.485, 0.456, 0.406)) and "tag" not in cfg
    default = load_manifest().get("se_resnet50")  # timm's untagged pretrained config is the default tag's
    assert timm.models.get_pretrained_cfg("se_resnet50").mean == default.preprocessing.mean
    assert set(senet_zoo.list_models()) - {"senet154"} <= set(timm.list_models("se_*"))


@pytest.mark.parametrize(
    "name,channels",
    [
        ("se_resnet50", (64, 256, 512, 1024, 2048)),
        ("senet154", (128, 256, 512, 1024, 2048)),
        ("se_bn_inception", (64, 192, 320, 608, 1024)),
    ],
)
def test_features_only(name: str, channels: tuple[int, ...]) -> None:
    timm_name = senet_zoo.model_info(name)["timm_name"]
    with torch.device("meta"):  # shape propagation only
        models = (timm.create_model(timm_name, features_only=True), senet_zoo.create_model(name, features_only=True))
    for model in models:
        assert tuple(model.feature_info.channels()) == channels
        assert tuple(model.feature_info.reduction()) == (2, 4, 8, 16, 32)
        with torch.no_grad():
            feats = model.eval()(torch.randn(1, 3, 128, 128, device="meta"))
        assert [f.shape[1] for f in feats] == list(channels)
        assert [128 // f.shape[-1] for f in feats] == [2, 4, 8, 16, 32]


TIMM_SENET154_SIGNATURE = (  # run with and without senet_zoo imported
    "import sys, timm, torch\n"
    "with torch.device('meta'):\n"
    "    m = timm.create_model('senet154')\n"
    "signature = (f'{type(m).__module__} {type(m).__name__} {sum(p.numel() for p in m.parameters())} '\n"
    "             f\"{timm.models.get_pretrained_cfg_value('senet154', 'hf_hub_id')}\")\n"
)


@pytest.mark.slow
def test_import_never_replaces_timm_senet154() -> None:
    """timm owns `senet154` (a gluon ResNet-D); importing senet_zoo must leave it untouched."""
    code = TIMM_SENET154_SIGNATURE + "assert 'senet_zoo' not in sys.modules\nprint(signature)\n"
    without_import = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    namespace: dict = {}
    exec(TIMM_SENET154_SIGNATURE, namespace)  # this process has imported senet_zoo
    assert without_import.stdout.strip() == namespace["signature"]
    assert namespace["signature"].startswith("timm.models.resnet ResNet")
    with torch.device("meta"):
        ours, direct = timm.create_model("senet_zoo_senet154"), senet_zoo.create_model("senet154")
    assert type(ours) is type(direct)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in direct.state_dict().items()}


BLOCK_TIMM = (
    "import sys\n"
    "class _Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'timm' or name.startswith('timm.'):\n"
    "            raise ImportError(f'{name} is blocked')\n"
    "sys.meta_path.insert(0, _Block())\n"
)


@pytest.mark.slow
def test_caffe_and_convert_import_without_timm(repo_root: Path) -> None:
    code = BLOCK_TIMM + (
        "import senet_zoo.caffe, senet_zoo.convert\n"
        "from senet_zoo.caffe.synth import ARCHS, synth_net\n"
        "from senet_zoo.convert.detect import detect_architecture\n"
        "net = synth_net('senet154', layers=(1, 1, 1, 1), width=16)\n"
        "assert ARCHS['senet154'].caffe_name == 'SENet' and net.layers\n"
        "assert 'timm' not in sys.modules and not hasattr(senet_zoo, 'create_model')\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


@pytest.mark.slow
def test_a_bad_manifest_breaks_only_what_uses_it(tmp_path: Path, repo_root: Path) -> None:
    broken = tmp_path / "broken manifest.json"
    broken.write_text("{not json")
    code = (
        "import senet_zoo, timm, torch\n"
        "with torch.device('meta'):\n"
        "    senet_zoo.create_model('se_resnet50'); timm.create_model('se_resnet50')\n"
        "for build in (lambda: senet_zoo.create_model('se_resnet50', pretrained=True),\n"
        "              lambda: timm.create_model('se_resnet50.cadene_in1k', pretrained=True),\n"
        "              lambda: senet_zoo.get_weights('se_resnet50')):\n"
        "    try:\n"
        "        build()\n"
        "    except senet_zoo.hub.ManifestError as exc:\n"
        "        print('error:', exc)\n"
    )
    env = dict(os.environ, SENET_ZOO_MANIFEST=str(broken))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    errors = proc.stdout.strip().splitlines()
    assert len(errors) == 3 and all(str(broken) in line for line in errors), proc.stdout
    assert str(broken) in proc.stderr  # the warning at import names the file too
