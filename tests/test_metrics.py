"""Confusion-matrix metrics against hand-computed values."""

import math

import numpy as np
import pytest

from s5geo.metrics import confusion_matrix, scores


def test_confusion_matrix_counts_and_ignores() -> None:
    target = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 2, 0]])
    cm = confusion_matrix(target, pred, num_classes=3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]


def test_scores_match_hand_computation() -> None:
    cm = np.array([[1, 1, 0], [0, 2, 0], [0, 0, 1]])
    s = scores(cm)
    assert s["iou"] == pytest.approx([0.5, 2 / 3, 1.0])
    assert s["miou"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert s["f1"] == pytest.approx([2 / 3, 0.8, 1.0])
    assert s["overall_accuracy"] == pytest.approx(4 / 5)
    assert s["pixels"] == 5


def test_absent_class_is_excluded_from_mean() -> None:
    cm = confusion_matrix([0, 0, 1], [0, 0, 1], num_classes=3)
    s = scores(cm)
    assert math.isnan(s["iou"][2])
    assert s["miou"] == 1.0


def test_matrices_accumulate() -> None:
    a = confusion_matrix([0, 1], [0, 0], 2)
    b = confusion_matrix([1, 1], [1, 1], 2)
    assert (a + b).tolist() == confusion_matrix([0, 1, 1, 1], [0, 0, 1, 1], 2).tolist()


def test_prediction_out_of_range_is_an_error() -> None:
    with pytest.raises(ValueError):
        confusion_matrix([0], [3], 2)
