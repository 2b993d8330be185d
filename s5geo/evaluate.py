"""Accuracy of an ONNX model file on a labelled split, through the same tiled predictor as predict.

Each image of the split is predicted with :func:`s5geo.infer.predict_scene` (windows, blending,
nodata handling exactly as for users' scenes) into a temporary folder, and compared with its label.
The data are read as training reads them:

- the split's images and labels come from :mod:`s5geo.datasets.splits` (splits-file names such as
  Dubai's, or split specs that pair a benchmark's files in their distributed layout: ISPRS tile
  ids, LoveDA folders, OpenEarthMap lists; ``train``/``val``/``test`` name the config's splits);
- images are read with the config's ``data.bands`` (the model's normalisation is its own), on
  their pixel grid (no resampling to the model's resolution, as for training and checkpoint
  evaluation), grey-scale PNG/JPEG images repeated to the bands asked for (as Pillow's RGB
  conversion does in training);
- labels are decoded by the data's class map (:class:`s5geo.datasets.classes.ClassMap`: colour-coded
  ISPRS/iSAID labels, LoveDA/OpenEarthMap value offsets; unlisted values and colours are ignored);
  pixels the predictor leaves as nodata are ignored, as training ignores nodata pixels.

Part of the deployment install: no torch. It imports only the deployment's packages
(:mod:`s5geo.infer`, :mod:`s5geo.io`, :mod:`s5geo.datasets`, :mod:`s5geo.plots`), which
import-linter checks (``make lint``).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.errors import NotGeoreferencedWarning

from s5geo.config import DataConfig
from s5geo.datasets.classes import get_class_map
from s5geo.datasets.splits import split_pairs
from s5geo.errors import UserError
from s5geo.infer import Model, PredictOptions, load_model, predict_scene
from s5geo.io.atomic import atomic_outputs, check_output_folder
from s5geo.metrics import confusion_matrix, percent, scores
from s5geo.modelfile import NODATA
from s5geo.plots import plot_confusion

TIFF_SUFFIXES = (".tif", ".tiff")
AS_TRAINED = PredictOptions(resample=False)  # each image on its own pixel grid, as training reads


def labelled_pairs(data: DataConfig, split: str) -> list[tuple[Path, Path]]:
    """(image, label) paths of ``split`` of an image-folder dataset, found and paired as for
    training (:func:`s5geo.datasets.splits.split_pairs`)."""
    if data.kind != "image_folder":
        raise UserError(
            f"ONNX evaluation reads image-folder datasets; data.kind {data.kind!r} is evaluated "
            "from a checkpoint (s5geo evaluate RUN.ckpt)"
        )
    root = data.resolved_root()
    if not root.is_dir():
        raise UserError(f"data root not found: {root} (set S5GEO_DATA or data.root)")
    return split_pairs(data, split)


def _open(path: Path) -> Any:
    with warnings.catch_warnings():  # image folders need not be georeferenced
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        return rasterio.open(path)


def read_label(path: Path) -> npt.NDArray[Any]:
    """Raw label values ``[H, W]`` or colours ``[H, W, 3]``, as training reads label files
    (three or more bands are colours, otherwise the first band holds the values)."""
    with _open(path) as ds:
        if ds.count >= 3:
            return np.moveaxis(ds.read([1, 2, 3]), 0, -1)
        return np.asarray(ds.read(1))


def image_bands(path: Path, bands: tuple[int, ...]) -> tuple[int, ...]:
    """The bands of ``path`` that give the model ``bands``: ``bands`` itself, or band 1 repeated
    for a one-band PNG/JPEG asked for bands of 1..3 (training converts such images to RGB)."""
    if path.suffix.lower() in TIFF_SUFFIXES or max(bands) > 3:
        return bands
    with _open(path) as ds:
        count = ds.count
    return (1,) * len(bands) if count == 1 else bands


def _model_reading(model: Model, bands: tuple[int, ...]) -> Model:
    """``model`` reading ``bands`` of each image (its session and normalisation unchanged)."""
    if bands == model.info.bands:
        return model
    return dataclasses.replace(model, info=dataclasses.replace(model.info, bands=bands))


def evaluate_onnx(
    model_path: Path | None,
    data: DataConfig,
    split: str,
    out_dir: Path | None = None,
    providers: list[str] | None = None,
) -> dict[str, Any]:
    """Scores in percent (mIoU, per-class IoU and F1, overall accuracy) of a model file on a split.

    ``model_path`` None means the bundled default model. ``split`` is a splits-file name, a split
    spec, or ``train``/``val``/``test`` for the config's splits (:mod:`s5geo.datasets.splits`). With
    ``out_dir``, writes ``<split>.json`` (:func:`split_file_name`) and the confusion-matrix
    figure, replacing earlier results of the split; ``out_dir``
    is checked before any work and created then, but not the folders above it
    (:func:`s5geo.io.atomic.check_output_folder`).
    """
    if out_dir is not None:
        check_output_folder(out_dir)
    model = load_model(model_path, providers)
    class_map = get_class_map(data.class_map)
    k = class_map.num_classes
    if model.info.num_classes != k:
        raise UserError(
            f"the model predicts {model.info.num_classes} classes, "
            f"the data's class map {data.class_map!r} has {k}"
        )
    bands = tuple(int(b) for b in data.bands)
    if len(bands) != len(model.info.bands):
        raise UserError(
            f"the model reads {len(model.info.bands)} band(s), data.bands lists {len(bands)} "
            f"({list(bands)})"
        )
    cm = np.zeros((k, k), np.int64)
    pairs = labelled_pairs(data, split)
    with tempfile.TemporaryDirectory(prefix="s5geo-eval-") as tmp:
        for i, (image, label_path) in enumerate(pairs):
            out = Path(tmp) / f"{i}.tif"
            reader = _model_reading(model, image_bands(image, bands))
            with warnings.catch_warnings():  # image folders need not be georeferenced
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                predict_scene(image, out, model=reader, options=AS_TRAINED)
                with rasterio.open(out) as ds:
                    pred = ds.read(1)
            truth = class_map.encode(read_label(label_path))
            if truth.shape != pred.shape:
                raise UserError(
                    f"{label_path} ({truth.shape[1]} x {truth.shape[0]} px) differs in size "
                    f"from {image} ({pred.shape[1]} x {pred.shape[0]} px)"
                )
            truth = np.where(pred == NODATA, class_map.ignore_index, truth)  # image nodata
            cm += confusion_matrix(truth, pred, k, class_map.ignore_index)
            out.unlink(missing_ok=True)
    result = percent(scores(cm), list(class_map.names))
    result.update(
        {
            "split": split,
            "model": str(model.path),
            "images": len(pairs),
            "bands": list(bands),
            "confusion": cm.tolist(),
        }
    )
    if out_dir is not None:
        write_results(out_dir, split, result, list(class_map.names))
    return result


def write_results(out_dir: Path, split: str, result: dict[str, Any], names: list[str]) -> None:
    """Write ``<split>.json`` and the confusion-matrix figure into ``out_dir``, together: both
    complete or neither (earlier results of the split are replaced). A folder created here is
    removed again when they cannot be written."""
    created = not out_dir.exists()
    out_dir.mkdir(exist_ok=True)
    name = split_file_name(split)
    try:
        with atomic_outputs(overwrite=True) as outputs:
            outputs.temp(out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
            figure = outputs.temp(out_dir / f"confusion_{name}.png")
            plot_confusion(np.asarray(result["confusion"]), names, figure)
    except BaseException:
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise


def split_file_name(split: str) -> str:
    """``split`` as a file name part: split specs may hold ``/`` (``dir=Train/Urban``) and other
    characters file names avoid; ``test`` stays ``test``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in split)
