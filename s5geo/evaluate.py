"""Accuracy of an ONNX model file on a labelled split, through the same tiled predictor as predict.

Each image of the split is predicted with :func:`s5geo.infer.predict_scene` (windows, blending,
nodata handling exactly as for users' scenes) into a temporary folder, and compared with its mask.
Part of the deployment install: no torch.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from s5geo.config import DataConfig
from s5geo.data.classes import get_class_map
from s5geo.data.splits import find_image, read_split
from s5geo.errors import UserError
from s5geo.infer import load_model, predict_scene
from s5geo.metrics import confusion_matrix, percent, scores


def labelled_pairs(data: DataConfig, split: str) -> list[tuple[Path, Path]]:
    """(image, mask) paths of ``split`` for an image-folder dataset."""
    if data.kind != "image_folder":
        raise UserError(
            f"ONNX evaluation reads image-folder datasets; data.kind {data.kind!r} is evaluated "
            "from a checkpoint (s5geo evaluate RUN.ckpt)"
        )
    root = data.resolved_root()
    stems = read_split(root, data.splits_file, split)
    return [
        (find_image(root / data.images_dir, s), find_image(root / data.masks_dir, s)) for s in stems
    ]


def _read_mask(path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as ds:
            return ds.read(1) if ds.count == 1 else np.moveaxis(ds.read([1, 2, 3]), 0, -1)


def evaluate_onnx(
    model_path: Path | None,
    data: DataConfig,
    split: str,
    out_dir: Path | None = None,
    providers: list[str] | None = None,
) -> dict[str, Any]:
    """Scores in percent (mIoU, per-class IoU and F1, overall accuracy) of a model file on a split.

    ``model_path`` None means the bundled default model. With ``out_dir``, writes
    ``<split>.json`` and, when matplotlib is installed, the confusion-matrix figure.
    """
    model = load_model(model_path, providers)
    class_map = get_class_map(data.class_map)
    k = class_map.num_classes
    if model.info.num_classes != k:
        raise UserError(
            f"the model predicts {model.info.num_classes} classes, "
            f"the data's class map {data.class_map!r} has {k}"
        )
    cm = np.zeros((k, k), np.int64)
    pairs = labelled_pairs(data, split)
    with tempfile.TemporaryDirectory(prefix="s5geo-eval-") as tmp:
        for i, (image, mask_path) in enumerate(pairs):
            out = Path(tmp) / f"{i}.tif"
            with warnings.catch_warnings():  # image folders carry no georeferencing
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                predict_scene(image, out, model=model)
                with rasterio.open(out) as ds:
                    pred = ds.read(1)
            truth = class_map.encode(_read_mask(mask_path))
            if truth.shape != pred.shape:
                raise UserError(f"{mask_path} differs in size from {image}")
            cm += confusion_matrix(truth, pred, k, class_map.ignore_index)
    result = percent(scores(cm), list(class_map.names))
    result.update(
        {"split": split, "model": str(model.path), "images": len(pairs), "confusion": cm.tolist()}
    )
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"{split}.json").write_text(json.dumps(result, indent=2))
        try:
            from s5geo.train.plots import plot_confusion
        except ImportError:  # matplotlib belongs to the training install
            pass
        else:
            plot_confusion(cm, list(class_map.names), out_dir / f"confusion_{split}.png")
    return result
