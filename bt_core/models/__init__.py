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

# Imported for their side effect: registering the built-in models.
from bt_core.models import backbones, custom_cnns  # noqa: E402,F401  isort: skip

__all__ = [
    "HEAD_PREFIX",
    "MIN_INPUT_SIZE",
    "ModelSpec",
    "Recipe",
    "WeightsUnavailableError",
    "create_model",
    "get_spec",
    "list_models",
    "register_model",
    "set_backbone_trainable",
    "set_batchnorm_momentum",
]
