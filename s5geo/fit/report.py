"""The fit report: spatial cross-validation scores as JSON, the confusion matrix as a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.fit.classifier import Validation
from s5geo.plots import plot_confusion


def per_class(validation: Validation | None, class_names: dict[int, str]) -> list[dict[str, Any]]:
    """One row per class: its labelled pixels, recall (accuracy) and IoU on held-out folds."""
    rows = []
    for i, (k, name) in enumerate(sorted(class_names.items())):
        row: dict[str, Any] = {"class_id": k, "class_name": name}
        if validation is not None:
            row["pixels"] = int(validation.confusion[i].sum())
            row["accuracy"] = _num(validation.recall[i])
            row["iou"] = _num(validation.iou[i])
        rows.append(row)
    return rows


def _num(v: float) -> float | None:
    return None if np.isnan(v) else round(float(v) * 100, 2)


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def confusion_png(
    validation: Validation, class_names: dict[int, str], class_colors: dict[int, str], out: Path
) -> None:
    """The cross-validated confusion matrix, class names in their map colours, pixel counts in
    each cell and the scores in the title (:func:`s5geo.plots.plot_confusion`)."""
    ids = sorted(class_names)
    title = (
        f"spatial {validation.folds}-fold CV: accuracy {validation.accuracy * 100:.1f} %, "
        f"mIoU {validation.miou * 100:.1f}"
    )
    plot_confusion(
        validation.confusion,
        [class_names[k] for k in ids],
        out,
        colors=[class_colors.get(k, "black") for k in ids],
        title=title,
        counts=True,
    )
