"""optimize_for_inference: same logits as the unfused model for every architecture; refuses training."""

from __future__ import annotations

import copy
import io
import json
import sys

import pytest
import torch
from torch import nn

import senet_zoo
from senet_zoo.inference import InferenceModel, fold_bn, optimize_for_inference

# (name, batch, input size): reduced inputs where the network allows them; the two the brief names at 224.
ARCHS = [
    ("se_resnet50", 2, 96),
    ("se_resnet101", 1, 64),
    ("se_resnet152", 1, 64),
    ("se_resnext50_32x4d", 2, 96),
    ("se_resnext101_32x4d", 1, 64),
    ("senet154", 1, 64),
    ("se_bn_inception", 1, 224),
]
TOL = 1e-4


def _randomize_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine terms, so folding them changes every convolution."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) * 0.2 - 0.1)
    return model


def _model(name: str, **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return _randomize_bn(senet_zoo.create_model(name, **kwargs)).eval()


def _reference_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The unfused logits, after scaling the classifier so that they spread like a trained model's
    (std 4, a max of 10-15): with random weights they are tiny or, in deep nets, large, and an absolute
    tolerance would mean little."""
    with torch.no_grad():
        feats = model.forward_features(x)
        model.get_classifier().weight.mul_(4.0 / model.forward_head(feats).std())
        return model.forward_head(feats)


def _assert_close(fast: torch.Tensor, ref: torch.Tensor) -> None:
    assert fast.shape == ref.shape
    assert (fast - ref).abs().max().item() <= TOL


@pytest.fixture(scope="module")
def resnet50() -> nn.Module:
    return _model("se_resnet50")


@pytest.mark.slow
@pytest.mark.parametrize("name,batch,size", ARCHS, ids=[a[0] for a in ARCHS])
def test_fused_logits_equal_unfused(name: str, batch: int, size: int) -> None:
    model = _model(name)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    ref = _reference_logits(model, x)
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    out = fast(x)
    _assert_close(out, ref)
    assert not out.requires_grad


@pytest.mark.parametrize("channels_last,onednn", [(False, False), (True, False), (False, True)])
def test_every_fast_path_option_is_exact(resnet50: nn.Module, channels_last: bool, onednn: bool) -> None:
    x = torch.randn(2, 3, 64, 64)
    ref = _reference_logits(resnet50, x)
    _assert_close(optimize_for_inference(resnet50, channels_last=channels_last, onednn=onednn)(x), ref)


@pytest.mark.parametrize("squeeze,gate", [("max", "tanh"), ("none", "relu")])
def test_se_ablation_variants_fuse_exactly(squeeze: str, gate: str) -> None:
    model = _model("se_resnet50", se_squeeze=squeeze, se_gate=gate)
    x = torch.randn(2, 3, 64, 64)
    ref = _reference_logits(model, x)
    _assert_close(optimize_for_inference(model)(x), ref)


def test_features_only_model_fuses(resnet50: nn.Module) -> None:
    feats = _randomize_bn(senet_zoo.create_model("se_resnet50", features_only=True)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = feats(x)
    out = optimize_for_inference(feats)(x)
    assert len(out) == len(ref) == 5
    for a, b in zip(out, ref):
        assert a.shape == b.shape and (a - b).abs().max().item() <= TOL * max(1.0, b.abs().max().item())


def test_forward_features_and_head_are_fused_too(resnet50: nn.Module) -> None:
    x = torch.randn(1, 3, 64, 64)
    fast = optimize_for_inference(resnet50)
    with torch.no_grad():
        feats = resnet50.forward_features(x)
        pre = resnet50.forward_head(feats, pre_logits=True)
    fast_feats = fast.forward_features(x)
    assert (fast_feats - feats).abs().max().item() <= TOL * feats.abs().max().item()
    assert (fast.forward_head(fast_feats, pre_logits=True) - pre).abs().max().item() <= TOL * pre.abs().max().item()


def test_fold_bn_matches_conv_then_bn_for_grouped_strided_conv() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=4, bias=True)
    bn = _randomize_bn(nn.BatchNorm2d(16)).eval()
    x = torch.randn(2, 8, 9, 9)
    with torch.no_grad():
        ref = bn(conv(x))
        out = fold_bn(conv, bn)(x)
    assert (out - ref).abs().max().item() < 1e-5
    assert fold_bn(conv, bn).weight.requires_grad is False


def test_refuses_a_model_in_train_mode() -> None:
    model = senet_zoo.create_model("se_resnet50")  # train mode, as built
    with pytest.raises(RuntimeError, match="eval mode"):
        optimize_for_inference(model)


def test_fused_model_refuses_training(resnet50: nn.Module) -> None:
    fast = optimize_for_inference(resnet50)
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(RuntimeError, match="cannot be trained"):
        fast.train()
    with pytest.raises(RuntimeError, match="cannot be trained"):
        fast.model.layer1.train()  # a fused block refuses too, even reached directly
    fast.eval()
    fast.model.training = True  # flipped behind its back: the call refuses
    with pytest.raises(RuntimeError, match="cannot be trained"):
        fast(x)
    fast.model.training = False
    assert fast(x).shape == (1, 1000)


def test_source_model_stays_trainable_and_independent(resnet50: nn.Module) -> None:
    model = copy.deepcopy(resnet50)
    fast = optimize_for_inference(model)
    x = torch.randn(1, 3, 64, 64)
    before = fast(x).clone()
    model.train()  # the unfused model remains the one to train
    loss = model(torch.randn(2, 3, 32, 32)).square().mean()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert model.layer1[0].bn1.training and not fast.training
    assert torch.equal(fast(x), before)  # the fused model shares no tensor with its source


def test_fused_model_copies_and_pickles(resnet50: nn.Module) -> None:
    fast = optimize_for_inference(resnet50)
    x = torch.randn(1, 3, 64, 64)
    ref = fast(x)
    buf = io.BytesIO()
    torch.save(fast, buf)
    buf.seek(0)
    for clone in (copy.deepcopy(fast), torch.load(buf, weights_only=False)):
        assert isinstance(clone, InferenceModel)
        assert torch.equal(clone(x), ref)
    assert optimize_for_inference(fast) is fast
    assert fast.pretrained_cfg == resnet50.pretrained_cfg


def test_refuses_what_it_cannot_fold(resnet50: nn.Module) -> None:
    with pytest.raises(ValueError, match="onednn=True"):
        optimize_for_inference(resnet50, onednn=True, compile=True)
    stray_bn = nn.Sequential(nn.ReLU(), nn.BatchNorm2d(3)).eval()
    with pytest.raises(ValueError, match="cannot fold BatchNorm"):
        optimize_for_inference(stray_bn)
    with torch.device("meta"):
        meta = senet_zoo.create_model("se_resnet50").eval()
    with pytest.raises(ValueError, match="meta device"):
        optimize_for_inference(meta)


def test_early_squeeze_gives_the_gate_of_the_output(resnet50: nn.Module) -> None:
    """Where it reads less memory, the gate comes from the last 1×1 convolution's input
    (mean(conv3(h)) = conv3 applied to mean(h)); it must equal the gate computed from the output."""
    fast = optimize_for_inference(resnet50, onednn=False)
    stage1, stage4 = fast.model.layer1[1], fast.model.layer4[1]
    with torch.inference_mode():
        h = torch.rand(2, 64, 56, 56).contiguous(memory_format=torch.channels_last)
        early = stage1._early_gate(h)
        assert early is not None
        late = stage1.se.gate(stage1.conv3(h))
        assert (early - late).abs().max().item() <= 1e-5
        assert stage4._early_gate(torch.rand(1, 512, 7, 7)) is None  # 2048×512 weights outweigh a 7×7 map


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning is Linux-only")
def test_freed_activation_memory_is_reused_without_page_faults() -> None:
    """In a fresh process that opts in first thing (the setting is process-wide: a user opts in at start-up;
    this test process has allocated too much already for the heap to grow where glibc needs it), next to
    one that does not (glibc's default: every large block is unmapped on free and faulted in again).

    The heap settles within the first calls: torch asks for 64-byte aligned blocks, and glibc's memalign
    wants a free chunk a little larger than the block, so the heap grows to two or three blocks before
    every later call finds one (measured: the third to fifth call is the last to fault; 20 runs)."""
    import subprocess

    script = """
import json, resource, sys
import torch
from senet_zoo.inference import reuse_freed_memory
if sys.argv[1] == "opt-in" and not reuse_freed_memory():
    sys.exit(3)
numel = 48 * 2**20 // 4  # 48 MiB: above glibc's largest mmap threshold, so mmap'ed by default
faults = []
for _ in range(12):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.empty(numel).fill_(1.0)  # allocated, touched, freed
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(faults))
"""

    def faults(mode: str) -> list[int]:
        proc = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=300)
        if proc.returncode == 3:
            pytest.skip("not glibc")
        assert proc.returncode == 0, proc.stderr
        counts: list[int] = json.loads(proc.stdout)
        return counts

    default, reusing = faults("default"), faults("opt-in")
    assert all(n > 10_000 for n in default[-6:]), default  # 12 288 pages, each faulted in again after the unmap
    assert all(n < 1000 for n in reusing[-6:]), reusing


# ------------------------------------------------------------------ inference_mode, torch.export, precision
SMALL = dict(layers=(1, 1, 1, 1))


@pytest.mark.parametrize("onednn", [True, False])
def test_fused_under_inference_mode_runs(onednn: bool) -> None:
    """Fused inside torch.inference_mode (its weights are then inference tensors, without version counter)."""
    model = _model("se_resnext50_32x4d", **SMALL)
    x = torch.randn(2, 3, 64, 64)
    ref = _reference_logits(model, x)
    with torch.inference_mode():
        fast = optimize_for_inference(model, onednn=onednn)
        _assert_close(fast(x), ref)
        _assert_close(fast(x), ref)  # the packed-weight cache is hit, not rebuilt
    _assert_close(fast(x), ref)


def test_fused_model_exports_with_torch_export_and_jit_trace() -> None:
    model = _model("se_resnet50", **SMALL)
    x = torch.randn(2, 3, 64, 64)
    ref = _reference_logits(model, x)
    fast = optimize_for_inference(model)  # oneDNN packed weights for eager calls
    fast(x)
    exported = torch.export.export(fast, (x,))
    _assert_close(exported.module()(x), ref)
    traced = torch.jit.trace(fast.model, (x,), check_trace=False)
    _assert_close(traced(x), ref)


def _bf16_native() -> bool:
    from senet_zoo.inference import _bf16_supported

    return _bf16_supported(torch.device("cpu")) is None


@pytest.mark.skipif(not _bf16_native(), reason="this CPU has no native bfloat16 (AVX512-BF16/AMX)")
@pytest.mark.parametrize("name", ["se_resnet50", "senet154", "se_bn_inception"])
def test_bf16_fast_path_is_close_and_keeps_its_float32_islands(name: str) -> None:
    from senet_zoo.inference import ConvAct, FusedSE

    model = _model(name, **({} if name == "se_bn_inception" else SMALL))
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    ref = _reference_logits(model, x)
    with torch.inference_mode():
        fast = optimize_for_inference(model, precision="bf16")
        out = fast(x)
    assert fast.precision == "bf16" and out.dtype == torch.float32
    rel = ((out - ref).abs().max() / ref.abs().max()).item()
    assert 1e-5 < rel < 5e-2  # bfloat16 (not float32 by accident), and close
    convs = [m for m in fast.modules() if isinstance(m, ConvAct)]
    assert convs[0].conv.weight.dtype == torch.float32 and convs[0].out_dtype == torch.bfloat16  # the stem
    assert all(m.conv.weight.dtype == torch.bfloat16 for m in convs[1:])
    assert all(p.dtype == torch.float32 for m in fast.modules() if isinstance(m, FusedSE) for p in m.parameters())
    assert fast.model.get_classifier().module.weight.dtype == torch.float32
    feats = fast.forward_features(x)
    assert feats.dtype == torch.float32 and feats.is_contiguous(memory_format=torch.channels_last)


def test_bf16_falls_back_to_float32_with_a_warning_where_not_native(
    resnet50: nn.Module, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    x = torch.randn(1, 3, 64, 64)
    ref = _reference_logits(resnet50, x)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    with caplog.at_level("WARNING", logger="senet_zoo.inference"):
        fast = optimize_for_inference(resnet50, precision="bf16")
    assert fast.precision == "fp32"
    assert "without oneDNN" in caplog.text and "float32 instead" in caplog.text
    _assert_close(fast(x), ref)


def test_precision_is_checked(resnet50: nn.Module) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        optimize_for_inference(resnet50, precision="int8")
    with pytest.raises(ValueError, match="for CUDA"):
        optimize_for_inference(resnet50, precision="fp16")
    fast = optimize_for_inference(resnet50)
    assert optimize_for_inference(fast, precision="float32") is fast
    with pytest.raises(ValueError, match="already fused"):
        optimize_for_inference(fast, precision="bf16")


def test_glibc_memory_reuse_is_opt_in(resnet50: nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    import senet_zoo.inference as inference

    calls: list[bool] = []
    monkeypatch.setattr(inference, "reuse_freed_memory", lambda: calls.append(True) or True)
    optimize_for_inference(resnet50)
    assert calls == []  # no process-wide allocator change from a library call by default
    optimize_for_inference(resnet50, reuse_memory=True)
    assert calls == [True]
