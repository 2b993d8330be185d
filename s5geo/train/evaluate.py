"""Accuracy of a trained checkpoint on a labelled split: confusion matrix, scores, plot.

The checkpoint is read by :func:`s5geo.models.loading.load_checkpoint_model` (weights-only; the
network is rebuilt from the config stored in it) and run over every whole image of the split with
sliding windows. Scores are computed by :mod:`s5geo.metrics` (numpy), reported in percent, and
written with the confusion-matrix figure (:mod:`s5geo.plots`).

Samples come from :func:`s5geo.data.module.build_source`: image folders give raw uint8 images,
divided here by ``data.input_scale``; raster scenes (:class:`s5geo.data.raster.GeoWindows`) give
images already scaled to 0..1 by their reader, used as they are (dividing them again would feed
the network near-zero inputs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.config import DataConfig
from s5geo.errors import UserError
from s5geo.evaluate import split_file_name
from s5geo.metrics import confusion_matrix, percent, scores


def evaluate_checkpoint(
    checkpoint: Path, data: DataConfig, split: str, out_dir: Path | None = None, threads: int = 2
) -> dict[str, Any]:
    """Scores (percent) of ``checkpoint`` on ``split``; writes ``<split>.json`` and the figure."""
    import torch

    from s5geo.data.augment import to_unit_range
    from s5geo.data.module import build_source
    from s5geo.datasets.classes import get_class_map
    from s5geo.models.loading import load_checkpoint_model
    from s5geo.plots import plot_confusion
    from s5geo.train.inference import predict_probs

    torch.set_num_threads(threads)
    net, cfg = load_checkpoint_model(Path(checkpoint))
    source = build_source(data, split)
    class_map = get_class_map(data.class_map)
    k = class_map.num_classes
    if k != cfg.model.num_classes:
        raise UserError(f"the model predicts {cfg.model.num_classes} classes, the data has {k}")
    mean = torch.tensor(data.mean).view(-1, 1, 1)
    std = torch.tensor(data.std).view(-1, 1, 1)
    cm = np.zeros((k, k), dtype=np.int64)
    for i in range(len(source)):  # type: ignore[arg-type]
        sample = source[i]
        x = (to_unit_range(sample["image"], data.input_scale) - mean) / std
        pred = predict_probs(net, x, k, tile=cfg.train.eval_tile).argmax(0)
        cm += confusion_matrix(sample["mask"].numpy(), pred.numpy(), k, class_map.ignore_index)
    result = percent(scores(cm), list(class_map.names))
    result.update({"split": split, "checkpoint": str(checkpoint), "confusion": cm.tolist()})
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        name = split_file_name(split)
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
        plot_confusion(cm, list(class_map.names), out_dir / f"confusion_{name}.png")
    return result
