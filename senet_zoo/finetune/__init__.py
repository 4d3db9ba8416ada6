"""Fine-tuning SE networks on new label sets: trainer, ImageFolder data, safetensors checkpoints, CLI.

>>> from senet_zoo.finetune import Trainer, TrainConfig, image_folder_datasets
"""

from .data import image_folder_datasets, model_transforms
from .load import load_model
from .trainer import TrainConfig, Trainer, evaluate

__all__ = ["Trainer", "TrainConfig", "evaluate", "image_folder_datasets", "model_transforms", "load_model"]
