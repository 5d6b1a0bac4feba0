"""Strategy clusters of one model's explanation maps for one class, in the style of Spectral
Relevance Analysis (SpRAy, Lapuschkin et al. 2019, "Unmasking Clever Hans predictors").

Maps that look alike (same place, same shape) are grouped with spectral clustering on a
symmetric k-nearest-neighbour graph; the number of groups comes from the eigengap of the
normalised graph Laplacian. A small, tight group whose maps sit off the head is a
"Clever Hans" candidate: a handful of images the model decides on with a shortcut.

    result = strategy_clusters(cams, head_masks=heads)     # cams (N, h, w) in [0, 1]
    result.table()                                         # one row per cluster
    suspects = clever_hans_candidates(result)

NumPy, OpenCV, SciPy and scikit-learn only.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, sparse
from scipy.sparse.csgraph import laplacian
from scipy.sparse.linalg import eigsh
from sklearn.cluster import SpectralClustering
from sklearn.neighbors import kneighbors_graph

from bt_core.regions import map_share, resize_maps

# Maps are compared at this resolution: coarse enough that a one-cell shift of a blob does
# not make two maps of the same strategy look unrelated (SpRAy works on coarse maps too).
DEFAULT_MAP_SIZE = 16
# The eigengap is searched among 1..MAX_CLUSTERS clusters; more strategies than this per
# class are not readable by a person anyway.
MAX_CLUSTERS = 8
# A k >= 2 needs l_k <= MAX_EIGEN_RATIO * l_(k+1) (see choose_k). On synthetic maps, groups
# give ratios of 0 to ~0.2 and one homogeneous cloud (or noise) 0.37 to 0.97.
MAX_EIGEN_RATIO = 0.25
# Eigenvalues below this are round-off of an exact 0 (one per connected component).
ZERO_EIGENVALUE = 1e-9
# A dense eigensolver up to this many maps (exact, milliseconds); beyond it ARPACK, which
# needs far fewer operations for the ~9 eigenvalues wanted (0.03 s vs 0.5 s at N = 1125).
DENSE_EIGEN_LIMIT = 300

# Clever-Hans candidate rule (see clever_hans_candidates): a cluster holding at most this
# share of the maps, with at least MIN_CANDIDATE_SIZE maps (a strategy, not an outlier), ...
MAX_CANDIDATE_SHARE = 0.25
MIN_CANDIDATE_SIZE = 3
# ... and at least this share of its mass off the head (more off the head than on it).
MIN_OFF_HEAD_SHARE = 0.5


@dataclass(frozen=True, eq=False)
class Cluster:
    """One strategy: its maps, their mean, and how alike they are."""

    label: int  # 0 is the largest cluster
    size: int
    share: float  # size / N
    members: np.ndarray  # indices into the input, closest to the cluster mean first
    mean_map: np.ndarray  # (h, w) float32 mean of the members' maps at the input size
    tightness: float  # mean distance of members to the centroid (unit-sum maps at map_size)
    off_head: float | None  # share of the members' map mass outside their head; None without masks


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """Spectral clusters of N explanation maps."""

    labels: np.ndarray  # (N,) cluster label of each map
    k: int
    eigenvalues: np.ndarray  # smallest eigenvalues of the normalised Laplacian, ascending
    clusters: tuple[Cluster, ...]  # by label, i.e. largest first
    n_neighbors: int  # k of the kNN graph (0 when no graph was built)
    map_size: int
    notes: tuple[str, ...]  # what was done about edge cases (NaN maps, too few maps, ...)

    def table(self) -> pd.DataFrame:
        """One row per cluster: label, size, share, tightness, off_head, first members."""
        return pd.DataFrame(
            [
                {
                    "cluster": c.label,
                    "size": c.size,
                    "share": c.share,
                    "tightness": c.tightness,
                    "off_head": c.off_head,
                    "examples": c.members[:5].tolist(),
                }
                for c in self.clusters
            ]
        )


def _as_maps(maps: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Float32 (N, h, w) with NaN / inf set to 0 and negatives clipped, plus notes."""
    array = np.asarray(maps, dtype=np.float32)
    if array.ndim != 3:
        raise ValueError(f"maps must be (N, h, w), got shape {array.shape}")
    if len(array) == 0:
        raise ValueError("no maps to cluster (N = 0)")
    notes = []
    bad = ~np.isfinite(array)
    if bad.any():
        count = int(bad.reshape(len(array), -1).any(axis=1).sum())
        notes.append(f"{count} map(s) had NaN/inf values; those pixels were treated as 0")
        array = np.where(bad, 0.0, array).astype(np.float32)
    return np.clip(array, 0.0, None), notes


def map_features(maps: np.ndarray, map_size: int = DEFAULT_MAP_SIZE) -> np.ndarray:
    """(N, map_size**2): each map resized (``resize_maps``: area filter when shrinking), scaled
    to unit sum, flattened.

    Unit sum compares where a map looks, not how strong it is. A map with no mass becomes
    uniform ("looks nowhere in particular") so it is not a zero vector next to every sparse map.
    """
    clean, _ = _as_maps(maps)
    small = resize_maps(clean, map_size).reshape(len(clean), -1).astype(np.float64)
    sums = small.sum(axis=1, keepdims=True)
    uniform = np.full_like(small, 1.0 / small.shape[1])
    return np.where(sums > 0, small / np.where(sums > 0, sums, 1.0), uniform)


def default_neighbors(n: int) -> int:
    """ceil(ln N) neighbours (von Luxburg's rule for a connected kNN graph), at least 2.

    Not sqrt(N): a group of maps can only stand apart when it has more than k members, and
    Clever-Hans groups are small (with N = 68 and sqrt(N) = 8 neighbours, a group of 8
    corner maps was joined to the rest; with ln N -> 5 it was found).
    """
    return max(2, math.ceil(math.log(max(n, 2))))


def _knn_affinity(features: np.ndarray, n_neighbors: int) -> sparse.csr_matrix:
    """Symmetric 0/1 kNN graph: i and j are linked when either is among the other's k nearest."""
    graph = kneighbors_graph(features, n_neighbors=n_neighbors, mode="connectivity", include_self=False)
    return graph.maximum(graph.T).tocsr()


def _smallest_eigenvalues(affinity: sparse.csr_matrix, count: int) -> np.ndarray:
    """The ``count`` smallest eigenvalues of the symmetric normalised Laplacian, ascending."""
    lap = laplacian(affinity.astype(np.float64), normed=True)
    n = lap.shape[0]
    if n <= DENSE_EIGEN_LIMIT:
        values = linalg.eigh(lap.toarray(), eigvals_only=True, subset_by_index=[0, count - 1])
    else:
        # Largest eigenvalues of 2I - L are the smallest of L, and ARPACK finds largest ones fast.
        shifted = 2.0 * sparse.identity(n, format="csr") - lap
        values = 2.0 - eigsh(shifted, k=count, which="LA", return_eigenvectors=False)
    return np.clip(np.sort(values), 0.0, 2.0)


def choose_k(eigenvalues: np.ndarray, max_k: int = MAX_CLUSTERS, max_ratio: float = MAX_EIGEN_RATIO) -> int:
    """Number of clusters from ascending normalised-Laplacian eigenvalues l_1 <= l_2 <= ...

    A graph of k well-separated groups has k eigenvalues near 0 and then a jump. So k in
    2..max_k is a candidate when its gap is clear *relative to the scale of the spectrum*:
    l_k <= ``max_ratio`` * l_(k+1). Of the candidates, the one with the widest gap
    l_(k+1) - l_k wins (the classic eigengap rule). No candidate -> 1 cluster. The relative
    test matters because absolute gaps shrink with N and with fewer kNN neighbours, and one
    homogeneous cloud of maps has a smooth spectrum (here l_k / l_(k+1) >= ~0.4).
    """
    values = np.asarray(eigenvalues, dtype=np.float64)
    values = np.where(values < ZERO_EIGENVALUE, 0.0, values)  # round-off on exact zeros
    max_k = min(max_k, len(values) - 1)
    best, best_gap = 1, 0.0
    for k in range(2, max_k + 1):
        low, high = values[k - 1], values[k]
        if high > 0 and low <= max_ratio * high and high - low > best_gap:
            best, best_gap = k, high - low
    return best


def _off_head_shares(maps: np.ndarray, head_masks: np.ndarray | None) -> np.ndarray | None:
    """Per map, the share of its mass outside its head mask (NaN for a map with no mass):
    the ``outside_head`` measure of :mod:`bt_core.shortcuts.attention`."""
    if head_masks is None:
        return None
    return 1.0 - map_share(maps, head_masks)


def _build_clusters(
    labels: np.ndarray, features: np.ndarray, maps: np.ndarray, off_head: np.ndarray | None
) -> tuple[np.ndarray, tuple[Cluster, ...]]:
    """Relabel so 0 is the largest cluster (ties: first appearance) and describe each one."""
    found, first, counts = np.unique(labels, return_index=True, return_counts=True)
    order = sorted(range(len(found)), key=lambda i: (-counts[i], first[i]))
    relabel = {int(found[i]): new for new, i in enumerate(order)}
    labels = np.array([relabel[int(v)] for v in labels], dtype=int)
    clusters = []
    for label in range(len(found)):
        members = np.flatnonzero(labels == label)
        centroid = features[members].mean(axis=0)
        distances = np.linalg.norm(features[members] - centroid, axis=1)
        by_distance = np.argsort(distances, kind="stable")
        share = None
        if off_head is not None:
            member_shares = off_head[members]
            share = float(np.nanmean(member_shares)) if np.isfinite(member_shares).any() else None
        clusters.append(
            Cluster(
                label=label,
                size=len(members),
                share=len(members) / len(labels),
                members=members[by_distance],
                mean_map=maps[members].mean(axis=0).astype(np.float32),
                tightness=float(distances.mean()),
                off_head=share,
            )
        )
    return labels, tuple(clusters)


def strategy_clusters(
    maps: np.ndarray,
    head_masks: np.ndarray | None = None,
    map_size: int = DEFAULT_MAP_SIZE,
    n_neighbors: int | None = None,
    max_k: int = MAX_CLUSTERS,
    seed: int = 0,
    off_head: np.ndarray | None = None,
) -> ClusterResult:
    """SpRAy-style clusters of explanation maps ``(N, h, w)`` (values in [0, 1], NaN -> 0).

    ``head_masks``: bool ``(N, H, W)`` or one ``(H, W)``, any size, for each cluster's
    off-head share; or ``off_head``: each map's share outside the head, already measured
    (the attention table's ``outside_head``), instead. ``n_neighbors`` of the kNN graph:
    see :func:`default_neighbors`. Fewer than 3 maps, or maps that are all the same, give
    one cluster (see ``notes``).
    """
    clean, notes = _as_maps(maps)
    n = len(clean)
    features = map_features(clean, map_size)
    if off_head is not None:
        off_head = np.asarray(off_head, dtype=np.float64)
        if off_head.shape != (n,):
            raise ValueError(f"off_head must be one share per map ({n},), got {off_head.shape}")
    else:
        off_head = _off_head_shares(clean, head_masks)

    def single(reason: str) -> ClusterResult:
        labels, clusters = _build_clusters(np.zeros(n, dtype=int), features, clean, off_head)
        return ClusterResult(labels, 1, np.zeros(0), clusters, 0, map_size, tuple(notes + [reason]))

    if n < 3:
        return single(f"only {n} map(s): too few to cluster, reported as one cluster")
    if np.ptp(features, axis=0).max() <= 1e-12:
        return single("all maps are identical after downsampling: one cluster")

    k_nn = max(1, min(int(n_neighbors) if n_neighbors is not None else default_neighbors(n), n - 1))
    affinity = _knn_affinity(features, k_nn)
    eigenvalues = _smallest_eigenvalues(affinity, min(max_k + 1, n))
    k = choose_k(eigenvalues, max_k)
    if k == 1:
        labels, clusters = _build_clusters(np.zeros(n, dtype=int), features, clean, off_head)
        return ClusterResult(labels, 1, eigenvalues, clusters, k_nn, map_size, tuple(notes))

    model = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed, assign_labels="kmeans")
    with warnings.catch_warnings():
        # A kNN graph of well-separated strategies is disconnected by design; that is fine here.
        warnings.filterwarnings("ignore", message="Graph is not fully connected")
        raw = model.fit_predict(affinity)
    labels, clusters = _build_clusters(raw, features, clean, off_head)
    if len(clusters) < k:
        notes.append(f"spectral clustering returned {len(clusters)} non-empty clusters of the {k} asked for")
    return ClusterResult(labels, len(clusters), eigenvalues, clusters, k_nn, map_size, tuple(notes))


def clever_hans_candidates(
    result: ClusterResult,
    max_share: float = MAX_CANDIDATE_SHARE,
    min_size: int = MIN_CANDIDATE_SIZE,
    min_off_head: float | None = MIN_OFF_HEAD_SHARE,
) -> list[Cluster]:
    """Clusters that are small (share <= ``max_share``, size >= ``min_size``), tight (tightness
    strictly below the median of all clusters) and mostly off the head (off-head share >=
    ``min_off_head``), most off-head first.

    Needs head masks in :func:`strategy_clusters`; pass ``min_off_head=None`` to judge on size
    and tightness alone. With one cluster there is never a candidate.
    """
    if min_off_head is not None and all(c.off_head is None for c in result.clusters):
        raise ValueError("no off-head shares: pass head_masks to strategy_clusters, or min_off_head=None")
    if len(result.clusters) < 2:
        return []
    median = float(np.median([c.tightness for c in result.clusters]))
    chosen = [
        c
        for c in result.clusters
        if c.share <= max_share
        and c.size >= min_size
        and c.tightness < median
        and (min_off_head is None or (c.off_head is not None and c.off_head >= min_off_head))
    ]
    return sorted(chosen, key=lambda c: -(c.off_head or 0.0))
