"""Statistics of a study (a grid of runs: models x variants x seeds), pure NumPy, no file I/O.

- :func:`seed_summary`: one metric over the seeds of a model x variant (mean, sample sd, range).
- :func:`flip_rate`: how often two seeds of the same model x variant predict different classes
  for the same test image.
- :func:`hierarchical_paired_bootstrap`: a variant's effect against the baseline, seed-matched,
  with an interval that includes both seed-to-seed and test-image variation: each resample draws
  the matched seeds with replacement, then within each drawn seed the test images with
  replacement (the same image draws for both arms when they scored the same image ids).
- :func:`seed_t_interval`: the same for a metric with one number per run (the shortcut score):
  a t interval of the per-seed differences (a bootstrap over 3 seeds covers far less than 95%).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bt_core.metrics.bootstrap import percentile_interval

N_RESAMPLES = 2000
CONFIDENCE = 0.95


def seed_summary(values: Any) -> dict[str, float | int]:
    """``n_seeds`` (finite values), ``mean``, ``sd`` (sample sd, ddof=1; NaN for one value),
    ``min``, ``max`` of one metric over seeds; NaN values are ignored (all NaN: NaN scores)."""
    array = np.asarray(values if isinstance(values, (np.ndarray, pd.Series)) else list(values), dtype=np.float64)
    array = array.ravel()
    finite = array[np.isfinite(array)]
    n = int(finite.size)
    if n == 0:
        return {"n_seeds": 0, "mean": math.nan, "sd": math.nan, "min": math.nan, "max": math.nan}
    return {"n_seeds": n, "mean": float(finite.mean()), "sd": float(finite.std(ddof=1)) if n > 1 else math.nan,
            "min": float(finite.min()), "max": float(finite.max())}


def flip_rate(predictions: Mapping[Hashable, pd.Series]) -> tuple[float, int, int]:
    """(rate, n_pairs, n_images): the mean over all seed pairs of the share of their common
    image ids (the Series' index) whose predicted label differs. A pair with no image in common
    is not counted; ``n_images``: the images compared in at least one pair. Fewer than two
    seeds (or no pair with common images): (NaN, 0, 0)."""
    shares, compared = [], set()
    for (_seed_a, a), (_seed_b, b) in itertools.combinations(sorted(predictions.items(), key=lambda kv: str(kv[0])), 2):
        common = a.index.intersection(b.index)
        if len(common) == 0:
            continue
        shares.append(float((a.loc[common].to_numpy() != b.loc[common].to_numpy()).mean()))
        compared.update(common)
    if not shares:
        return math.nan, 0, 0
    return float(np.mean(shares)), len(shares), len(compared)


@dataclass(frozen=True)
class SeedEffect:
    """A variant's effect against the baseline over matched seeds (variant - baseline)."""

    difference: float  # the mean over matched seeds of the per-seed differences
    lower: float
    upper: float
    paired_images: bool  # both arms scored the same test image ids in every matched seed
    n_seeds: int
    method: str

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


def hierarchical_method(n_resamples: int, confidence: float, paired_images: bool, n_seeds: int = 2) -> str:
    if n_seeds == 1:
        text = (f"one matched seed: bootstrap of its test images only, no seed noise "
                f"({n_resamples} resamples, percentile {confidence:.0%})")
    else:
        text = (f"hierarchical bootstrap: seeds, then test images within each seed "
                f"({n_resamples} resamples, percentile {confidence:.0%})")
    return text if paired_images else text + "; each arm's images drawn on their own (different test images)"


def seeds_only_method(confidence: float, n_seeds: int) -> str:
    if n_seeds < 2:
        return "one matched seed: no interval (one value per run)"
    return f"t interval over {n_seeds} seeds (one value per run; {confidence:.0%})"


def _as_series(values: Any) -> pd.Series:
    """Per-image values: a Series keeps its index (the image ids); anything else gets positions."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=np.float64).ravel())
    return series.astype(np.float64)


def _arms(baseline: Any, variant: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """The two arms of one seed as arrays, aligned on their image ids when they share them."""
    base, var = _as_series(baseline).dropna(), _as_series(variant).dropna()
    if len(base) == len(var) and base.index.is_unique and set(base.index) == set(var.index):
        return base.to_numpy(), var.loc[base.index].to_numpy(), True
    return base.to_numpy(), var.to_numpy(), False


def _image_draws(rng: np.random.Generator, count: int, n_images: int) -> np.ndarray:
    return rng.integers(0, n_images, size=(count, n_images), dtype=np.int64 if n_images > 2**31 - 1 else np.int32)


def hierarchical_paired_bootstrap(
    baseline: Mapping[Hashable, Any],
    variant: Mapping[Hashable, Any],
    statistic: Callable[..., Any] = np.mean,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> SeedEffect:
    """The effect of ``variant`` against ``baseline`` (each: seed -> per-image values, a Series
    indexed by image id or a 1-D array) over the seeds both have, with a percentile interval.

    Each resample draws the matched seeds with replacement and, for every drawn seed (each draw
    on its own), its test images with replacement: the same draws for both arms when they scored
    the same image ids (paired; arrays without ids pair by position when their lengths agree),
    else each arm's images independently. A resample's estimate is the mean over its drawn seeds
    of statistic(variant) - statistic(baseline). ``statistic`` must reduce along ``axis=1``
    (np.mean, np.median, ...). NaN values are dropped. No matched seed: NaN difference and bounds.
    """
    seeds = [key for key in baseline if key in variant]
    arms = [_arms(baseline[key], variant[key]) for key in seeds]
    arms = [(base, var, paired) for base, var, paired in arms if len(base) and len(var)]
    paired_images = bool(arms) and all(paired for _base, _var, paired in arms)
    method = hierarchical_method(n_resamples, confidence, paired_images, len(arms))
    if not arms:
        return SeedEffect(math.nan, math.nan, math.nan, False, 0, method)
    k = len(arms)
    difference = float(np.mean([statistic(var[None, :], axis=1)[0] - statistic(base[None, :], axis=1)[0]
                                for base, var, _paired in arms]))
    rng = np.random.default_rng(seed)
    drawn_seeds = rng.integers(0, k, size=(n_resamples, k))
    per_slot = np.empty((n_resamples, k), dtype=np.float64)
    for number, (base, var, paired) in enumerate(arms):
        slots = np.flatnonzero(drawn_seeds == number)  # flat positions (resample, slot) holding this seed
        if slots.size == 0:
            continue
        draws = _image_draws(rng, slots.size, len(base))
        base_stat = statistic(base[draws], axis=1)
        var_stat = statistic(var[draws if paired else _image_draws(rng, slots.size, len(var))], axis=1)
        per_slot.flat[slots] = var_stat - base_stat
    lower, upper, _ = percentile_interval(per_slot.mean(axis=1), confidence)
    return SeedEffect(difference, lower, upper, paired_images, k, method)


def seed_t_interval(
    baseline: Mapping[Hashable, float],
    variant: Mapping[Hashable, float],
    confidence: float = CONFIDENCE,
) -> SeedEffect:
    """The effect of a metric with one number per run (seed -> value; NaN dropped): the mean
    over matched seeds of variant - baseline, with the t interval of those differences
    (mean +/- t(k-1) sd / sqrt(k)). A percentile bootstrap of 2-5 values covers far less than
    its nominal level (about 70% for 3 seeds), the t interval its level for normal differences.
    One matched seed: no interval (NaN bounds). ``paired_images`` is False: no image is paired."""
    differences = np.array([float(variant[key]) - float(baseline[key]) for key in baseline if key in variant],
                           dtype=np.float64)
    differences = differences[np.isfinite(differences)]
    k = int(differences.size)
    method = seeds_only_method(confidence, k)
    if k == 0:
        return SeedEffect(math.nan, math.nan, math.nan, False, 0, method)
    difference = float(differences.mean())
    if k < 2:
        return SeedEffect(difference, math.nan, math.nan, False, k, method)
    half = float(stats.t.ppf(0.5 + confidence / 2, k - 1) * differences.std(ddof=1) / math.sqrt(k))
    return SeedEffect(difference, difference - half, difference + half, False, k, method)
