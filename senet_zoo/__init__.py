"""senet-zoo: the reference home of Squeeze-and-Excitation networks for PyTorch.

>>> import senet_zoo
>>> senet_zoo.list_models()
>>> model = senet_zoo.create_model("se_resnet50", pretrained=True)
>>> fast = senet_zoo.optimize_for_inference(model.eval())  # BN folded, fused SE + residual

Importing the package registers every model with timm (``timm.create_model("se_resnet50")``).
"""

from ._version import __version__
from .export import export_onnx  # (onnx/onnxruntime are imported when it is called)
from .inference import optimize_for_inference
from .registry import create_model, get_spec, list_models, model_info, register_with_timm

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "model_info",
    "get_spec",
    "optimize_for_inference",
    "export_onnx",
]

register_with_timm()
