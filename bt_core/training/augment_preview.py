"""The run's own augmentation applied to one image a few times, to show what training sees.

The same code paths as training: ``device`` mode warps with the :class:`RandomAffine` that
:func:`bt_core.training.augment.build_augmenter` builds from the recipe's strength (in uint8
pixel space, black fill: what the model-input fill value is before scaling), ``numpy`` mode
uses :func:`bt_core.training.batches.augment_batch`, ``none`` shows the image unchanged.
"""

from __future__ import annotations

import numpy as np

from bt_core.training.config import AUGMENT_MODES


def augmentation_preview(image: np.ndarray, mode: str, strength: float, draws: int, seed: int) -> np.ndarray:
    """uint8 ``(draws, H, W, 3)``: ``image`` (uint8 ``(H, W, 3)``) through the run's
    augmentation ``draws`` times, each draw a new random transform; seeded, so the same
    arguments give the same frames. ``mode`` ``none`` or ``strength`` 0 repeat the image."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if mode not in AUGMENT_MODES:
        raise ValueError(f"unknown augmentation {mode!r}; valid: {', '.join(AUGMENT_MODES)}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    batch = np.repeat(image[None], draws, axis=0)
    if mode == "none" or strength == 0:
        return batch
    if mode == "numpy":
        from bt_core.training.batches import augment_batch

        return augment_batch(batch, np.random.default_rng(seed))
    from keras import ops

    from bt_core.training.augment import build_augmenter

    augmenter = build_augmenter(strength, fill_value=0.0, seed=seed)
    warped = ops.convert_to_numpy(augmenter(batch.astype(np.float32), training=True))
    return np.clip(np.rint(warped), 0, 255).astype(np.uint8)
