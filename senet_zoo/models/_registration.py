"""Registration of every model with timm, as timm's own model modules register theirs: on import.

``senet_zoo.models`` calls :func:`register_with_timm` when it is imported, and ``import senet_zoo``
imports it as soon as timm is loaded (at once when timm already is), so that
``timm.create_model("se_resnet50.cadene_in1k")`` works after ``import senet_zoo`` while the numpy-only
steps (``senet_zoo.caffe``, ``senet_zoo.convert``) load neither torch nor timm. One pretrained config per
weights tag (a tag that is not published yet is registered without weights, so ``timm.list_pretrained``
leaves it out). A name timm already owns (``senet154`` is timm's gluon ResNet-D SENet) is registered under
a distinct timm name and never replaces timm's.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from torch import nn

from .._log import get_logger
from ..catalog import CATALOG, ModelFacts
from ._builder import pretrained_cfg_for

__all__ = ["register_with_timm", "family_module"]

_logger = get_logger(__name__)


def family_module(m: ModelFacts) -> ModuleType:
    """The ``senet_zoo.models`` module that holds ``m``'s entrypoint and timm pretrained cfgs (its ``family``)."""
    return importlib.import_module(f"{__package__}.{m.family}")


def _timm_entrypoint(m: ModelFacts) -> Callable[..., nn.Module]:
    """The entrypoint timm calls: the family module's own, or a wrapper under the distinct timm name."""
    module = family_module(m)
    fn = getattr(module, m.name)
    if m.timm_name == m.name:
        return fn

    @functools.wraps(fn)
    def entrypoint(pretrained: Any = False, **kwargs: Any) -> nn.Module:
        return fn(pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = m.timm_name
    del entrypoint.__wrapped__
    setattr(module, m.timm_name, entrypoint)  # timm lists it in the module's __all__
    return entrypoint


def _weights_tags(manifest: Any, name: str) -> list[str]:
    """The manifest's tags for ``name``, default first (timm's order: the first tag is the default)."""
    if manifest is None or name not in manifest.names():
        return []
    default = manifest.default_tag(name)
    return [default] + [t for t in manifest.tags(name) if t != default]


def register_with_timm() -> None:
    """Register every model with timm (idempotent); refuse to shadow a name timm already owns.

    A manifest that cannot be read is logged and the models are registered without weights tags: the
    error is raised where weights are asked for, naming the file.
    """
    from timm.models import is_model, model_entrypoint
    from timm.models._registry import generate_default_cfgs, register_model

    from ..hub.manifest import ManifestError, load_manifest

    try:
        manifest = load_manifest()
    except ManifestError as exc:
        _logger.warning("registering senet_zoo models with timm without weights tags: %s", exc)
        manifest = None
    for m in CATALOG.values():
        timm_name = m.timm_name
        module = family_module(m)
        if is_model(timm_name):
            if getattr(model_entrypoint(timm_name), "__module__", "") != module.__name__:
                raise RuntimeError(f"timm already owns {timm_name!r}; give {m.name} a timm_alias in the catalog")
            continue
        fn = _timm_entrypoint(m)
        entries: dict[str, Any] = {
            f"{timm_name}.{tag}": pretrained_cfg_for(m.name, tag, manifest) for tag in _weights_tags(manifest, m.name)
        } or {timm_name: pretrained_cfg_for(m.name)}
        module.default_cfgs.update(generate_default_cfgs(entries))
        register_model(fn)
