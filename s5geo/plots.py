"""Figures of runs and evaluations: training curves and confusion matrices (matplotlib, Agg).

No torch: drawn by ``s5geo train`` and ``s5geo distill`` (curves, confusion matrix of the test
split), by the torch-free ONNX evaluation (:mod:`s5geo.evaluate`) and by ``s5geo fit`` (the
confusion matrix of its spatial cross-validation, :mod:`s5geo.fit.report`).
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


def plot_confusion(
    cm: npt.NDArray[np.integer],
    names: Sequence[str],
    out: Path,
    *,
    colors: Sequence[str] | None = None,
    title: str | None = None,
    counts: bool = False,
) -> None:
    """Row-normalised confusion matrix (reference rows, predicted columns), each cell in %.

    ``colors`` (a class's map colour) are drawn as swatches beside the reference rows, so the
    figure reads like the map; ``counts`` adds each cell's pixel count under its share, which
    tells a large share of a few pixels from a large share of many; ``title`` heads the figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt
    import matplotlib.transforms

    rows = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 2, 1.1 * len(names) + 1.5))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    if colors is not None:
        # A swatch of each class's map colour right of its row: the names stay black and
        # readable whatever the palette (light map colours vanish as text on white).
        strip = matplotlib.transforms.blended_transform_factory(ax.transAxes, ax.transData)
        for i, color in enumerate(colors):
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (1.02, i - 0.4), 0.04, 0.8, transform=strip, clip_on=False,
                    facecolor=color, edgecolor="0.3", linewidth=0.5,
                )
            )  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    if title is not None:
        ax.set_title(title, fontsize=9)
    for i in range(len(names)):
        for j in range(len(names)):
            text = f"{100 * share[i, j]:.0f}" + (f"\n({int(cm[i, j])})" if counts else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if counts else None,
                    color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
