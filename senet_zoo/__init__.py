"""senet-zoo: the reference home of Squeeze-and-Excitation networks for PyTorch.

>>> import senet_zoo
>>> senet_zoo.list_models()
>>> model = senet_zoo.create_model("se_resnet50.caffe_in1k", pretrained=True)
>>> weights = senet_zoo.get_weights("se_resnet50")  # .transforms(), .meta, .get_state_dict()
>>> fast = senet_zoo.optimize_for_inference(model.eval())  # BN folded, fused SE + residual

The public names are loaded when first used (PEP 562), so the numpy-only steps of the data flow
(``senet_zoo.caffe``, ``senet_zoo.convert``) import neither torch nor timm. Every model is registered
with timm (``timm.create_model("se_resnet50.cadene_in1k")``) as soon as both ``senet_zoo`` and timm are
imported, in either order: at once when timm already is, else right after timm's own import
(:func:`_register_when_timm_loads`). Without timm installed the model API is simply absent.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

from ._lazy import lazy_api
from ._log import PACKAGE as _PACKAGE
from ._log import get_logger as _get_logger
from ._version import __version__

_get_logger(_PACKAGE)  # secrets are redacted from every record of the package's loggers

# public name → the module that defines it
_API = {
    "create_model": "registry",
    "list_models": "registry",
    "model_info": "registry",
    "get_spec": "registry",
    "get_weights": "weights",
    "list_weights": "weights",
    "Weights": "weights",
    "optimize_for_inference": "inference",
    "export_onnx": "export",
}


def _timm_installed() -> bool:
    try:
        return importlib.util.find_spec("timm") is not None
    except ImportError:  # a finder that refuses it
        return False


_HAS_TIMM = _timm_installed()
if not _HAS_TIMM:  # the Caffe reader and the converter need numpy only; the model API is simply absent
    _API = {}

__all__ = ["__version__", *_API]

__getattr__, __dir__ = lazy_api(__name__, _API)


def _register_models() -> None:
    """Import :mod:`senet_zoo.models`, which registers every model with timm; a no-op once it is
    imported or while it is being imported (its own import registers them at its end)."""
    if __name__ + ".models" not in sys.modules:
        importlib.import_module(".models", __name__)


class _RegisterAfterTimm(importlib.abc.MetaPathFinder):
    """Finds nothing itself: when ``timm`` is first imported, wraps its loader so that
    :func:`_register_models` runs once timm's ``__init__`` has finished, then leaves ``sys.meta_path``."""

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if fullname != "timm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)  # the finders after this one
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            exec_module(module)
            _register_models()

        spec.loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def _register_when_timm_loads() -> None:
    """Register the models with timm now if timm is imported, else right after its import; nothing
    without timm installed (the Caffe reader and the converter need numpy only)."""
    if "timm" in sys.modules:
        _register_models()
    elif _HAS_TIMM:
        sys.meta_path.insert(0, _RegisterAfterTimm())


_register_when_timm_loads()
