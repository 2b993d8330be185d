"""The fit report: per-class scores as the JSON holds them, and the confusion-matrix figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np

from s5geo.fit.classifier import Validation
from s5geo.fit.report import confusion_png, per_class

NAMES = {1: "water", 2: "trees", 7: "crops"}
# Confusion counts, labelled rows, predicted columns; crops has no labelled pixel.
CONFUSION = np.array([[90, 10, 0], [20, 80, 0], [0, 0, 0]])


def test_per_class_scores_are_percentages_and_none_where_unmeasured() -> None:
    rows = per_class(Validation(CONFUSION, folds=5, mean_confidence=0.8), NAMES)
    assert [r["class_id"] for r in rows] == [1, 2, 7]
    assert rows[0] == {
        "class_id": 1, "class_name": "water", "pixels": 100, "accuracy": 90.0, "iou": 75.0,
    }  # fmt: skip
    assert rows[2]["pixels"] == 0 and rows[2]["accuracy"] is None and rows[2]["iou"] is None
    assert per_class(None, NAMES)[1] == {"class_id": 2, "class_name": "trees"}


def test_confusion_figure_names_classes_in_their_map_colours(tmp_path: Path) -> None:
    """The class names carry the labels' colours: a red class shows red, which the blue cells of
    the matrix never are."""
    out = tmp_path / "m.confusion.png"
    validation = Validation(CONFUSION, folds=5, mean_confidence=0.8)
    confusion_png(validation, NAMES, {1: "#E6194B"}, out)
    rgb = matplotlib.image.imread(out)[..., :3]
    red = (rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.45)
    assert red.sum() > 10
    confusion_png(validation, NAMES, {}, out)  # no colours: names in black
    rgb = matplotlib.image.imread(out)[..., :3]
    assert not ((rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.45)).any()
