"""The SE family beyond the Caffe release against the paper's figures and timm's non-SE networks.

For each network of the catalog that is not a Caffe release: parameters and multiply-accumulates of
the built model (``torch.utils.flop_counter`` on the meta device, MACs = FLOPs / 2, at the network's
input size), the same for the timm backbone it is built from, the SE overhead, the paper's figure
where the paper gives one, and the ratio built / paper. Nothing is downloaded or trained.

    python benchmarks/family.py

Last line: ``family_max_gmacs_vs_paper= family_max_params_vs_paper= family_catalog_exact=``.
"""

from __future__ import annotations

import timm
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import senet_zoo
from senet_zoo.catalog import CATALOG


def count(model: nn.Module, side: int) -> tuple[int, float]:
    """Parameters and GMACs at ``side``×``side`` (meta tensors: no memory, no compute)."""
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, side, side, device="meta"))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 2e9


def main() -> int:
    header = f"{'network':<24} {'input':>5} {'params':>11} {'GMACs':>8} {'backbone':>30} {'+params':>10} {'+GMACs':>8}"
    print(header + f" {'paper GMACs':>11} {'built/paper':>11}")
    worst_macs, worst_params, exact = 0.0, 0.0, True
    for facts in CATALOG.values():
        if facts.is_caffe_release:
            continue
        side = facts.input_size
        with torch.device("meta"):
            model = senet_zoo.create_model(facts.name)
            backbone = timm.create_model(facts.backbone.split(".")[0]) if facts.backbone else None
        params, gmacs = count(model, side)
        exact &= params == facts.params and abs(gmacs - facts.gmacs) < 5e-5
        bb_params, bb_gmacs = count(backbone, side) if backbone is not None else (0, 0.0)
        paper = facts.paper_gmacs
        ratio = gmacs / paper if paper else float("nan")
        if paper:
            worst_macs = max(worst_macs, abs(ratio - 1))
        if facts.paper_params:
            worst_params = max(worst_params, abs(params / facts.paper_params - 1))
        print(
            f"{facts.name:<24} {side:>5} {params / 1e6:>9.2f} M {gmacs:>8.3f} "
            f"{(facts.backbone or '-'):>30} {(params - bb_params) / 1e6:>8.2f} M {gmacs - bb_gmacs:>8.4f} "
            f"{(f'{paper:.2f}' if paper else '-'):>11} {(f'{ratio:.3f}' if paper else '-'):>11}"
        )
        if facts.paper_note:
            print(f"  note: {facts.paper_note}")
    print(
        f"family_max_gmacs_vs_paper={worst_macs:.4f} family_max_params_vs_paper={worst_params:.4f} "
        f"family_catalog_exact={exact}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
