"""Source signatures planted by the demo generator (border texture, intensity curve, the mark),
the unchanged default demo, and the train/shifted sets of benchmarks/make_signature_sets.py."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bt_core.data.demo import DEMO_CLASSES, generate_demo_dataset
from bt_core.data.demo_slices import TEXTURE_ANGLE_DEG, TEXTURE_CYCLES, gamma_table, render_slice_parts
from bt_core.regions import head_mask

ROOT = Path(__file__).resolve().parents[1]
SIZE = 64
NO_MARK = {"shortcut_rate": 0.0, "other_rate": 0.0}
# Digests of generator version 1 before signatures existed (same function as below): the
# default demo must stay file for file the same, so earlier demo runs' numbers still hold.
DEFAULT_DIGEST = "de9416aff9e0360ed0fed8b8b919ee67630f1d5f4c665644cc810ab0d9674db9"
CUSTOM_DIGEST = "377aaae4cf16edb9b373834ce799fa6d135966bbfad38d4f10550730f04df17a"
CUSTOM = {"per_class": 12, "image_size": 64, "seed": 7, "shortcut_class": "notumor",
          "shortcut_rate": 0.5, "other_rate": 0.25}


def folder_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            name = path.relative_to(root).as_posix().encode()
            digest.update(name + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def read_gray(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def metadata_of(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "demo_metadata.csv", keep_default_na=False)


def unsigned(row, seed: int = 0) -> np.ndarray:
    """The same slice rendered without mark or signature."""
    index = int(Path(row.image).stem.split("_")[-1]) - 1
    return render_slice_parts(row.label, index, seed, SIZE).pixels


def load_helper(monkeypatch):
    # benchmarks/ is a folder of scripts, not a package: load the module from its file.
    spec = importlib.util.spec_from_file_location("make_signature_sets", ROOT / "benchmarks" / "make_signature_sets.py")
    module = importlib.util.module_from_spec(spec)
    # Dataclasses look their module up while the class is built.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_default_generation_is_unchanged_file_for_file(tmp_path):
    assert folder_digest(generate_demo_dataset(tmp_path / "default", per_class=20)) == DEFAULT_DIGEST
    assert folder_digest(generate_demo_dataset(tmp_path / "custom", **CUSTOM)) == CUSTOM_DIGEST
    explicit = generate_demo_dataset(tmp_path / "none", **CUSTOM, signature=None)
    assert folder_digest(explicit) == CUSTOM_DIGEST


def test_same_seed_gives_identical_signed_files_and_another_seed_differs(tmp_path):
    kwargs = {"per_class": 4, "image_size": SIZE, "signature": "border_texture", "signature_rate": 1.0, **NO_MARK}
    first = generate_demo_dataset(tmp_path / "a", seed=3, **kwargs)
    second = generate_demo_dataset(tmp_path / "b", seed=3, **kwargs)
    other = generate_demo_dataset(tmp_path / "c", seed=4, **kwargs)
    assert folder_digest(first) == folder_digest(second)
    notumor = [f"notumor/notumor_{i:04d}.png" for i in range(1, 5)]
    assert all((first / n).read_bytes() != (other / n).read_bytes() for n in notumor)


def test_metadata_gains_a_column_and_demo_json_the_parameters(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=4, image_size=SIZE, signature="border_texture")
    metadata = metadata_of(root)
    assert list(metadata.columns) == [
        "image", "label", "has_mark", "mark_text", "mark_corner", "lesion_cx", "lesion_cy", "lesion_radius",
        "has_signature",
    ]
    params = json.loads((root / "DEMO.json").read_text())
    assert {k: params[k] for k in params if k.startswith(("signature", "texture"))} == {
        "signature": "border_texture", "signature_class": "notumor", "signature_rate": 0.9,
        "signature_other_rate": 0.0, "signature_strength": 12.0,
        "texture_period_px": 4.0, "texture_angle_deg": 30.0, "texture_margin_px": 4.0,
    }
    # The mark keeps its own defaults and its own choice of images.
    assert params["shortcut_class"] == "meningioma" and params["shortcut_rate"] == 0.9
    plain = metadata_of(generate_demo_dataset(tmp_path / "plain", per_class=4, image_size=SIZE))
    assert metadata["has_mark"].tolist() == plain["has_mark"].tolist()


def test_signature_rates_are_exact(tmp_path):
    root = generate_demo_dataset(
        tmp_path / "d", per_class=10, image_size=SIZE, signature="intensity_shift",
        signature_class="glioma", signature_rate=0.35, signature_other_rate=0.25, **NO_MARK,
    )
    signed = metadata_of(root).groupby("label")["has_signature"].sum().to_dict()
    # round(3.5) = 4 and round(2.5) = 2: Python's round, halves to the even count.
    assert signed == {"glioma": 4, "meningioma": 2, "notumor": 2, "pituitary": 2}


def test_border_texture_lies_outside_the_head_of_exactly_the_signed_images(tmp_path):
    root = generate_demo_dataset(
        tmp_path / "d", per_class=8, image_size=SIZE, signature="border_texture",
        signature_rate=0.5, signature_other_rate=0.25, signature_strength=30, **NO_MARK,
    )
    metadata = metadata_of(root)
    assert metadata.groupby("label")["has_signature"].sum().to_dict() == {
        "glioma": 2, "meningioma": 2, "notumor": 4, "pituitary": 2}
    for row in metadata.itertuples():
        image, plain = read_gray(root / row.image), unsigned(row)
        changed = image != plain
        if not row.has_signature:
            assert not changed.any(), f"{row.image}: unsigned image differs from its render"
            continue
        head = head_mask(plain)
        assert not (changed & head).any(), f"{row.image}: texture inside the head"
        assert changed[~head].mean() > 0.5, f"{row.image}: texture covers little of the background"
        assert (head_mask(image) == head).all(), f"{row.image}: the head finder sees another head"
        added = image.astype(int) - plain
        assert added.min() >= 0 and added.max() == 30


def test_border_texture_has_the_documented_frequency_and_direction(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=2, image_size=128, signature="border_texture",
                                 signature_rate=1.0, **NO_MARK)
    row = next(metadata_of(root).query("label == 'notumor'").itertuples())
    index = int(Path(row.image).stem.split("_")[-1]) - 1
    added = read_gray(root / row.image).astype(float) - render_slice_parts("notumor", index, 0, 128).pixels
    spectrum = np.abs(np.fft.fft2(added))
    cycles = np.fft.fftfreq(128, d=1 / 128)  # signed cycles per image side
    # The head's hole in the texture is a low-frequency shape; the stripes are the fine peak.
    spectrum[np.hypot(*np.meshgrid(cycles, cycles, indexing="ij")) < 4] = 0
    ky, kx = (int(cycles[i]) for i in np.unravel_index(np.argmax(spectrum), spectrum.shape))
    if kx < 0:
        kx, ky = -kx, -ky  # a real image's spectrum is symmetric
    assert abs(math.hypot(kx, ky) - TEXTURE_CYCLES) <= 1
    assert abs(math.degrees(math.atan2(ky, kx)) - TEXTURE_ANGLE_DEG) <= 5


def test_intensity_shift_is_the_gamma_curve_and_raises_the_head_by_about_18(tmp_path):
    assert gamma_table(0.8)[[0, 5, 100, 128, 255]].tolist() == [0, 11, 121, 147, 255]
    root = generate_demo_dataset(
        tmp_path / "d", per_class=6, image_size=SIZE, signature="intensity_shift",
        signature_rate=0.5, **NO_MARK,
    )
    metadata = metadata_of(root)
    rises = []
    for row in metadata.itertuples():
        image, plain = read_gray(root / row.image), unsigned(row)
        if not row.has_signature:
            assert (image == plain).all(), f"{row.image}: unsigned image differs from its render"
            continue
        assert (image == gamma_table(0.8)[plain]).all()
        head = head_mask(plain)
        rises.append(image[head].mean() - plain[head].mean())
    assert len(rises) == 3
    assert all(14 <= rise <= 22 for rise in rises), rises
    darker = generate_demo_dataset(tmp_path / "g", per_class=2, image_size=SIZE, signature="intensity_shift",
                                   signature_rate=1.0, signature_strength=1.25, **NO_MARK)
    image = read_gray(darker / "notumor" / "notumor_0001.png")
    plain = render_slice_parts("notumor", 0, 0, SIZE).pixels
    assert (image == gamma_table(1.25)[plain]).all() and image[head_mask(plain)].mean() < plain[head_mask(plain)].mean()


def test_mark_as_signature_marks_exactly_the_signed_images(tmp_path):
    root = generate_demo_dataset(tmp_path / "d", per_class=6, image_size=SIZE, signature="mark",
                                 signature_rate=0.5, signature_other_rate=0.0, **NO_MARK)
    metadata = metadata_of(root)
    assert (metadata["has_mark"] == metadata["has_signature"]).all()
    assert metadata.groupby("label")["has_mark"].sum().to_dict() == {
        "glioma": 0, "meningioma": 0, "notumor": 3, "pituitary": 0}
    for row in metadata.itertuples():
        changed = read_gray(root / row.image) != unsigned(row)
        assert changed.any() == bool(row.has_mark), row.image
        assert not changed[int(0.12 * SIZE):].any(), f"{row.image}: mark outside the top rows"


def test_another_signature_or_none_regenerates_the_folder(tmp_path):
    kwargs = {"per_class": 3, "image_size": SIZE, **NO_MARK}
    fresh_plain = folder_digest(generate_demo_dataset(tmp_path / "plain", **kwargs))
    root = generate_demo_dataset(tmp_path / "d", signature="border_texture", signature_rate=1.0, **kwargs)
    texture = (root / "notumor" / "notumor_0001.png").read_bytes()
    generate_demo_dataset(root, signature="intensity_shift", signature_rate=1.0, **kwargs)
    assert (root / "notumor" / "notumor_0001.png").read_bytes() != texture
    assert json.loads((root / "DEMO.json").read_text())["signature"] == "intensity_shift"
    old = 1_000_000_000
    for path in root.rglob("*"):
        os.utime(path, ns=(old, old))
    generate_demo_dataset(root, signature="intensity_shift", signature_rate=1.0, **kwargs)
    assert all(p.stat().st_mtime_ns == old for p in root.rglob("*"))
    generate_demo_dataset(root, **kwargs)  # back to no signature: no stale column or key
    assert folder_digest(root) == fresh_plain


BAD_PARAMETERS = [
    ({"signature": "stripes"},
     r"signature must be None or one of \('border_texture', 'intensity_shift', 'mark'\), got 'stripes'"),
    ({"signature_rate": 0.5}, r"signature_rate given without a signature"),
    ({"signature_class": "notumor", "signature_strength": 3},
     r"signature_class, signature_strength given without a signature"),
    ({"signature": "border_texture", "signature_class": "astrocytoma"}, r"signature_class must be one of"),
    ({"signature": "border_texture", "signature_rate": 1.5}, r"signature_rate must be a number in \[0, 1\], got 1.5"),
    ({"signature": "intensity_shift", "signature_other_rate": -0.1},
     r"signature_other_rate must be a number in \[0, 1\]"),
    ({"signature": "intensity_shift", "signature_rate": "0.5"},
     r"signature_rate must be a number in \[0, 1\], got '0.5'"),
    ({"signature": "border_texture", "signature_strength": 31},
     r"signature_strength of border_texture must be a number in \[1, 30\], got 31"),
    ({"signature": "border_texture", "signature_strength": float("nan")},
     r"signature_strength of border_texture must be a number"),
    ({"signature": "intensity_shift", "signature_strength": 1},
     r"signature_strength of intensity_shift must be a number in \[0.5, 2\] other than 1, got 1"),
    ({"signature": "mark", "signature_strength": 2, **NO_MARK}, r"signature_strength has no meaning for the mark"),
    ({"signature": "mark"},
     r"signature='mark' chooses the marked images itself; set shortcut_rate=0 and other_rate=0"),
    ({"shortcut_rate": "high"}, r"shortcut_rate must be in \[0, 1\], got 'high'"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_PARAMETERS)
def test_bad_signature_parameters_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_demo_dataset(tmp_path / "d", per_class=2, image_size=SIZE, **kwargs)
    assert not (tmp_path / "d").exists()


def test_signature_sets_train_on_one_source_mix_and_shift_it_for_the_test(tmp_path, capsys, monkeypatch):
    helper = load_helper(monkeypatch)
    helper.main([str(tmp_path), "--rates", "0,0.5,1", "--per-class", "4", "--kinds", "border_texture"])
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 6 and printed[-1].startswith("5 datasets of 16 images, 64 px")
    signed = {}
    for name in ("train_border_texture/r0.00", "train_border_texture/r0.50", "train_border_texture/r1.00",
                 "shifted_border_texture"):
        metadata = metadata_of(tmp_path / name)
        assert metadata["has_mark"].sum() == 0
        signed[name] = metadata.groupby("label")["has_signature"].sum().to_dict()
    assert signed == {
        "train_border_texture/r0.00": {"glioma": 0, "meningioma": 0, "notumor": 0, "pituitary": 0},
        "train_border_texture/r0.50": {"glioma": 0, "meningioma": 0, "notumor": 2, "pituitary": 0},
        "train_border_texture/r1.00": {"glioma": 0, "meningioma": 0, "notumor": 4, "pituitary": 0},
        "shifted_border_texture": {"glioma": 4, "meningioma": 4, "notumor": 0, "pituitary": 4},
    }
    seeds = {name: json.loads((tmp_path / name / "DEMO.json").read_text())["seed"]
             for name in ("train_border_texture/r0.50", "shifted_border_texture", "clean")}
    assert seeds == {"train_border_texture/r0.50": 0, "shifted_border_texture": 1, "clean": 1}
    assert "has_signature" not in metadata_of(tmp_path / "clean")
    assert set(DEMO_CLASSES) <= {p.name for p in (tmp_path / "clean").iterdir()}
    with pytest.raises(ValueError, match="train_seed and test_seed must differ"):
        helper.make_signature_sets(tmp_path / "same", per_class=2, train_seed=1, test_seed=1)
