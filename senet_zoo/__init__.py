"""senet-zoo: the reference home of Squeeze-and-Excitation networks for PyTorch.

>>> import senet_zoo
>>> senet_zoo.list_models()
>>> model = senet_zoo.create_model("se_resnet50.caffe_in1k", pretrained=True)
>>> weights = senet_zoo.get_weights("se_resnet50")  # .transforms(), .meta, .get_state_dict()
>>> fast = senet_zoo.optimize_for_inference(model.eval())  # BN folded, fused SE + residual

Importing the package registers every model with timm (``timm.create_model("se_resnet50.cadene_in1k")``).
The Caffe reader and the converter (``senet_zoo.caffe``, ``senet_zoo.convert``) work without timm:
without it, the model API is simply absent.
"""

from ._log import PACKAGE as _PACKAGE
from ._log import get_logger as _get_logger
from ._version import __version__

_get_logger(_PACKAGE)  # secrets are redacted from every record of the package's loggers

try:
    import timm as _timm  # noqa: F401
except ImportError:  # the Caffe reader and the converter need numpy only
    _HAS_TIMM = False
else:
    _HAS_TIMM = True

if _HAS_TIMM:
    from .export import export_onnx  # onnx/onnxruntime are imported when it is called
    from .inference import optimize_for_inference
    from .registry import create_model, get_spec, list_models, model_info, register_with_timm
    from .weights import Weights, get_weights, list_weights

    register_with_timm()

__all__ = [
    "__version__",
    "create_model",
    "list_models",
    "model_info",
    "get_spec",
    "get_weights",
    "list_weights",
    "Weights",
    "optimize_for_inference",
    "export_onnx",
]
