"""torch.hub entry points: ``torch.hub.load('<owner>/senet-zoo', 'se_resnet50', pretrained=True)``.

One entry point per registered model, generated from the registry so they cannot drift apart.
Keyword arguments go to :func:`senet_zoo.create_model` (``pretrained`` may be ``True``, a weights tag
or a path; ``num_classes``, ``in_chans``, ``features_only`` ...).
"""

dependencies = ["torch", "timm", "huggingface_hub", "safetensors", "requests", "numpy", "tqdm"]

import functools as _functools  # noqa: E402

import senet_zoo as _senet_zoo  # noqa: E402


def _entrypoint(name):
    info = _senet_zoo.model_info(name)

    @_functools.wraps(_senet_zoo.create_model)
    def entrypoint(pretrained=False, **kwargs):
        return _senet_zoo.create_model(name, pretrained=pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = (
        f"{info['caffe_model']} ({info['params'] / 1e6:.1f}M parameters, {info['gmacs']:.2f} GMACs at 224×224; "
        f"Caffe release: {info['top1_acc']:.2f}% top-1, {info['top5_acc']:.2f}% top-5 on ImageNet).\n\n"
        f"    pretrained: False, True (default weights), a weights tag, or a path to a .safetensors file.\n"
        f"    **kwargs: passed to senet_zoo.create_model (num_classes, in_chans, features_only, ...).\n"
    )
    del entrypoint.__wrapped__
    return entrypoint


for _name in _senet_zoo.list_models():
    globals()[_name] = _entrypoint(_name)
del _name
