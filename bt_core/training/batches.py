"""Batches for training and scoring: preprocessed images from an in-memory uint8 array, with
the host-side augmentation, balanced class weights and the padding data parallelism needs."""

from __future__ import annotations

import math

import keras
import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from bt_core.data.dataset import SplitArrays
from bt_core.data.preprocess import preprocess_batch


def augment_batch(images: np.ndarray, rng: np.random.Generator, max_shift: float = 0.05) -> np.ndarray:
    """Random horizontal flip, shift up to ``max_shift`` of the size (zero fill), and a
    mild brightness / contrast change. uint8 in, uint8 out."""
    out = images.copy()
    n, height, width = images.shape[:3]
    flip = rng.random(n) < 0.5
    out[flip] = out[flip, :, ::-1]
    limit_y, limit_x = int(round(height * max_shift)), int(round(width * max_shift))
    for i in range(n):
        dy = int(rng.integers(-limit_y, limit_y + 1)) if limit_y else 0
        dx = int(rng.integers(-limit_x, limit_x + 1)) if limit_x else 0
        if dy or dx:
            shifted = np.zeros_like(out[i])
            src = out[i, max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)]
            shifted[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
            out[i] = shifted
    gain = rng.uniform(0.9, 1.1, size=(n, 1, 1, 1))
    bias = rng.uniform(-10, 10, size=(n, 1, 1, 1))
    return np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


class ImageBatches(keras.utils.PyDataset):
    """Batches of preprocessed images from an in-memory uint8 array.

    Training batches are reshuffled every epoch, optionally augmented on the host and carry
    balanced class weights as sample weights; evaluation batches are in order and untouched.
    ``one_hot``: yield one-hot float labels over that many classes (for label smoothing).
    ``workers`` > 1 prepares batches in that many threads ahead of the model.
    ``drop_remainder``: leave out the last, smaller batch of an epoch.
    ``pad_to_multiple``: data-parallel training splits every batch evenly over the devices,
    so a batch whose length is not a multiple of it is padded with copies of its first image
    at sample weight 0 (batches then always carry weights).
    """

    def __init__(
        self,
        arrays: SplitArrays,
        preprocessing: str,
        batch_size: int,
        shuffle: bool = False,
        augment: bool = False,
        class_weights: np.ndarray | None = None,
        seed: int = 0,
        one_hot: int | None = None,
        workers: int = 1,
        drop_remainder: bool = False,
        pad_to_multiple: int = 1,
    ):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.pad_to_multiple = max(1, int(pad_to_multiple))
        self.arrays = arrays
        self.preprocessing = preprocessing
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.class_weights = class_weights
        self.one_hot = one_hot
        self.drop_remainder = drop_remainder and len(arrays.labels) >= batch_size
        self.seed = seed
        self.epoch = 0
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(arrays.labels))
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self) -> int:
        if self.drop_remainder:
            return len(self.order) // self.batch_size
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        real = len(rows)
        if real % self.pad_to_multiple:
            rows = np.concatenate([rows, np.repeat(rows[:1], self.pad_to_multiple - real % self.pad_to_multiple)])
        images = self.arrays.images[rows]
        if self.augment:
            # One stream per (epoch, batch): the same batches whatever order threads take them in.
            images = augment_batch(images, np.random.default_rng([self.seed, self.epoch, index]))
        x = preprocess_batch(images, self.preprocessing)
        y = self.arrays.labels[rows]
        targets = np.eye(self.one_hot, dtype=np.float32)[y] if self.one_hot else y
        if self.class_weights is None and self.pad_to_multiple == 1:
            return x, targets
        if self.class_weights is not None:
            weights = self.class_weights[y].astype(np.float32)
        else:
            weights = np.ones(len(y), np.float32)
        weights[real:] = 0.0
        return x, targets, weights

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.shuffle:
            self.rng.shuffle(self.order)


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """scikit-learn's 'balanced' weights; a class absent from training gets weight 1."""
    weights = np.ones(num_classes, dtype=np.float64)
    present = np.unique(labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=labels)
    return weights
