"""The model zoo: registry of custom CNNs and keras.applications backbones."""

from bt_core.models.registry import (
    HEAD_PREFIX,
    MIN_INPUT_SIZE,
    ModelSpec,
    Recipe,
    WeightsUnavailableError,
    create_model,
    get_spec,
    list_models,
    register_model,
    set_backbone_trainable,
    set_batchnorm_momentum,
)
from bt_core.models.batchnorm import batchnorm_layers, recompute_batchnorm_statistics

# Imported for their side effect: registering the built-in models.
from bt_core.models import backbones, custom_cnns  # noqa: E402,F401  isort: skip

__all__ = [
    "HEAD_PREFIX",
    "MIN_INPUT_SIZE",
    "ModelSpec",
    "Recipe",
    "WeightsUnavailableError",
    "batchnorm_layers",
    "create_model",
    "get_spec",
    "list_models",
    "recompute_batchnorm_statistics",
    "register_model",
    "set_backbone_trainable",
    "set_batchnorm_momentum",
]
