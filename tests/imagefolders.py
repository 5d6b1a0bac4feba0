"""Tiny on-disk image datasets for tests: each class puts a bright square in its own place
(top, bottom, none, centre), horizontally centred so that flip augmentation keeps the label;
even a tiny model learns them in a few epochs. ``head_image`` draws one synthetic head slice."""

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


def head_image(size: int = 64, text: bool = True) -> np.ndarray:
    """A bright ellipse (the head) with a dark hole (a ventricle), and corner text."""
    image = np.zeros((size, size), np.uint8)
    cv2.ellipse(image, (size // 2, size // 2 + 4), (size // 3, size // 3 + 2), 0, 0, 360, 150, -1)
    cv2.circle(image, (size // 2, size // 2), 3, 0, -1)
    if text:
        cv2.putText(image, "SE 7", (1, 5), cv2.FONT_HERSHEY_SIMPLEX, 0.15, 255, 1, cv2.LINE_AA)
    return np.repeat(image[..., np.newaxis], 3, axis=-1)
