"""The fit report: spatial cross-validation scores as JSON, the confusion matrix as a PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.fit.classifier import Validation


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
    """The row-normalised confusion matrix, counts in each cell (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [class_names[k] for k in sorted(class_names)]
    cm = validation.confusion.astype(np.float64)
    share = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    size = 1.2 + 0.55 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(share * 100, cmap="Blues", vmin=0, vmax=100)
    for i in range(len(names)):
        for j in range(len(names)):
            color = "white" if share[i, j] > 0.5 else "black"
            text = f"{share[i, j] * 100:.0f}\n({int(cm[i, j])})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    for tick, k in zip(ax.get_yticklabels(), sorted(class_names), strict=True):
        tick.set_color(class_colors.get(k, "black"))
    ax.set_xlabel("predicted")
    ax.set_ylabel("labelled")
    ax.set_title(
        f"spatial {validation.folds}-fold CV: accuracy {validation.accuracy * 100:.1f} %, "
        f"mIoU {validation.miou * 100:.1f}",
        fontsize=9,
    )
    fig.colorbar(im, ax=ax, label="% of labelled pixels")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
