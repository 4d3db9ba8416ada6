"""senet-zoo: the reference home of Squeeze-and-Excitation networks for PyTorch.

>>> import senet_zoo
>>> senet_zoo.list_models()
>>> model = senet_zoo.create_model("se_resnet50", pretrained=True)
>>> fast = senet_zoo.optimize_for_inference(model.eval())  # BN folded, fused SE + residual

Importing the package registers every model with timm (``timm.create_model("se_resnet50")``).
"""

__version__ = "0.1.0"  # before the imports: the converter records it

from .export import export_onnx  # noqa: E402  (onnx/onnxruntime are imported when it is called)
from .inference import optimize_for_inference  # noqa: E402
from .registry import create_model, get_spec, list_models, model_info, register_with_timm  # noqa: E402

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
