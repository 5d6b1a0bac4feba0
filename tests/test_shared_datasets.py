"""The two real datasets in ../shared/data load with their known counts (skipped when absent)."""

import pytest

from bt_core.data.boxes import read_boxes
from bt_core.data.dataset import load_dataset
from bt_core.data.layouts import LAYOUT_KAGGLE, LAYOUT_POOL, discover
from bt_core.data.splits import make_split
from imagefolders import CLASSES, SHARED_DATA

pytestmark = pytest.mark.shared_data
BRAIN_TUMOR_MRI = SHARED_DATA / "brain-tumor-mri"
FIGSHARE = SHARED_DATA / "figshare-br35h"


def needs(path):
    if not path.is_dir():
        pytest.skip(f"{path} is absent (only a development checkout has ../shared/data)")


def test_brain_tumor_mri_counts_and_split():
    needs(BRAIN_TUMOR_MRI)
    index = discover(BRAIN_TUMOR_MRI)
    assert index.layout == LAYOUT_KAGGLE and index.class_names == CLASSES
    per_source = index.items.groupby(["source", "label"]).size()
    assert per_source["train"].to_dict() == {"glioma": 1321, "meningioma": 1339, "notumor": 1591, "pituitary": 1457}
    assert per_source["test"].to_dict() == {"glioma": 300, "meningioma": 306, "notumor": 405, "pituitary": 300}
    # The copy left inside Testing/meningioma/.ipynb_checkpoints is hidden, so not counted.
    assert not index.items["path"].str.contains("ipynb_checkpoints").any()
    split = make_split(index, val_fraction=0.15, seed=42)
    sizes = split["split"].value_counts().to_dict()
    assert sizes["test"] == 1311 and sizes["train"] + sizes["val"] == 5708
    assert abs(sizes["val"] - 0.15 * 5708) <= 4


def test_figshare_br35h_counts_and_boxes():
    needs(FIGSHARE)
    index = discover(FIGSHARE)
    assert index.layout == LAYOUT_POOL and index.class_names == CLASSES
    assert index.items["label"].value_counts().to_dict() == {
        "glioma": 1426, "notumor": 1500, "pituitary": 930, "meningioma": 708
    }
    boxes, rejected = read_boxes(FIGSHARE)
    assert len(boxes) == 3064 and rejected == []
    assert set(boxes.index) <= set(index.items["path"])
    assert not boxes.index.str.startswith("notumor/").any()
    split = make_split(index, seed=42)
    fractions = split["split"].value_counts(normalize=True)
    assert fractions["train"] == pytest.approx(0.70, abs=0.01)
    assert fractions["test"] == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize("root", [BRAIN_TUMOR_MRI, FIGSHARE], ids=["brain-tumor-mri", "figshare-br35h"])
def test_a_sample_of_each_real_dataset_decodes(root):
    needs(root)
    data = load_dataset(root, image_size=64, seed=0, max_per_class=10)
    assert data.skipped == []
    for arrays in data.arrays.values():
        assert arrays.images.shape[1:] == (64, 64, 3)
        assert arrays.images.std() > 10  # real pictures, not blank arrays
