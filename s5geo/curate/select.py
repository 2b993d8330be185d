"""Diversity-constrained selection of RS4P (docs/methods.md, Curation steps 2-3), in numpy.

k-means on the labelled embeddings (M clusters, k-means++ seeding, spherical: embeddings are unit
normalised so the clusters agree with the cosine assignment), every unlabeled window assigned to
the centroid of highest cosine similarity, cluster quotas B_u * N_l(m) / N_l, and greedy acceptance
in ascending entropy while a window's cluster quota is open, with an optional entropy ceiling.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from s5geo.errors import UserError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def unit_rows(x: npt.ArrayLike) -> FloatArray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    a = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)


def kmeans(
    x: npt.ArrayLike, m: int, seed: int = 0, iterations: int = 100
) -> tuple[FloatArray, IntArray]:
    """Spherical k-means of the rows of ``x``: (unit centroids [m, D], labels [N])."""
    data = unit_rows(x)
    n = len(data)
    if not 1 <= m <= n:
        raise UserError(f"cannot make {m} clusters of {n} labelled embeddings (need 1 <= M <= {n})")
    rng = np.random.default_rng(seed)
    centroids = [data[rng.integers(n)]]
    for _ in range(1, m):  # k-means++ on cosine distance
        dist = np.clip(1.0 - np.max(data @ np.array(centroids).T, axis=1), 0.0, None)
        p = dist / dist.sum() if dist.sum() > 0 else np.full(n, 1.0 / n)
        centroids.append(data[rng.choice(n, p=p)])
    c = np.array(centroids)
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(iterations):
        new = np.argmax(data @ c.T, axis=1).astype(np.int64)
        if np.array_equal(new, labels):
            break
        labels = new
        for k in range(m):
            members = data[labels == k]
            if len(members):
                c[k] = members.sum(0)
        c = unit_rows(c)
    return c, labels


def assign(x: npt.ArrayLike, centroids: FloatArray) -> IntArray:
    """Cluster of highest cosine similarity for every row of ``x``."""
    return np.argmax(unit_rows(x) @ unit_rows(centroids).T, axis=1).astype(np.int64)


def quotas(labeled_counts: npt.ArrayLike, target: int) -> IntArray:
    """B_u * N_l(m) / N_l per cluster, rounded so the quotas sum to ``target`` (largest
    remainders get the leftover units)."""
    counts = np.asarray(labeled_counts, dtype=np.float64)
    if target < 0 or counts.sum() <= 0:
        raise UserError("quotas need a non-negative target and at least one labelled embedding")
    exact = target * counts / counts.sum()
    out = np.floor(exact).astype(np.int64)
    leftover = target - int(out.sum())
    order = np.argsort(-(exact - out), kind="stable")
    out[order[:leftover]] += 1
    return out


def select(
    entropy: npt.ArrayLike,
    cluster: npt.ArrayLike,
    quota: npt.ArrayLike,
    ceiling: float | None = None,
) -> IntArray:
    """Indices accepted walking the windows in ascending entropy (ties: pool order) while their
    cluster's quota is open; windows above ``ceiling`` (or with NaN entropy) are never taken."""
    h = np.asarray(entropy, dtype=np.float64)
    c = np.asarray(cluster, dtype=np.int64)
    left = np.array(quota, dtype=np.int64)
    keep = ~np.isnan(h)
    if ceiling is not None:
        keep &= h <= ceiling
    order = np.flatnonzero(keep)[np.argsort(h[keep], kind="stable")]
    chosen = []
    for i in order:
        if left[c[i]] > 0:
            left[c[i]] -= 1
            chosen.append(i)
            if not left.any():
                break
    return np.array(chosen, dtype=np.int64)


def random_subset(n: int, target: int, seed: int = 0) -> IntArray:
    """``target`` of ``n`` windows drawn uniformly without replacement (the random-pool baseline
    of the curated-vs-random comparison), in draw order: any prefix is itself a uniform sample."""
    if target < 0:
        raise UserError("the target size must not be negative")
    rng = np.random.default_rng(seed)
    return rng.permutation(n)[: min(target, n)].astype(np.int64)
