"""torch.hub entry points: ``torch.hub.load('<owner>/senet-zoo', 'se_resnet50', weights='cadene_in1k')``.

One entry point per network of the model table (:mod:`senet_zoo.catalog`), so they cannot drift apart.
``weights`` is a tag (``"caffe_in1k"``), ``"DEFAULT"`` or a :class:`senet_zoo.Weights`; ``pretrained``
(``True``, a tag or a path) is the older spelling. Other keyword arguments go to
:func:`senet_zoo.create_model` (``num_classes``, ``in_chans``, ``features_only`` ...).
"""

dependencies = ["torch", "timm", "huggingface_hub", "safetensors", "requests", "numpy", "tqdm"]

import functools as _functools  # noqa: E402

import senet_zoo as _senet_zoo  # noqa: E402
from senet_zoo.catalog import CATALOG as _CATALOG  # noqa: E402


def _entrypoint(name):
    facts = _CATALOG[name]

    @_functools.wraps(_senet_zoo.create_model)
    def entrypoint(pretrained=False, weights=None, **kwargs):
        if weights is not None:
            if pretrained:
                raise ValueError("pass weights= or pretrained=, not both")
            pretrained = True if isinstance(weights, str) and weights.upper() == "DEFAULT" else weights
        return _senet_zoo.create_model(name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    side = facts.input_size
    reported = (
        f"{facts.top1_acc:.2f}% top-1, {facts.top5_acc:.2f}% top-5 on ImageNet"
        if facts.top1_acc is not None
        else "no reported ImageNet accuracy"
    )
    where = "Caffe release" if facts.is_caffe_release else "paper, no released weights"
    entrypoint.__doc__ = (
        f"{facts.display_name} ({facts.params / 1e6:.2f}M parameters, {facts.gmacs:.2f} GMACs at {side}×{side}; "
        f"{where}: {reported}).\n\n"
        f"    weights: None, 'DEFAULT', a weights tag or a senet_zoo.Weights "
        f"(senet_zoo.list_weights({name!r}) lists them).\n"
        f"    pretrained: False, True (default weights), a weights tag, or a path to a .safetensors file.\n"
        f"    **kwargs: passed to senet_zoo.create_model (num_classes, in_chans, features_only, ...).\n"
    )
    del entrypoint.__wrapped__
    return entrypoint


for _name in _CATALOG:
    globals()[_name] = _entrypoint(_name)
del _name
