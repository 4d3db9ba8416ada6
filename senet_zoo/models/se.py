"""The Squeeze-and-Excitation block and the paper's ablation variants (§6, §7).

Squeeze: global pooling C×H×W → C. Excitation: 1×1 conv C → C/r (with bias), ReLU, 1×1 conv C/r → C
(with bias), gate. Scale: multiply each channel by its gate. The defaults (average squeeze, sigmoid
gate, r = 16) are exactly the released models; the options reproduce the paper's ablations.
"""

from collections.abc import Callable
from functools import partial
from typing import Any, TypedDict

import torch
from torch import nn

__all__ = [
    "SEModule",
    "SEOptions",
    "ModelArgs",
    "WithSE",
    "split_se",
    "SQUEEZE_OPS",
    "GATES",
    "OPEN_GATE_BIAS",
    "se_layer",
]

SQUEEZE_OPS = ("avg", "max", "none")
GATES = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
# The excitation bias that opens each gate when the excitation weights are zero: relu(1) = 1 exactly;
# sigmoid(9) = 1 - 1.2e-4 and tanh(5) = 1 - 9.1e-5, so a network of tens of SE blocks starts within about
# 1e-3 of its backbone while the gate's gradient (about 1e-4) stays far from float32's underflow.
OPEN_GATE_BIAS = {"sigmoid": 9.0, "tanh": 5.0, "relu": 1.0}


class SEModule(nn.Module):
    """Channel recalibration ``x * gate(fc2(relu(fc1(squeeze(x)))))``.

    Args:
        channels: input (and output) channels C.
        reduction: ratio r; the bottleneck has ``channels // reduction`` channels.
        squeeze: ``"avg"`` (paper default), ``"max"``, or ``"none"`` (the paper's NoSqueeze: the 1×1
            convolutions run on the full map, so the gate varies per position).
        gate: ``"sigmoid"`` (default), ``"tanh"`` or ``"relu"``.
        device / dtype: where and in which precision the parameters are created.

    State-dict keys (``fc1``, ``fc2``) are those of timm's legacy SENet, for every option.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        squeeze: str = "avg",
        gate: str = "sigmoid",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if squeeze not in SQUEEZE_OPS:
            raise ValueError(f"squeeze must be one of {SQUEEZE_OPS}, got {squeeze!r}")
        if gate not in GATES:
            raise ValueError(f"gate must be one of {tuple(GATES)}, got {gate!r}")
        if reduction < 1 or channels // reduction < 1:
            raise ValueError(f"reduction {reduction} leaves no channels for {channels} input channels")
        self.squeeze = squeeze
        dd = dict(device=device, dtype=dtype)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, **dd)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, **dd)
        self.gate_kind = gate
        self.gate = GATES[gate]()

    @torch.no_grad()
    def open_gate_(self) -> None:
        """Make the block (nearly) the identity: zero excitation weights, a bias that opens the gate.

        Used when a non-SE backbone's weights are loaded, so the SE network starts as the backbone.
        """
        nn.init.zeros_(self.fc2.weight)
        self.fc2.bias.fill_(OPEN_GATE_BIAS[self.gate_kind])  # type: ignore[union-attr]  # built with a bias

    def excitation(self, x: torch.Tensor) -> torch.Tensor:
        """The gate: N×C×1×1 (N×C×H×W for NoSqueeze). Hook ``self.gate`` to record it."""
        if self.squeeze == "avg":
            s = x.mean((2, 3), keepdim=True)
        elif self.squeeze == "max":
            s = x.amax((2, 3), keepdim=True)
        else:
            s = x
        return self.gate(self.fc2(self.relu(self.fc1(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excitation(x)


class SEOptions(TypedDict, total=False):
    """The SE keyword arguments every senet_zoo network accepts (``create_model(name, se_reduction=8)``)."""

    se_reduction: int  # SEModule's reduction (paper default 16)
    se_squeeze: str  # SEModule's squeeze: "avg" | "max" | "none"
    se_gate: str  # SEModule's gate: "sigmoid" | "tanh" | "relu"


class ModelArgs(SEOptions, total=False):
    """timm's model arguments plus :class:`SEOptions`: what every family's constructor takes as
    ``**kwargs: Unpack[ModelArgs]``. Defaults: 1000 classes, 3 input channels, no dropout, average pooling."""

    num_classes: int
    in_chans: int
    drop_rate: float
    global_pool: str
    device: Any
    dtype: Any


def se_layer(se_reduction: int = 16, se_squeeze: str = "avg", se_gate: str = "sigmoid") -> Callable[..., SEModule]:
    """The SE block factory of one network: ``se_layer(**options)(channels, device=..., dtype=...)``.

    Each family builds it once from its :class:`SEOptions` and passes it down to its blocks, as timm
    passes ``se_layer``.
    """
    return partial(SEModule, reduction=se_reduction, squeeze=se_squeeze, gate=se_gate)


def split_se(kwargs: ModelArgs) -> tuple[Callable[..., SEModule], dict[str, Any]]:
    """(:func:`se_layer` of the :class:`SEOptions` in ``kwargs``, the other arguments: timm's)."""
    se: dict[str, Any] = {k: v for k, v in kwargs.items() if k in SEOptions.__annotations__}
    return se_layer(**se), {k: v for k, v in kwargs.items() if k not in se}


class WithSE(nn.Module):
    """Base of a timm module rebuilt with an SE block ``se`` of ``se_chs`` channels, its other keys unchanged.

    ``class SEBlock(WithSE, TimmBlock)``: every other argument goes to ``TimmBlock``; the subclass's
    ``forward`` says where ``self.se`` acts.
    """

    def __init__(self, *args: Any, se_layer: Callable[..., SEModule], se_chs: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.se = se_layer(se_chs, device=kwargs.get("device"), dtype=kwargs.get("dtype"))
