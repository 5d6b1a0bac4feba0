"""Leak-free splits: duplicate groups (the audit's rule) never straddle train / val / test."""

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from bt_core import cli
from bt_core.data.dataset import load_dataset
from bt_core.data.layouts import discover
from bt_core.data.splits import duplicate_groups, make_split
from bt_core.training.config import RunConfig

CLASSES = ("glioma", "meningioma", "notumor")


def smooth_image(rng: np.random.Generator, size: int = 48) -> np.ndarray:
    """Low-frequency random texture: distinct images are far apart in pHash, and a resized
    or slightly edited copy stays close, as with real slices."""
    coarse = rng.integers(0, 256, size=(6, 6)).astype(np.float32)
    return np.clip(cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def write(path: Path, image: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def plant_copies(source: Path, folder: Path, stem: str) -> list[Path]:
    """An exact copy, a copy with one pixel changed and a resized copy of ``source``."""
    image = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    edited = image.copy()
    edited[3, 3] = 255 - edited[3, 3]
    return [
        write(folder / f"{stem}_copy.png", image),
        write(folder / f"{stem}_pixel.png", edited),
        write(folder / f"{stem}_resized.png", cv2.resize(image, (40, 40), interpolation=cv2.INTER_AREA)),
    ]


def fill(folder: Path, count: int, rng: np.random.Generator) -> list[Path]:
    return [write(folder / f"img_{i:03d}.png", smooth_image(rng)) for i in range(count)]


def relative(root: Path, paths) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in paths}


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    """Training 16 per class + planted copies, Testing 6 per class; returns the root, the
    Training copies of Testing images, and a within-Training duplicate group."""
    root = tmp_path_factory.mktemp("kaggle")
    rng = np.random.default_rng(0)
    leaked, inside = set(), []
    for name in CLASSES:
        training = fill(root / "Training" / name, 16, rng)
        testing = fill(root / "Testing" / name, 6, rng)
        leaked |= relative(root, plant_copies(testing[0], root / "Training" / name, "test0"))
        inside = [training[0], *plant_copies(training[0], root / "Training" / name, "train0")]
    return root, leaked, relative(root, inside)


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Unbalanced classes (30 / 45 / 60 images), each holding two planted groups of four."""
    root = tmp_path_factory.mktemp("pool")
    rng = np.random.default_rng(1)
    for name, count in zip(CLASSES, (22, 37, 52)):
        images = fill(root / name, count, rng)
        for k in range(2):
            plant_copies(images[k], root / name, f"dup{k}")
    return root


def groups_of(root: Path, split: pd.DataFrame) -> pd.Series:
    return pd.Series(duplicate_groups(root, split["path"].tolist()), index=split["path"].to_numpy())


def assert_no_group_straddles(root: Path, split: pd.DataFrame) -> None:
    groups = groups_of(root, split)
    splits_per_group = split.assign(group=groups.to_numpy()).groupby("group")["split"].nunique()
    assert (splits_per_group == 1).all(), splits_per_group[splits_per_group > 1]


def test_groups_join_exactly_the_planted_copies(kaggle):
    root, leaked, inside = kaggle
    paths = discover(root).items["path"].tolist()
    groups = pd.Series(duplicate_groups(root, paths), index=paths)
    sizes = groups.value_counts()
    assert sorted(sizes[sizes > 1].tolist()) == [4] * (2 * len(CLASSES))  # nothing else joins
    assert groups[sorted(inside)].nunique() == 1
    for name in CLASSES:
        planted = [p for p in leaked if f"/{name}/" in p] + [f"Testing/{name}/img_000.png"]
        assert groups[planted].nunique() == 1


def test_unreadable_images_get_groups_of_their_own(kaggle):
    root = kaggle[0]
    groups = duplicate_groups(root, ["Training/glioma/img_000.png", "missing.png", "gone.png"])
    assert len(set(groups.tolist())) == 3


def test_original_is_the_old_split(kaggle, pool):
    root = kaggle[0]
    index = discover(root)
    training = index.items[index.items["source"] == "train"]
    train, val = train_test_split(training, test_size=0.15, stratify=training["label"], random_state=3)
    split = make_split(index, seed=3, split="original")
    assert set(split.loc[split["split"] == "val", "path"]) == set(val["path"])
    assert set(split.loc[split["split"] == "test", "path"]) == set(index.items.query("source == 'test'")["path"])
    assert split.equals(make_split(index, seed=3))
    assert make_split(discover(pool), seed=3).equals(make_split(discover(pool), seed=3, split="original"))


def test_kaggle_grouped_drops_exactly_the_training_copies_of_test_images(kaggle):
    root, leaked, inside = kaggle
    index = discover(root)
    split = make_split(index, seed=0, split="grouped")
    training = set(index.items.query("source == 'train'")["path"])
    assert training - set(split["path"]) == leaked
    assert set(split.loc[split["split"] == "test", "path"]) == set(index.items.query("source == 'test'")["path"])
    assert split.loc[split["path"].isin(inside), "split"].nunique() == 1
    assert_no_group_straddles(root, split)


def test_kaggle_grouped_caps_training_after_dropping_and_keeps_the_original_test_sample(kaggle):
    root, leaked, _inside = kaggle
    index = discover(root)
    cap = 8  # the grouped val cut needs 7 per class (one of 7 folds)
    original = make_split(index, seed=0, max_per_class=cap)
    grouped = make_split(index, seed=0, max_per_class=cap, split="grouped")
    test = lambda split: set(split.loc[split["split"] == "test", "path"])  # noqa: E731
    assert test(grouped) == test(original)  # the effect of the rule is paired on the same test images
    trained = grouped[grouped["split"] != "test"]
    assert not set(trained["path"]) & leaked
    available = index.items.query("source == 'train'").loc[lambda f: ~f["path"].isin(leaked)]
    expected = available.groupby("label").size().clip(upper=cap).to_dict()
    assert trained.groupby("label").size().to_dict() == expected  # as many as the cap allows, copies dropped first
    assert_no_group_straddles(root, grouped)


def test_load_dataset_makes_the_split_its_rule_names(kaggle):
    root = kaggle[0]
    dataset = load_dataset(root, image_size=32, seed=0, split_rule="grouped")
    assert dataset.split.equals(make_split(discover(root), seed=0, split="grouped"))


def test_kaggle_regroup_pools_both_folders_without_straddling(kaggle):
    root = kaggle[0]
    index = discover(root)
    split = make_split(index, seed=0, split="regroup")
    assert len(split) == len(index.items)  # nothing dropped: the groups move whole
    source = split["path"].map(dict(zip(index.items["path"], index.items["source"])))
    assert (source[split["split"] == "test"] == "train").any()
    assert (source[split["split"] != "test"] == "test").any()
    assert_no_group_straddles(root, split)


def test_pool_grouped_keeps_class_proportions_and_regroup_is_the_same(pool):
    index = discover(pool)
    split = make_split(index, seed=0, split="grouped")
    assert_no_group_straddles(pool, split)
    overall = split["label"].value_counts(normalize=True)
    for name in ("train", "val", "test"):
        part = split[split["split"] == name]
        shares = part["label"].value_counts(normalize=True).reindex(overall.index, fill_value=0)
        assert (shares - overall).abs().max() < 0.05, (name, shares.to_dict())
    assert abs((split["split"] == "test").mean() - 0.15) < 0.03
    assert split.equals(make_split(index, seed=0, split="regroup"))


def test_the_seed_changes_the_grouped_split_and_repeats_it(pool):
    index = discover(pool)
    first = make_split(index, seed=5, split="grouped")
    assert first.equals(make_split(index, seed=5, split="grouped"))
    assert not first.equals(make_split(index, seed=6, split="grouped"))


def test_too_few_groups_is_one_clear_message(tmp_path):
    rng = np.random.default_rng(2)
    for name in CLASSES[:2]:
        fill(tmp_path / name, 2, rng)
    with pytest.raises(ValueError, match="form only 4 duplicate group"):
        make_split(discover(tmp_path), test_fraction=0.15, split="grouped")


def test_split_is_a_checked_setting_older_runs_read_as_original(tmp_path):
    assert RunConfig(data="d").split == "original"
    stored = RunConfig(data="d", split="grouped").to_dict()
    assert RunConfig.from_dict(stored).split == "grouped"
    del stored["split"]  # a manifest of format 1.6 or older
    assert RunConfig.from_dict(stored).split == "original"
    with pytest.raises(ValueError, match="unknown split 'leak'; valid: original, grouped, regroup"):
        RunConfig(data="d", split="leak")
    with pytest.raises(ValueError, match="valid: original, grouped, regroup"):
        make_split(None, split="leak")  # refused before the index is read
    args = cli.parse_args(["--data", str(tmp_path), "--split", "regroup"])
    assert cli.build_config(args).split == "regroup"
    assert cli.build_config(cli.parse_args(["--data", str(tmp_path)])).split == "original"
