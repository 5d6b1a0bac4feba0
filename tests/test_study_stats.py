"""bt_core.metrics.study_stats: seed summaries, flip rates and the hierarchical bootstrap,
against numpy / statistics / scipy and hand-made known answers."""

import math
import statistics
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from bt_core.metrics.study_stats import (
    flip_rate,
    hierarchical_method,
    hierarchical_paired_bootstrap,
    seed_t_interval,
    seed_summary,
)


def test_seed_summary_matches_numpy_and_statistics_and_ignores_nan():
    values = [0.81, 0.84, float("nan"), 0.79]
    summary = seed_summary(values)
    finite = [0.81, 0.84, 0.79]
    assert summary["n_seeds"] == 3
    assert summary["mean"] == pytest.approx(statistics.mean(finite))
    assert summary["sd"] == pytest.approx(statistics.stdev(finite))
    assert summary["sd"] == pytest.approx(np.std(finite, ddof=1))
    assert (summary["min"], summary["max"]) == (0.79, 0.84)
    one = seed_summary(pd.Series([0.5]))
    assert one["n_seeds"] == 1 and one["mean"] == 0.5 and math.isnan(one["sd"])
    assert seed_summary([float("nan")])["n_seeds"] == 0 and math.isnan(seed_summary([])["mean"])


def test_flip_rate_is_the_mean_share_of_changed_predictions_over_seed_pairs():
    ids = ["a", "b", "c", "d"]
    predictions = {
        0: pd.Series(["glioma", "notumor", "glioma", "pituitary"], index=ids),
        1: pd.Series(["glioma", "glioma", "glioma", "pituitary"], index=ids),  # 1 of 4 differs from seed 0
        # only b, c, d in common with the others, in another order: differs from 0 on c (1/3), from 1 on b, c (2/3)
        2: pd.Series(["pituitary", "notumor", "meningioma"], index=["d", "b", "c"]),
    }
    rate, n_pairs, n_images = flip_rate(predictions)
    assert n_pairs == 3 and n_images == 4
    assert rate == pytest.approx((1 / 4 + 1 / 3 + 2 / 3) / 3)
    assert flip_rate({0: predictions[0]}) == (pytest.approx(math.nan, nan_ok=True), 0, 0)
    disjoint = {0: pd.Series(["glioma"], index=["x"]), 1: pd.Series(["glioma"], index=["y"])}
    assert flip_rate(disjoint)[1:] == (0, 0)


def _per_image(rng, n, p):
    return pd.Series((rng.random(n) < p).astype(float), index=[f"img_{i:04d}" for i in range(n)])


def test_one_seed_paired_equals_scipys_percentile_bootstrap_of_the_per_image_differences():
    rng = np.random.default_rng(1)
    base = _per_image(rng, 400, 0.7)
    variant = pd.Series(np.where(rng.random(400) < 0.2, 1 - base, base), index=base.index)  # flips 20% of images
    effect = hierarchical_paired_bootstrap({0: base}, {0: variant.sample(frac=1.0, random_state=0)}, seed=3)
    reference = scipy_stats.bootstrap(((variant - base).to_numpy(),), np.mean, n_resamples=2000,
                                      method="percentile", random_state=4)
    assert effect.paired_images and effect.n_seeds == 1
    assert effect.difference == pytest.approx((variant - base).mean())
    # Two independent Monte Carlo estimates of the same 2.5% / 97.5% quantiles: with 2000
    # resamples each bound's error is ~1.5% of the width; allow 8% of the width.
    width = reference.confidence_interval.high - reference.confidence_interval.low
    assert effect.lower == pytest.approx(reference.confidence_interval.low, abs=0.08 * width)
    assert effect.upper == pytest.approx(reference.confidence_interval.high, abs=0.08 * width)
    assert effect.method == hierarchical_method(2000, 0.95, True, 1)
    assert effect.method == ("one matched seed: bootstrap of its test images only, no seed noise "
                             "(2000 resamples, percentile 95%)")
    assert hierarchical_method(2000, 0.95, True, 3) == ("hierarchical bootstrap: seeds, then test images within "
                                                        "each seed (2000 resamples, percentile 95%)")


def test_identical_arms_give_zero_and_a_constant_shift_gives_the_shift():
    rng = np.random.default_rng(2)
    arms = {seed: pd.Series(rng.random(50), index=[f"i{k}" for k in range(50)]) for seed in range(3)}
    same = hierarchical_paired_bootstrap(arms, arms, n_resamples=300)
    assert (same.difference, same.lower, same.upper) == (0.0, 0.0, 0.0)
    shifted_arms = {seed: values + 0.1 for seed, values in arms.items()}
    shifted = hierarchical_paired_bootstrap(arms, shifted_arms, n_resamples=300)
    assert shifted.difference == pytest.approx(0.1)
    assert shifted.lower == pytest.approx(0.1) and shifted.upper == pytest.approx(0.1)


def test_the_interval_includes_the_seed_to_seed_spread():
    rng = np.random.default_rng(5)
    base = {seed: _per_image(rng, 300, 0.7) for seed in range(3)}
    # Each seed's variant gains 0.0, 0.1 or 0.2 accuracy: seeds disagree about the effect.
    variant = {seed: _per_image(rng, 300, 0.7 + 0.1 * seed) for seed in range(3)}
    effect = hierarchical_paired_bootstrap(base, variant, seed=0)
    pooled = np.concatenate([variant[seed].to_numpy() - base[seed].to_numpy() for seed in range(3)])
    images_only = scipy_stats.bootstrap((pooled,), np.mean, n_resamples=2000, method="percentile", random_state=0)
    images_width = images_only.confidence_interval.high - images_only.confidence_interval.low
    assert effect.upper - effect.lower > 1.5 * images_width
    assert effect.difference == pytest.approx(np.mean([(variant[s] - base[s]).mean() for s in range(3)]))
    assert effect.lower < effect.difference < effect.upper


def test_unpaired_arms_are_resampled_on_their_own_and_say_so():
    rng = np.random.default_rng(6)
    base = {seed: _per_image(rng, 200, 0.6) for seed in range(2)}
    variant = {seed: pd.Series(rng.random(150) < 0.8, index=[f"other_{i}" for i in range(150)]) for seed in range(2)}
    effect = hierarchical_paired_bootstrap(base, variant, n_resamples=500)
    assert not effect.paired_images and effect.n_seeds == 2
    assert "each arm's images drawn on their own" in effect.method
    assert effect.difference == pytest.approx(np.mean([variant[s].mean() - base[s].mean() for s in range(2)]))
    assert effect.lower < effect.difference < effect.upper
    only_one_seed_matches = hierarchical_paired_bootstrap(base, {1: variant[1], 7: variant[0]}, n_resamples=100)
    assert only_one_seed_matches.n_seeds == 1
    nothing = hierarchical_paired_bootstrap(base, {9: variant[0]})
    assert nothing.n_seeds == 0 and math.isnan(nothing.difference) and math.isnan(nothing.lower)


def test_the_bootstrap_is_deterministic_for_a_seed_and_fast():
    rng = np.random.default_rng(7)
    base = {seed: _per_image(rng, 1000, 0.8) for seed in range(3)}
    variant = {seed: _per_image(rng, 1000, 0.85) for seed in range(3)}
    started = time.perf_counter()
    first = hierarchical_paired_bootstrap(base, variant, seed=11)
    seconds = time.perf_counter() - started
    assert first == hierarchical_paired_bootstrap(base, variant, seed=11)
    assert first != hierarchical_paired_bootstrap(base, variant, seed=12)
    assert seconds < 1.0, f"2000 resamples x 3 seeds x 1,000 images took {seconds:.2f} s"


def test_per_run_metrics_get_scipys_t_interval_of_the_seed_differences():
    base, variant = {0: 0.40, 1: 0.50, 2: 0.45}, {0: 0.30, 1: 0.35, 2: 0.40, 3: 0.1}
    effect = seed_t_interval(base, variant)
    differences = np.array([-0.10, -0.15, -0.05])
    assert effect.n_seeds == 3 and not effect.paired_images
    assert effect.difference == pytest.approx(differences.mean())
    lower, upper = scipy_stats.t.interval(0.95, 2, loc=differences.mean(), scale=scipy_stats.sem(differences))
    assert (effect.lower, effect.upper) == pytest.approx((lower, upper))
    # Wider than the range of the three differences: three seeds say little.
    assert effect.lower < -0.15 and effect.upper > -0.05
    assert effect.method == "t interval over 3 seeds (one value per run; 95%)"
    single = seed_t_interval({0: 0.4}, {0: 0.3})
    assert single.difference == pytest.approx(-0.1) and math.isnan(single.lower) and "no interval" in single.method
