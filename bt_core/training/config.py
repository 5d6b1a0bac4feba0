"""The settings of one training run, and seeding."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from bt_core.data.image_ops import check_image_ops
from bt_core.data.splits import check_split_rule

# Two models, one without and one with batch norm, so `make demo` trains within about two
# minutes on 2 CPU cores (custom_cnn alone took 84 s there; docs/performance.md, "The demo").
DEMO_MODELS = ("simple_cnn", "cnn_bn")
DEFAULT_MODELS = ("simple_cnn", "custom_cnn", "resnet50", "vgg16", "densenet121", "mobilenetv2")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# Where augmentation runs (bt_core.training.train): on the device inside the train step, on the host
# in numpy, or not at all.
AUGMENT_MODES = ("device", "numpy", "none")
# Settings that do not make two runs different experiments (see RunConfig.differences).
NOT_COMPARED = ("run_id", "out", "workers", "tensorboard")
# Settings older runs stored that no longer exist: dropped when a stored config is read.
RETIRED_SETTINGS = ("extra",)


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
    augment: bool = True  # False exactly when augment_mode is "none"
    run_id: str | None = None
    demo: bool = False
    # Added in artifact format 1.1.
    preprocess: tuple[str, ...] = ()  # bt_core.data.image_ops names, applied in order when decoding
    augment_mode: str = "device"
    data_parallel: bool = False
    workers: int = 1  # threads preparing batches; speed only, never results
    # Older manifests lack it (read as False). Logs on the side only, never results.
    tensorboard: bool = False  # Keras TensorBoard logs per model (bt_core.tracking.tensorboard_logs)
    # Added in artifact format 1.7; older manifests lack it (read as "original", the split they used).
    split: str = "original"  # bt_core.data.splits.SPLIT_RULES: original, grouped, regroup
    # 1.7: the seed of the data selection (--max-per-class sample and the split) when it must not
    # follow `seed`: a study fixes it so every seed trains and is scored on the same images. None: `seed`.
    data_seed: int | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("no models named")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.img_size < 32:
            raise ValueError(f"img-size must be at least 32 px, got {self.img_size}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch-size must be at least 1, got {self.batch_size}")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise ValueError(f"max-per-class must be at least 1, got {self.max_per_class}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.augment_mode not in AUGMENT_MODES:
            raise ValueError(f"unknown augmentation {self.augment_mode!r}; valid: {', '.join(AUGMENT_MODES)}")
        check_split_rule(self.split)
        # Frozen: normalise through object.__setattr__ so equal settings compare equal.
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "preprocess", check_image_ops(self.preprocess))
        if not self.augment:
            object.__setattr__(self, "augment_mode", "none")
        object.__setattr__(self, "augment", self.augment_mode != "none")

    @property
    def split_seed(self) -> int:
        """The seed of the --max-per-class sample and the split."""
        return self.seed if self.data_seed is None else self.data_seed

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["models"] = list(self.models)
        data["preprocess"] = list(self.preprocess)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], drop_unknown: bool = False) -> RunConfig:
        """A config as stored in a manifest; retired settings (``extra``) are dropped. Settings
        of a newer format (see :meth:`unknown_settings`) are refused, or with ``drop_unknown``
        left out: enough to show a newer run's settings, never to train with them."""
        data = {key: value for key, value in data.items() if key not in RETIRED_SETTINGS}
        unknown = cls.unknown_settings(data)
        if unknown and not drop_unknown:
            raise ValueError(f"the stored config has settings this code does not know: {unknown} "
                             "(written by a newer version); update the project (git pull)")
        return cls(**{key: value for key, value in data.items() if key not in unknown})

    @classmethod
    def unknown_settings(cls, data: dict[str, Any]) -> list[str]:
        """The keys of a stored config that are neither settings nor retired ones, sorted."""
        known = {f.name for f in fields(cls)}
        return sorted(set(data) - known - set(RETIRED_SETTINGS))

    def differences(self, other: RunConfig) -> list[str]:
        """Settings that differ from ``other``, apart from where the run lives (run_id, out),
        how fast it goes (workers) and what it logs on the side (tensorboard)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(key for key in mine if key not in NOT_COMPARED and mine[key] != theirs[key])


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend, and under TensorFlow make its ops
    deterministic, so a seed gives the same run on the same machine (README,
    "Reproducibility"). The split, the shuffles and the augmentation take their own seeds
    from the run's seed. JAX on a CPU is deterministic as it is; on a GPU it needs
    ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` before it starts, which this call cannot set."""
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Process-wide and permanent; measured on the 2-core CPU: docs/performance.md.
        tf.config.experimental.enable_op_determinism()
