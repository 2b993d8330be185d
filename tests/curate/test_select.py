"""RS4P selection logic on constructed inputs: quotas, ascending-entropy order, ceiling, k-means."""

from __future__ import annotations

import numpy as np
import pytest

from s5geo.curate.select import assign, kmeans, quotas, select
from s5geo.errors import UserError


def test_quotas_are_proportional_and_sum_to_the_target() -> None:
    assert quotas([6, 3, 1], 10).tolist() == [6, 3, 1]
    assert quotas([6, 3, 1], 20).tolist() == [12, 6, 2]
    q = quotas([1, 1, 1], 10)  # 3.33 each: one leftover unit to the first largest remainder
    assert q.sum() == 10 and sorted(q.tolist()) == [3, 3, 4]
    assert quotas([5, 0, 5], 7).tolist()[1] == 0  # an empty labelled cluster gets nothing


def test_selection_walks_ascending_entropy_within_quotas() -> None:
    entropy = np.array([0.9, 0.1, 0.5, 0.2, 0.3, 0.05, 0.7])
    cluster = np.array([0, 0, 0, 1, 1, 1, 0])
    chosen = select(entropy, cluster, quota=[2, 1])
    # cluster 0 takes its two lowest (0.1, 0.5); cluster 1 its lowest (0.05) only
    assert chosen.tolist() == [5, 1, 2]
    assert np.all(np.diff(entropy[chosen]) >= 0)


def test_ceiling_and_nan_are_never_selected() -> None:
    entropy = np.array([0.1, np.nan, 0.4, 0.8, 0.2])
    cluster = np.zeros(5, dtype=np.int64)
    assert select(entropy, cluster, [5], ceiling=0.5).tolist() == [0, 4, 2]
    assert select(entropy, cluster, [5]).tolist() == [0, 4, 2, 3]


def test_ties_keep_pool_order_and_full_quotas_stop_early() -> None:
    entropy = np.array([0.3, 0.3, 0.3, 0.3])
    assert select(entropy, np.array([0, 1, 0, 1]), [1, 1]).tolist() == [0, 1]


def test_kmeans_finds_separated_directions_and_cosine_assignment() -> None:
    rng = np.random.default_rng(0)
    a = np.array([1.0, 0.0, 0.0]) + 0.05 * rng.normal(size=(20, 3))
    b = np.array([0.0, 1.0, 0.0]) + 0.05 * rng.normal(size=(10, 3))
    centroids, labels = kmeans(np.vstack([a, 5 * b]), 2, seed=1)  # scale does not matter
    assert len(set(labels[:20].tolist())) == 1 and len(set(labels[20:].tolist())) == 1
    assert labels[0] != labels[20]
    assert np.bincount(labels).tolist() in ([20, 10], [10, 20])
    probe = assign(np.array([[3.0, 0.1, 0.0], [0.0, 0.2, 0.0]]), centroids)
    assert probe[0] == labels[0] and probe[1] == labels[20]
    with pytest.raises(UserError):
        kmeans(a[:2], 3)
