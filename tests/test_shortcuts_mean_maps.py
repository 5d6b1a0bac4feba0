"""Per-class mean maps: bt_core.shortcuts.mean_maps against NumPy, their store
(bt_core.artifacts.maps) and the analysis pass that writes them."""

from __future__ import annotations

import numpy as np
import pytest

from bt_core.artifacts import ArtifactError
from bt_core.artifacts.layout import class_mean_maps_path
from bt_core.artifacts.maps import load_class_mean_maps, list_maps
from bt_core.regions import resize_maps
from bt_core.shortcuts.mean_maps import class_mean_maps
from fabricate import CLASS_NAMES, fabricate_run, write_class_means


def test_the_means_are_numpy_means_per_class():
    rng = np.random.default_rng(1)
    labels = np.array([0, 2, 2, 0, 3, 2])  # class 1 has no image: left out
    maps = rng.uniform(0, 1, (6, 8, 8))
    heads = rng.uniform(size=(6, 16, 16)) > 0.5
    means = class_mean_maps(maps, labels, heads, CLASS_NAMES)
    assert means.classes == ("glioma", "notumor", "pituitary")
    assert means.counts.tolist() == [2, 3, 1]
    for row, index in enumerate([0, 2, 3]):
        np.testing.assert_allclose(means.maps[row], maps[labels == index].mean(axis=0), atol=1e-6)
        # The mean head shrunk by area is the mean of the masks each shrunk (2 x 2 blocks here).
        blocks = heads[labels == index].reshape(-1, 8, 2, 8, 2).mean(axis=(2, 4)).mean(axis=0)
        np.testing.assert_allclose(means.heads[row], blocks, atol=1e-6)
    with pytest.raises(ValueError, match="must agree"):
        class_mean_maps(maps[:5], labels, heads, CLASS_NAMES)


def test_a_fabricated_runs_means_round_trip(artifacts_dir):
    fabricated = fabricate_run(artifacts_dir)
    model = fabricated.good_models[0]
    assert load_class_mean_maps(fabricated.run_dir, model, "gradcam") is None  # never analyzed
    made = write_class_means(fabricated, model)
    stored = load_class_mean_maps(fabricated.run_dir, model, "gradcam")
    present = sorted(set(made["labels"]))
    assert stored["classes"] == tuple(CLASS_NAMES[i] for i in present) and stored["method"] == "gradcam"
    for row, index in enumerate(present):
        members = made["labels"] == index
        assert stored["counts"][row] == members.sum()
        np.testing.assert_allclose(stored["maps"][row], made["maps"][members].mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(stored["heads"][row], made["heads"][members].mean(axis=0), atol=1e-6)
    assert list_maps(fabricated.run_dir, model) == []  # the means are not a method's maps
    class_mean_maps_path(fabricated.run_dir, model, "gradcam").write_bytes(b"not an archive")
    with pytest.raises(ArtifactError, match="cannot be read"):
        load_class_mean_maps(fabricated.run_dir, model, "gradcam")


def test_the_analysis_pass_stores_the_means_of_its_maps(tmp_path):
    pytest.importorskip("tensorflow")
    from bt_core import artifacts
    from bt_core.runs.analyze import analyze_run
    from test_runs_analyze import write_tiny_run

    run_dir = tmp_path / "20260101-000000-tiny"
    write_tiny_run(run_dir)
    analyze_run(run_dir, methods=["gradcam"], models=["simple_cnn"], measure_method=None, progress=None)
    run = artifacts.load_run(run_dir)
    maps, ids, _classes = artifacts.load_maps(run_dir, "simple_cnn", "gradcam")
    labels = run.split.set_index("path").loc[ids, "label"].map(run.class_names.index).to_numpy()
    heads = run.test_heads()
    stored = load_class_mean_maps(run_dir, "simple_cnn", "gradcam")
    assert stored["classes"] == tuple(run.class_names)
    for row, name in enumerate(run.class_names):
        members = labels == row
        np.testing.assert_allclose(stored["maps"][row], maps[members].astype(np.float32).mean(axis=0), atol=1e-5)
        head = resize_maps(heads[members].mean(axis=0, dtype=np.float32), maps.shape[1:], clip=True)
        np.testing.assert_allclose(stored["heads"][row], head, atol=1e-5)
