"""Excitation statistics against gates computed by hand from each SE module's weights, and the plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import senet_zoo
from senet_zoo.analysis import (
    ExcitationRecorder,
    ExcitationStats,
    collect_excitations,
    default_plot_blocks,
    plot_blocks,
    plot_depth,
    se_blocks,
    select_blocks,
)
from senet_zoo.models import SEModule, SENet

pytestmark = pytest.mark.usefixtures("one_thread")
CLASSES = ["a", "b", "c", "d"]  # "d" has no images: it must not enter the spread
ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


def _manual_gates(se: SEModule, x: torch.Tensor, squeeze: str, gate: str) -> torch.Tensor:
    """The SE formula written out with the module's weights: N × C (averaged over positions for NoSqueeze)."""
    s = {"avg": x.mean((2, 3), keepdim=True), "max": x.amax((2, 3), keepdim=True), "none": x}[squeeze]
    hidden = F.relu(F.conv2d(s, se.fc1.weight, se.fc1.bias))
    return ACTIVATIONS[gate](F.conv2d(hidden, se.fc2.weight, se.fc2.bias)).mean((2, 3))


def _data(n: int = 14) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    images = torch.randn(n, 3, 32, 32, generator=gen)
    labels = torch.tensor([0, 1, 2] * (n // 3) + [0] * (n % 3))
    return images, labels


@pytest.mark.parametrize("squeeze,gate", [("avg", "sigmoid"), ("max", "tanh"), ("none", "sigmoid")])
def test_per_class_statistics_match_a_direct_computation(squeeze: str, gate: str) -> None:
    torch.manual_seed(0)
    model = SENet(layers=(1, 1, 1, 1), num_classes=4, se_squeeze=squeeze, se_gate=gate).eval()
    images, labels = _data()
    tol = 0.45  # wide enough that freshly initialised gates (around 0.5) fall on both sides

    inputs: dict[str, torch.Tensor] = {}
    blocks = se_blocks(model)
    handles = [
        m.register_forward_pre_hook(lambda mod, args, b=b: inputs.__setitem__(b, args[0].detach()))
        for b, m in blocks.items()
    ]
    with torch.no_grad():
        model(images)
    for handle in handles:
        handle.remove()
    with torch.no_grad():
        manual = {b: _manual_gates(m, inputs[b], squeeze, gate).double().numpy() for b, m in blocks.items()}

    loader = DataLoader(TensorDataset(images, labels), batch_size=5)  # uneven batches: 5, 5, 4
    stats = collect_excitations(model, loader, CLASSES, tol=tol)
    assert stats.blocks == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]
    assert stats.counts.tolist() == [(labels == k).sum().item() for k in range(4)]
    present = [k for k in range(4) if (labels == k).any()]
    spread = stats.class_spread()
    saturation = stats.saturation()
    for block, gates in manual.items():
        per_class = np.stack([gates[labels.numpy() == k].mean(0) for k in present])
        np.testing.assert_allclose(stats.class_means(block)[present], per_class, atol=2e-6)
        assert np.isnan(stats.class_means(block)[3]).all()
        np.testing.assert_allclose(stats.overall_mean(block), gates.mean(0), atol=2e-6)
        assert spread[block] == pytest.approx(per_class.std(axis=0).mean(), abs=2e-6)
        assert saturation[block]["near_one"] == pytest.approx((gates >= 1 - tol).mean(), abs=1e-3)
        assert saturation[block]["near_zero"] == pytest.approx((gates <= tol).mean(), abs=1e-3)
    assert any(s["near_one"] > 0 for s in saturation.values())
    summary = stats.summary()
    assert summary["images_per_class"] == stats.counts.tolist()
    assert summary["blocks"]["layer2.0"]["class_spread"] == spread["layer2.0"]


def test_the_squeeze_and_gate_options_change_the_recorded_excitations() -> None:
    images, _ = _data(4)
    recorded = {}
    for squeeze, gate in (("avg", "sigmoid"), ("max", "sigmoid"), ("avg", "tanh")):
        torch.manual_seed(0)  # identical weights: only the option differs
        model = senet_zoo.create_model("se_resnet50", layers=[1, 1, 1, 1], se_squeeze=squeeze, se_gate=gate).eval()
        assert all(m.squeeze == squeeze and type(m.gate).__name__.lower() == gate for m in se_blocks(model).values())
        with ExcitationRecorder(model, ["layer3.0"]) as rec, torch.no_grad():
            model(images)
        recorded[(squeeze, gate)] = rec.gates["layer3.0"]
        assert rec.gates["layer3.0"].shape == (4, 1024)
    assert recorded[("avg", "sigmoid")].min() > 0
    assert recorded[("avg", "tanh")].min() < 0
    assert not torch.allclose(recorded[("avg", "sigmoid")], recorded[("max", "sigmoid")], atol=1e-3)


def test_default_options_are_the_released_layout() -> None:
    with torch.device("meta"):
        ours = senet_zoo.create_model("se_resnext50_32x4d")
        theirs = timm.create_model("legacy_seresnext50_32x4d")

    def se_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in model.state_dict().items() if ".se_module." in k}

    assert se_shapes(ours) == se_shapes(theirs) and len(se_shapes(ours)) == 16 * 4
    for se in se_blocks(ours).values():
        assert se.squeeze == "avg" and isinstance(se.gate, nn.Sigmoid)
        assert se.fc1.out_channels == se.fc2.out_channels // 16


def test_recorder_only_hooks_while_active_and_honours_max_images() -> None:
    torch.manual_seed(0)
    model = SENet(layers=(1, 1, 1, 1), num_classes=3)
    images, labels = _data(9)
    with ExcitationRecorder(model) as rec:
        assert sum(len(m.gate._forward_hooks) for m in se_blocks(model).values()) == 4
    assert sum(len(m.gate._forward_hooks) for m in se_blocks(model).values()) == 0
    assert rec.blocks == list(se_blocks(model))
    stats = collect_excitations(
        model,
        DataLoader(TensorDataset(images, labels), batch_size=4),
        ["x", "y", "z"],
        blocks=["layer4.*"],
        max_images=6,
    )
    assert stats.blocks == ["layer4.0"] and stats.counts.sum() == 6
    assert model.training  # restored
    with pytest.raises(ValueError, match="outside the 2 classes"):
        collect_excitations(model, DataLoader(TensorDataset(images, labels), batch_size=9), ["x", "y"])


def test_block_names_and_the_papers_default_selection() -> None:
    with torch.device("meta"):
        resnet = senet_zoo.create_model("se_resnet50")
        inception = senet_zoo.create_model("se_bn_inception")
    names = list(se_blocks(resnet))
    assert len(names) == 16 and names[0] == "layer1.0" and names[-1] == "layer4.2"
    # SE_2_3, SE_3_4, SE_4_6, SE_5_1, SE_5_2, SE_5_3 in the paper's numbering.
    assert default_plot_blocks(names) == ["layer1.2", "layer2.3", "layer3.5", "layer4.0", "layer4.1", "layer4.2"]
    inception_names = list(se_blocks(inception))
    assert inception_names[0] == "inception3a" and default_plot_blocks(inception_names) == inception_names
    assert select_blocks(names, ["layer4.*", "layer1.0"]) == ["layer1.0", "layer4.0", "layer4.1", "layer4.2"]
    with pytest.raises(ValueError, match="no SE block matches 'layer5.*'.*layer4.2"):
        select_blocks(names, ["layer5.*"])
    with pytest.raises(ValueError, match="no SEModule"):
        se_blocks(nn.Linear(2, 2))


def test_plots_are_valid_png_files(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SENet(layers=(1, 1, 1, 1), num_classes=4)
    images, labels = _data()
    stats = collect_excitations(model, DataLoader(TensorDataset(images, labels), batch_size=7), CLASSES)
    plot_blocks(stats, ["layer3.0", "layer4.0"], tmp_path / "blocks.png", classes=["a", "c"])
    plot_depth(stats, tmp_path / "depth.png")
    for name in ("blocks.png", "depth.png"):
        path = tmp_path / name
        assert path.stat().st_size > 0
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 150
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks.png", "depth.png"]  # no temporary files left
    with pytest.raises(ValueError, match="unknown classes"):
        plot_blocks(stats, ["layer4.0"], tmp_path / "x.png", classes=["zebra"])
    with pytest.raises(ValueError, match="not in the statistics"):
        plot_blocks(stats, ["layer9.9"], tmp_path / "x.png")


def test_every_class_is_drawn_and_the_legend_stays_inside_the_image(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    classes = [f"class {i}" for i in range(10)]
    counts = np.full(10, 5)
    sums = {b: rng.uniform(0, 1, (10, c)) * 5 for b, c in (("layer3.0", 1024), ("layer4.0", 2048))}
    stats = ExcitationStats(
        blocks=list(sums),
        classes=classes,
        counts=counts,
        gate_sums=sums,
        near_one=dict.fromkeys(sums, 0),
        near_zero=dict.fromkeys(sums, 0),
        tol=0.05,
    )
    fig = plot_blocks(stats, list(sums), tmp_path / "wide.png")
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["all images", *classes]  # every class, not 8
    for ax in fig.axes:
        assert len(ax.get_lines()) == 11
        assert "sorted" in ax.get_xlabel()  # wide blocks: channels ordered by their overall mean
        (overall,) = [line for line in ax.get_lines() if line.get_label() == "all images"]
        assert np.all(np.diff(overall.get_ydata()) >= 0)
        assert overall.get_zorder() > max(line.get_zorder() for line in ax.get_lines() if line is not overall)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    box, page = legend.get_window_extent(renderer), fig.bbox
    assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1
    chosen = plot_blocks(stats, ["layer3.0"], tmp_path / "two.png", classes=["class 3", "class 7"])
    assert [t.get_text() for t in chosen.legends[0].get_texts()] == ["all images", "class 3", "class 7"]
