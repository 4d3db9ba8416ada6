"""optimize_for_inference on every network of the SE family beyond the Caffe release.

Each one is BatchNorm-folded (no BatchNorm left; the unfused function in float64 to 1e-10 relative),
and ``precision="bf16"`` either runs its fused convolutions in bfloat16 or says, in a warning, that it
stays in float32.
"""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import senet_zoo
from senet_zoo.inference import ConvAct, _bf16_supported

# (name, input side): the Inception networks' smallest input is 75 (valid-padded stem and reductions)
FAMILY = {
    "se_vgg16_bn": 32,
    "se_mobilenet": 64,
    "se_shufflenet": 64,
    "se_inception_v3": 75,
    "se_inception_resnet_v2": 75,
}
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n != "se_shufflenet" else n for n in FAMILY]


def _model(name: str, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The network with BatchNorm statistics a trained one could have (fresh ones are identities)."""
    torch.manual_seed(0)
    model = senet_zoo.create_model(name, num_classes=10, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            assert m.running_mean is not None and m.running_var is not None
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
    return model.eval()


def _input(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    side = FAMILY[name]
    return torch.randn(2, 3, side, side, dtype=dtype, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("name", PARAMS)
def test_folded_in_float64_computes_the_unfused_function(name: str) -> None:
    model = _model(name, torch.float64)
    fused = senet_zoo.optimize_for_inference(model)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fused.modules())
    assert sum(isinstance(m, ConvAct) for m in fused.modules()) > 1  # folded into the fast-path blocks
    x = _input(name, torch.float64)
    with torch.no_grad():
        want = model(x)
    got = fused(x)
    assert got.dtype == torch.float64
    assert ((got - want).norm() / want.norm()).item() < 1e-10


@pytest.mark.skipif(_bf16_supported(torch.device("cpu")) is not None, reason="no native bfloat16 on this CPU")
@pytest.mark.parametrize("name", PARAMS)
def test_bf16_runs_every_fused_convolution_but_the_stem_in_bfloat16(name: str) -> None:
    model = _model(name)
    x = _input(name)
    with torch.no_grad():
        want = model(x)
    fast = senet_zoo.optimize_for_inference(model, precision="bf16")
    assert fast.precision == "bf16"
    convs = [m for m in fast.modules() if isinstance(m, ConvAct)]
    assert len(convs) == sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert convs[0].conv.weight.dtype == torch.float32 and convs[0].out_dtype == torch.bfloat16
    assert all(m.conv.weight.dtype == torch.bfloat16 for m in convs[1:])
    got = fast(x)
    assert got.dtype == torch.float32
    rel = ((got - want).norm() / want.norm()).item()
    assert 1e-5 < rel < 5e-2  # bfloat16 (not float32 by accident), and close


def test_bf16_says_when_nothing_runs_in_reduced_precision(caplog: pytest.LogCaptureFixture) -> None:
    """A model the fusion leaves without a convolution to convert stays float32, with a warning."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(1, 3, 8, 8))
    model.eval()
    with caplog.at_level(logging.WARNING, logger="senet_zoo.inference"):
        fast = senet_zoo.optimize_for_inference(model, precision="bf16", onednn=False)
    if _bf16_supported(torch.device("cpu")) is None:
        assert "no convolution the fusion runs in reduced precision" in caplog.text
    assert fast.precision == "fp32" and "float32 instead" in caplog.text
