"""Segmentation accuracy from a confusion matrix, in numpy only (part of the deployment install).

Accumulate a :func:`confusion_matrix` over tiles or scenes (it is additive), then read every score
from it with :func:`scores`. Rows are the reference class, columns the predicted class. Pixels whose
reference equals ``ignore_index`` are left out. A class that occurs neither in the reference nor in
the prediction has no IoU/F1 (NaN) and is left out of the means, the usual convention of mmseg.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def confusion_matrix(
    target: npt.ArrayLike, pred: npt.ArrayLike, num_classes: int, ignore_index: int | None = 255
) -> npt.NDArray[np.int64]:
    """Counts ``[K, K]`` of (reference, predicted) pairs; ignored and out-of-range refs dropped."""
    t = np.asarray(target).reshape(-1).astype(np.int64)
    p = np.asarray(pred).reshape(-1).astype(np.int64)
    if t.shape != p.shape:
        raise ValueError(f"target and prediction differ in size: {t.size} vs {p.size}")
    keep = (t >= 0) & (t < num_classes)
    if ignore_index is not None:
        keep &= t != ignore_index
    t, p = t[keep], p[keep]
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predicted class outside 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def scores(cm: npt.NDArray[np.integer[Any]]) -> dict[str, Any]:
    """mIoU, mean F1, overall accuracy and per-class IoU/F1/precision/recall, as fractions 0..1."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    ref = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    union = ref + pred - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        f1 = np.where(ref + pred > 0, 2 * tp / (ref + pred), np.nan)
        precision = np.where(pred > 0, tp / pred, np.nan)
        recall = np.where(ref > 0, tp / ref, np.nan)
    total = cm.sum()
    present = ~np.isnan(iou)
    return {
        "miou": float(np.mean(iou[present])) if present.any() else float("nan"),
        "mf1": float(np.mean(f1[present])) if present.any() else float("nan"),
        "overall_accuracy": float(tp.sum() / total) if total else float("nan"),
        "iou": iou.tolist(),
        "f1": f1.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "pixels": int(total),
    }


def percent(result: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Scores in percent with per-class values keyed by class name."""

    def pct(v: float) -> float | None:
        return None if np.isnan(v) else round(100 * v, 2)

    return {
        "miou": pct(result["miou"]),
        "mf1": pct(result["mf1"]),
        "overall_accuracy": pct(result["overall_accuracy"]),
        "iou": {n: pct(v) for n, v in zip(names, result["iou"], strict=True)},
        "f1": {n: pct(v) for n, v in zip(names, result["f1"], strict=True)},
        "pixels": result["pixels"],
    }
