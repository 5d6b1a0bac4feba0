"""The settings of one training run, and seeding."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEMO_MODELS = ("simple_cnn", "custom_cnn", "cnn_bn")
DEFAULT_MODELS = ("simple_cnn", "custom_cnn", "resnet50", "vgg16", "densenet121", "mobilenetv2")


@dataclass(frozen=True)
class RunConfig:
    data: str
    models: tuple[str, ...] = DEFAULT_MODELS
    epochs: int = 30
    img_size: int = 224
    batch_size: int | None = None  # None: each model's recipe decides
    seed: int = 42
    out: str = "artifacts"
    weights: str | None = None  # None, "imagenet" or a local weights file
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    max_per_class: int | None = None
    precision: str = "float32"  # or "mixed_bfloat16" on GPUs
    augment: bool = True
    run_id: str | None = None
    demo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("no models named")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.img_size < 32:
            raise ValueError(f"img-size must be at least 32 px, got {self.img_size}")
        if self.precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
            raise ValueError(f"unknown precision {self.precision!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        return data


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend in one call."""
    import keras

    keras.utils.set_random_seed(seed)
