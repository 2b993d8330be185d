"""Figures of runs and evaluations: training curves and confusion matrices (matplotlib, Agg).

No torch: drawn by ``s5geo train`` and ``s5geo distill`` (curves, confusion matrix of the test
split) and by the torch-free ONNX evaluation (:mod:`s5geo.evaluate`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt


def plot_curves(metrics_csv: Path, out: Path) -> None:
    """Loss and validation mIoU against step, from Lightning's CSV log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list[int], list[float]]] = {}
    with open(metrics_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                if key != "step" and key != "epoch" and value not in ("", None):
                    steps, values = series.setdefault(key, ([], []))
                    steps.append(int(row["step"]))
                    values.append(float(value))
    losses = [k for k in series if k.startswith("train/loss")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key in losses:
        axes[0].plot(*series[key], label=key, lw=0.8)
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    scores = [k for k in ("val/miou", "val/oa") if k in series]
    for key in scores:
        axes[1].plot(*series[key], marker="o", label=key)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("%")
    if scores:
        axes[1].legend()
    else:  # a run stopped before its first validation
        axes[1].text(0.5, 0.5, "no validation yet", ha="center", transform=axes[1].transAxes)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_confusion(cm: npt.NDArray[np.integer], names: Sequence[str], out: Path) -> None:
    """Row-normalised confusion matrix (reference rows, predicted columns) with counts as %."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2, 1.1 * len(names) + 1.5))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{100 * share[i, j]:.0f}", ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
