"""The quick tier's classifier: a random forest on per-pixel features, checked by spatial CV.

A random forest is what analysts' tools fit on a few drawn polygons (ilastik, the QGIS
Semi-Automatic Classification and dzetsaka plugins, Earth Engine): it needs no tuning, no feature
scaling, is robust to a few hundred mislabelled pixels and gives class probabilities. scikit-learn
fits it; skl2onnx turns it into ONNX-ML's tree ensemble, which ONNX Runtime runs inside the model
file.

Accuracy is estimated by cross-validation with folds by label geometry (``groups``): pixels of one
polygon are strongly correlated, so letting them validate each other would report near-perfect
scores that say nothing about the rest of the scene.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

if TYPE_CHECKING:
    from sklearn.ensemble import RandomForestClassifier

# Enough trees for stable probabilities (the "unsure" map is read from them), and leaves of a few
# pixels so a forest of thousands of labelled pixels stays a few MB and fast per pixel in ONNX.
TREES = 64
MIN_LEAF = 3
MAX_DEPTH = 18
CV_FOLDS = 5


@dataclass(frozen=True)
class Validation:
    """Spatial cross-validation: pooled confusion matrix and the derived per-class scores."""

    confusion: np.ndarray  # [K, K], rows true, columns predicted
    folds: int
    mean_confidence: float  # mean highest probability on held-out pixels

    @property
    def iou(self) -> np.ndarray:
        tp = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(0) + self.confusion.sum(1) - tp
        return np.divide(tp, union, out=np.full_like(tp, np.nan), where=union > 0)

    @property
    def recall(self) -> np.ndarray:
        tp = np.diag(self.confusion).astype(np.float64)
        n = self.confusion.sum(1)
        return np.divide(tp, n, out=np.full_like(tp, np.nan), where=n > 0)

    @property
    def accuracy(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    @property
    def miou(self) -> float:
        return float(np.nanmean(self.iou))


def make_forest(seed: int = 0, threads: int = -1) -> RandomForestClassifier:
    """The forest, with class weights balanced: a few water polygons must count as much as land.

    scikit-learn is imported here, not with the module: it takes over a second to import, which
    every `s5geo fit` refused for its arguments would otherwise wait for.
    """
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=TREES,
        min_samples_leaf=MIN_LEAF,
        max_depth=MAX_DEPTH,
        max_features="sqrt",
        class_weight="balanced",
        n_jobs=threads,
        random_state=seed,
    )


def cross_validate(
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    classes: int,
    seed: int = 0,
    step: Callable[[int, int], None] | None = None,
) -> Validation | None:
    """Pooled out-of-fold predictions, folds by ``groups``; None with too few groups to fold.

    Each class needs at least two geometries for a fold to hold one out; with fewer the scores
    would measure nothing, so the report says so instead of inventing them.
    """
    per_class = [len(np.unique(groups[y == k])) for k in range(classes)]
    folds = min(CV_FOLDS, min(per_class))
    if folds < 2:
        return None
    from sklearn.model_selection import StratifiedGroupKFold

    confusion = np.zeros((classes, classes), np.int64)
    confidences = []
    split = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for i, (train, test) in enumerate(split.split(x, y, groups)):
        forest = make_forest(seed).fit(x[train], y[train])
        probs = np.zeros((len(test), classes), np.float32)
        probs[:, forest.classes_] = forest.predict_proba(x[test])
        pred = probs.argmax(1)
        np.add.at(confusion, (y[test], pred), 1)
        confidences.append(probs.max(1))
        if step is not None:
            step(i + 1, folds)
    return Validation(confusion, folds, float(np.concatenate(confidences).mean()))


def forest_onnx(forest: RandomForestClassifier, features: int) -> onnx.ModelProto:
    """The fitted forest as ONNX: ``features`` float [P, F] -> ``probabilities`` [P, K]."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    return convert_sklearn(
        forest,
        initial_types=[("features", FloatTensorType([None, features]))],
        options={id(forest): {"zipmap": False}},
        target_opset={"": 18, "ai.onnx.ml": 3},
    )
