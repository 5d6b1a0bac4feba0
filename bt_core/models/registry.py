"""The model registry: one :class:`ModelSpec` per trainable architecture, timm-style.

Builder modules register their models with :func:`register_model`; everything else
(training, dashboard, Grad-CAM) goes through :func:`get_spec` / :func:`create_model` and
never needs to know how a model is built.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Literal, Mapping, Union

import keras

from bt_core.data.preprocess import PREPROCESS_MODES

# Smallest square input every registered architecture accepts (keras.applications' minimum).
MIN_INPUT_SIZE = 32
# Prefix of every layer of a backbone model's classification head.
HEAD_PREFIX = "head_"
FAMILIES = ("custom", "backbone")

WeightsArg = Union[None, str, "os.PathLike[str]"]
# builder(num_classes, input_size, weights) -> model; weights is None, "imagenet" or a
# path that create_model has already checked exists.
Builder = Callable[[int, int, Union[None, str]], keras.Model]


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were requested but cannot be obtained (e.g. offline)."""


@dataclass(frozen=True)
class Recipe:
    """Per-model training hyper-parameters."""

    learning_rate: float = 1e-3  # training from scratch
    batch_size: int = 32
    patience: int = 5  # early stopping on val loss
    reduce_lr_factor: float = 0.3
    reduce_lr_patience: int = 2
    head_learning_rate: float = 1e-4  # phase 1: pretrained base frozen
    fine_tune_learning_rate: float = 1e-5  # phase 2: base unfrozen
    # From scratch on a few thousand images, keras.applications' momenta (0.99, 0.999 for
    # MobileNetV2) leave the moving statistics near their initial values for many epochs,
    # so validation collapses onto one class while training accuracy climbs.
    scratch_batchnorm_momentum: float = 0.9
    # Scales every range of the on-device augmentation (bt_core.training.augment); 0 switches it off.
    augment_strength: float = 1.0
    # Epochs of linear learning-rate warm-up at the start of each phase (0: none).
    warmup_epochs: int = 0
    # Cross-entropy label smoothing (0: none; > 0 trains on one-hot labels).
    label_smoothing: float = 0.0
    # Before each validation, batch-norm statistics are measured again on this many clean
    # training images (bt_core.models.batchnorm); 0 keeps Keras' moving averages.
    recompute_batchnorm_images: int = 256
    # Rate of the head's Dropout layers (``head_*``) when the model is built from scratch
    # (weights=None); None keeps the built rate (0.4), pretrained models always do. With 0.4
    # twice (the second before batch norm) MobileNetV2's training loss stayed above ln 4 for 8
    # demo epochs (test 0.30 -> 0.59 without), ResNet50 learned slowly (0.66 -> 0.91).
    scratch_head_dropout: float | None = 0.0


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, feed and explain one architecture.

    A spec read back from a run (:meth:`from_json`) of a model no longer registered has no
    ``builder``: it can feed and explain the trained model, not build a new one.
    ``last_conv_layer`` is None for a run that did not record it (format 1.0): explain then
    picks its default layer.
    """

    name: str
    input_size: int
    preprocessing: str
    last_conv_layer: str | None
    family: Literal["custom", "backbone"]
    recipe: Recipe = field(default_factory=Recipe)
    description: str = ""
    builder: Builder | None = field(default=None, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"{self.name}: family must be one of {FAMILIES}, got {self.family!r}")
        if self.preprocessing not in PREPROCESS_MODES:
            raise ValueError(
                f"{self.name}: preprocessing must be one of {PREPROCESS_MODES}, "
                f"got {self.preprocessing!r}"
            )
        if self.input_size < MIN_INPUT_SIZE:
            raise ValueError(f"{self.name}: input_size must be >= {MIN_INPUT_SIZE}")

    def to_json(self) -> dict[str, Any]:
        """The stored fields of the spec (everything but the builder)."""
        return {
            "name": self.name,
            "family": self.family,
            "input_size": self.input_size,
            "preprocessing": self.preprocessing,
            "last_conv_layer": self.last_conv_layer,
            "recipe": asdict(self.recipe),
            "description": self.description,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSpec:
        """A spec from stored fields: the stored values win; a field not stored comes from the
        registered spec of that name (``last_conv_layer`` excepted: None), the builder too.
        ValueError when a field needed to feed the model is neither stored nor registered."""
        name = str(data["name"])
        registered = _REGISTRY.get(name)

        def stored_or_registered(key: str, default: Any = None) -> Any:
            if data.get(key) is not None:
                return data[key]
            if registered is not None:
                return getattr(registered, key)
            if default is None:
                raise ValueError(f"the stored spec of {name!r} lacks {key} and no model of that name is registered")
            return default

        base_recipe = registered.recipe if registered is not None else Recipe()
        stored_recipe = data.get("recipe") or {}
        known = {f.name for f in fields(Recipe)}  # a newer minor format may add recipe fields
        recipe = replace(base_recipe, **{k: v for k, v in stored_recipe.items() if k in known})
        return cls(
            name=name,
            input_size=int(stored_or_registered("input_size")),
            preprocessing=str(stored_or_registered("preprocessing")),
            last_conv_layer=data.get("last_conv_layer"),
            family=stored_or_registered("family"),
            recipe=recipe,
            description=str(stored_or_registered("description", "")),
            builder=registered.builder if registered is not None else None,
        )


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(
    name: str,
    *,
    preprocessing: str,
    last_conv_layer: str,
    family: Literal["custom", "backbone"],
    input_size: int = 224,
    recipe: Recipe | None = None,
    description: str = "",
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name``; returns the builder unchanged."""

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"Model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=builder,
            input_size=input_size,
            preprocessing=preprocessing,
            last_conv_layer=last_conv_layer,
            family=family,
            recipe=recipe if recipe is not None else Recipe(),
            description=description,
        )
        return builder

    return decorator


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    """The spec registered as ``name``; ``KeyError`` listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"Unknown model {name!r}; known models: {', '.join(list_models())}"
        ) from None


def create_model(
    name: str,
    num_classes: int,
    weights: WeightsArg = None,
    input_size: int | None = None,
) -> keras.Model:
    """Build model ``name`` for ``num_classes`` classes on ``(s, s, 3)`` float32 input.

    ``weights``: ``None`` (random init), ``"imagenet"`` (backbones only; raises
    :class:`WeightsUnavailableError` when it cannot be downloaded) or a path to a local
    weights file (for a backbone: the keras.applications no-top ImageNet file; for a
    custom CNN: weights saved from the same architecture). Feed it
    ``preprocess_batch(images, spec.preprocessing)``.
    """
    spec = get_spec(name)
    if spec.builder is None:
        raise ValueError(f"{name!r} has no builder: a spec read back from a run cannot build a new model")
    size = spec.input_size if input_size is None else int(input_size)
    if size < MIN_INPUT_SIZE:
        raise ValueError(f"input_size must be >= {MIN_INPUT_SIZE}, got {size}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if weights is not None and weights != "imagenet":
        weights = os.fspath(weights)
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"Weights file for {name!r} not found: {weights}")
    if weights == "imagenet" and spec.family == "custom":
        raise ValueError(
            f"{name!r}: custom CNNs have no ImageNet weights; use weights=None "
            "(train from scratch) or a path to weights saved from this model"
        )
    model = spec.builder(num_classes, size, weights)
    if weights is None and spec.recipe.scratch_head_dropout is not None:
        set_head_dropout(model, spec.recipe.scratch_head_dropout)
    return model


def set_head_dropout(model: keras.Model, rate: float) -> int:
    """Set the rate of every Dropout layer of the head (name prefix ``head_``) before the
    model is compiled; returns how many."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"head dropout must be in [0, 1), got {rate}")
    dropouts = [layer for layer in model.layers
                if layer.name.startswith(HEAD_PREFIX) and isinstance(layer, keras.layers.Dropout)]
    for layer in dropouts:
        layer.rate = float(rate)
    return len(dropouts)


def set_backbone_trainable(
    model: keras.Model, trainable: bool, *, keep_batchnorm_frozen: bool = False
) -> None:
    """Freeze (``False``) or unfreeze (``True``) every non-head layer of a backbone model.

    Head layers (name prefix ``head_``) always stay trainable. Works on a model loaded
    from ``.keras`` too, since it goes by layer name. ``keep_batchnorm_frozen=True``
    leaves the backbone's BatchNormalization layers frozen (inference mode) when
    unfreezing, the usual advice for fine-tuning on small batches. Recompile the model
    afterwards for the change to take effect in training.
    """
    head = [layer for layer in model.layers if layer.name.startswith(HEAD_PREFIX)]
    if not head:
        raise ValueError(
            f"Model {model.name!r} has no '{HEAD_PREFIX}*' layers: only backbone models "
            "have a separate head to keep trainable"
        )
    for layer in model.layers:
        if layer.name.startswith(HEAD_PREFIX):
            layer.trainable = True
        elif keep_batchnorm_frozen and isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        else:
            layer.trainable = trainable


def set_batchnorm_momentum(model: keras.Model, momentum: float) -> int:
    """Set the moving-average momentum of every BatchNormalization layer; returns how many."""
    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in layers:
        layer.momentum = momentum
    return len(layers)
