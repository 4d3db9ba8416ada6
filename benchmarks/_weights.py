"""Random weights for the benchmarks, written as safetensors (no downloads)."""

from __future__ import annotations

from pathlib import Path

import torch

CLASSIFIER_GAIN = 50.0  # se_resnet50 logits: std ≈ 4, max ≈ 12 on N(0, 1) images


def write_random_weights(model_name: str, directory: Path, seed: int = 0) -> Path:
    """A ``<model_name>.safetensors`` in ``directory`` with random weights and non-trivial BatchNorm
    statistics (so folding them is exercised), its pages left in the page cache.

    The classifier is scaled up so that the logits spread over a few units, as a trained model's do;
    an absolute logit tolerance then means what it says."""
    import senet_zoo
    from senet_zoo.hub.weights_file import save_state_dict

    torch.manual_seed(seed)
    model = senet_zoo.create_model(model_name)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.0)
                m.bias.uniform_(-0.1, 0.1)
        model.get_classifier().weight.mul_(CLASSIFIER_GAIN)
    path = Path(directory) / f"{model_name}.safetensors"
    save_state_dict(path, model.state_dict())  # the layout senet-zoo writes (conversions, runs, packages)
    path.read_bytes()  # "in the local cache": the file's pages are in the page cache
    return path
