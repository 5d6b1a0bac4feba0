"""Tiny on-disk image datasets for tests: each class puts a bright square in its own place
(top, bottom, none, centre), horizontally centred so that flip augmentation keeps the label;
even a tiny model learns them in a few epochs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CLASSES = ("glioma", "meningioma", "notumor", "pituitary")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def class_image(class_index: int, size: int, rng: np.random.Generator) -> np.ndarray:
    image = rng.integers(0, 40, size=(size, size), dtype=np.uint8)
    side = size // 4
    left = (size - side) // 2
    tops = {0: size // 10, 1: size - size // 10 - side, 3: (size - side) // 2}
    if class_index % 4 in tops:
        top = tops[class_index % 4]
        image[top : top + side, left : left + side] = 220
    return image


def write_images(folder: Path, class_index: int, count: int, size: int, seed: int, suffix: str = ".png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:03d}{suffix}"
        cv2.imwrite(str(path), class_image(class_index, size, rng))
        paths.append(path)
    return paths


def make_pool(root: Path, per_class: int = 20, size: int = 48, classes=CLASSES) -> Path:
    for index, name in enumerate(classes):
        write_images(root / name, index, per_class, size, seed=index)
    return root


def make_kaggle(root: Path, train_per_class: int = 20, test_per_class: int = 6, size: int = 48, classes=CLASSES) -> Path:
    for index, name in enumerate(classes):
        write_images(root / "Training" / name, index, train_per_class, size, seed=index)
        write_images(root / "Testing" / name, index, test_per_class, size, seed=100 + index, suffix=".jpg")
    return root
