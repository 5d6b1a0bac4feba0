"""The same seed gives the same run on one machine; another seed gives another run."""

import json

import pandas as pd
import pytest

from bt_core.runs.zoo import run_zoo
from bt_core.training.config import RunConfig
from imagefolders import make_pool


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return make_pool(tmp_path_factory.mktemp("pool"), per_class=16, size=32)


def _train(pool, out, seed):
    # cnn_bn: dropout, batch norm (recomputed statistics) and the device augmentation all draw
    # random numbers, so each of them must follow the seed.
    config = RunConfig(data=str(pool), models=("cnn_bn",), epochs=1, img_size=32, seed=seed,
                       out=str(out), run_id=f"seed{seed}", batch_size=16)
    run_dir = run_zoo(config, say=lambda message: None)
    model_dir = run_dir / "models" / "cnn_bn"
    predictions = pd.read_csv(model_dir / "predictions.csv")
    metrics = json.loads((model_dir / "metrics.json").read_text())
    history = pd.read_csv(model_dir / "history.csv")
    return predictions, metrics, history


def test_same_seed_same_predictions_other_seed_other_predictions(pool, tmp_path):
    first = _train(pool, tmp_path / "a", seed=3)
    again = _train(pool, tmp_path / "b", seed=3)
    other = _train(pool, tmp_path / "c", seed=4)
    pd.testing.assert_frame_equal(first[0], again[0], check_exact=True)
    assert first[1] == again[1]
    pd.testing.assert_frame_equal(first[2], again[2], check_exact=True)
    # Another seed: another split and other weights.
    assert set(first[0]["id"]) != set(other[0]["id"])
    assert not first[2]["loss"].equals(other[2]["loss"])
