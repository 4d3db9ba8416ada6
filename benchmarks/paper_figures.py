"""Parameters and multiply-adds of the paper's further SE networks against the paper's printed figures.

arXiv:1709.01507 prints "GFLOPs" (Table 2, SE-VGG-16) and "MFLOPs" / parameters (Table 3, SE-MobileNet,
SE-ShuffleNet) at 224×224. Like the VGG, MobileNet and ShuffleNet papers it compares with, it counts
multiply-adds: VGG-16's 15.47 G, MobileNet's 569 M and ShuffleNet 1× (g = 3)'s 140 M are those
networks' multiply-add counts. Its SE increments (+10 M, +3 M, +2 M) are matched only when the SE
block's channel-wise scaling is counted too (one multiply per activation it scales); the excitation's
two fully connected layers alone add 0.23 M, 0.49 M and 0.6 M. So this counts, per network:

* ``macs``: multiply-adds of every convolution and fully connected layer (``torch.utils.flop_counter``,
  FLOPs / 2), the catalog's ``gmacs`` convention for all networks;
* ``paper_macs``: ``macs`` plus one multiply per element the SE blocks scale (the paper's count).

Parameters are every trainable tensor. The paper prints parameters with one decimal, truncated (its
ShuffleNet 1× g = 3 "1.8 M" has 1.87 M parameters, which ShuffleNet's own release calls 1.9 M).

    python benchmarks/paper_figures.py        # table, then one line of key figures

Last line: ``<name>_params_rel= <name>_macs_rel= ...`` (relative differences to the paper's figures).
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

import senet_zoo
from senet_zoo.catalog import CATALOG
from senet_zoo.models.se import SEModule

NAMES = [n for n, m in CATALOG.items() if m.paper_gmacs is not None and m.input_size == 224]


def count(name: str, size: int = 224) -> dict[str, float]:
    """Parameters, multiply-adds and the SE scaling multiplies of ``name`` at ``size``×``size``."""
    model = senet_zoo.create_model(name).eval()
    scaled = [0]

    def record(_module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        scaled[0] += output[0].numel()  # one image

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, SEModule)]
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    se_params = sum(p.numel() for m in model.modules() if isinstance(m, SEModule) for p in m.parameters())
    params = sum(p.numel() for p in model.parameters())
    macs = counter.get_total_flops() / 2
    return dict(params=params, se_params=se_params, macs=macs, paper_macs=macs + scaled[0])


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'model':<16}{'params':>12}{'paper':>8}{'rel':>8}{'GMACs':>10}{'+SE scale':>11}{'paper':>8}{'rel':>8}")
    key = []
    for name in NAMES:
        m, c = CATALOG[name], count(name)
        p_rel = c["params"] / m.paper_params - 1 if m.paper_params else None
        f_rel = c["paper_macs"] / (m.paper_gmacs * 1e9) - 1  # type: ignore[operator]
        paper_p = f"{m.paper_params / 1e6:.1f}M" if m.paper_params else "—"
        p_rel_s = f"{100 * p_rel:+.2f}%" if p_rel is not None else "—"
        print(
            f"{name:<16}{c['params']:>12,}{paper_p:>8}{p_rel_s:>8}{c['macs'] / 1e9:>10.4f}"
            f"{c['paper_macs'] / 1e9:>11.4f}{m.paper_gmacs:>8}{100 * f_rel:>+7.2f}%"
        )
        print(f"{'':<16}of which SE: {c['se_params']:,} parameters; {m.accuracy_source.split(', single')[0]}")
        if p_rel is not None:
            key.append(f"{name}_params_rel={p_rel:+.4f}")
        key.append(f"{name}_macs_rel={f_rel:+.4f}")
    print(" ".join(key))


if __name__ == "__main__":
    main()
