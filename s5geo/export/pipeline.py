"""``s5geo export``: checkpoint -> ONNX model file (+ FP16, INT8, TensorRT engine), atomically.

The real windows used for the parity check and INT8 calibration come from the run's own data
config (its validation split), scaled exactly as the model file will say (the run's per-band
standardisation goes into the graph, :mod:`s5geo.export.standardize`); FP16 and INT8
versions are compared with the FP32 file on windows of other images (:func:`comparison_images`).

A MoE-MDF checkpoint (``s5geo.train.mdf``) holds several datasets; ``dataset`` picks one, whose
path (shared weights + its expert merged into ``fc2`` + its decoder,
:func:`s5geo.models.moe.dataset_path`) is exported as an ordinary single-dataset model with that
dataset's classes, colours, bands and normalisation: a dense model's graph and cost.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning

from s5geo import __version__
from s5geo.config import Config
from s5geo.errors import UserError
from s5geo.export.compare import compare_variant
from s5geo.export.onnx_export import export_model
from s5geo.export.quantize import to_fp16, to_int8
from s5geo.export.standardize import standardize_in_graph
from s5geo.export.tensorrt import build_engine, require_tensorrt
from s5geo.io.atomic import atomic_outputs
from s5geo.modelfile import ModelInfo

# Overlap recorded in exported models: windows overlap by this share when s5geo predicts.
EXPORT_OVERLAP_PCT = 12.5


def model_info_for(
    cfg: Config, checkpoint: Path, tile: int, extra_recipe: dict[str, Any] | None = None
) -> ModelInfo:
    """The model-file metadata of a trained run: classes, bands, normalisation, provenance."""
    from s5geo.datasets.classes import class_map_for

    classes = class_map_for(cfg.data.class_map)
    if len(classes.names) != cfg.model.num_classes:
        raise UserError(
            f"the model predicts {cfg.model.num_classes} classes but class map "
            f"{cfg.data.class_map!r} names {len(classes.names)}"
        )
    return ModelInfo(
        class_names=dict(enumerate(classes.names)),
        class_colors=dict(enumerate(classes.colors)),
        tile_size=tile,
        overlap_pct=EXPORT_OVERLAP_PCT,
        bands=tuple(cfg.data.bands),
        input_scale=float(cfg.data.input_scale),
        mean=tuple(cfg.data.mean),
        std=tuple(cfg.data.std),
        resolution_cm=float(getattr(cfg.data, "gsd_cm", 0.0) or 0.0),
        version=__version__,
        architecture=cfg.model.name,
        recipe={
            "checkpoint": checkpoint.name,
            "data": cfg.data.root,
            "class_map": cfg.data.class_map,
            "method": cfg.train.method,
            "steps": cfg.train.steps,
            "seed": cfg.train.seed,
            **(extra_recipe or {}),
        },
    )


def split_images(cfg: Config, split: str) -> list[Path]:
    """The images of one split of the run's data config, found as training finds them.

    Image folders and raster scenes by :func:`s5geo.datasets.splits.split_items` (splits-file names
    or split specs over a benchmark's own layout); ``aligned`` scenes by their ``stems=`` part
    (all scenes without one).
    """
    data = cfg.data
    root = data.resolved_root()
    if not root.is_dir():
        raise UserError(
            f"data root not found: {root} (set S5GEO_DATA or data.root): the parity check and "
            "calibration read real windows of the run's validation split"
        )
    if data.kind in ("image_folder", "raster"):
        from s5geo.datasets.splits import split_items

        return [item.image for item in split_items(data, split, with_masks=False)]
    from s5geo.data.aligned import SplitSpec

    stems = SplitSpec.parse(split).stems
    scenes = sorted((root / data.images_dir).glob(data.image_glob))
    return [p for p in scenes if stems is None or p.stem in stems]


def validation_images(cfg: Config) -> list[Path]:
    """The images of the run's validation split, whose windows check parity and calibrate INT8."""
    return split_images(cfg, cfg.data.split_val)


def comparison_images(cfg: Config, calibration: list[Path]) -> tuple[list[Path], str]:
    """Images to compare FP16/INT8 versions with FP32 on, and how to name them to the user.

    The labelled training images that are not calibration images: windows of other images
    than the calibration's, so an INT8 file is not judged on the ranges it was fitted to
    (validation images are often about one tile in size, so other windows of them would cover
    the same pixels). Never the test split. Without such images (a config whose splits share
    their scenes), the calibration images, said so.
    """
    seen = set(calibration)
    try:
        others = [p for p in split_images(cfg, cfg.data.split_labeled) if p not in seen]
    except UserError:  # no labelled split to read: the calibration images, said so
        others = []
    if others:
        return others, "real windows of training images (not the calibration images)"
    return calibration, "real windows of the calibration images (the config has no others)"


def real_windows(info: ModelInfo, images: list[Path], count: int) -> np.ndarray:
    """``count`` normalised windows [count, C, T, T] spread over ``images`` (edges padded with the
    model's fill values, as the predictor pads them)."""
    return windows_and_extent(info, images, count)[0]


def windows_and_extent(
    info: ModelInfo, images: list[Path], count: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`real_windows` and a mask [count, T, T] of their image pixels (False: padding)."""
    if not images:
        raise UserError("no images found for the parity check and calibration windows")
    t = info.tile_size
    gain = 1.0 / (info.input_scale * np.asarray(info.std, np.float32))[:, None, None]
    offset = (-np.asarray(info.mean, np.float32) / np.asarray(info.std, np.float32))[:, None, None]
    out = np.empty((count, len(info.bands), t, t), np.float32)
    out[:] = info.fill_values  # padding as the predictor pads
    inside = np.zeros((count, t, t), bool)
    for i in range(count):
        with warnings.catch_warnings():  # image folders are not georeferenced; no matter here
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(images[i % len(images)])
        with ds:
            rng = np.random.default_rng(i)
            y = int(rng.integers(0, max(1, ds.height - t + 1)))
            x = int(rng.integers(0, max(1, ds.width - t + 1)))
            win = rasterio.windows.Window(x, y, min(t, ds.width), min(t, ds.height))
            raw = ds.read(list(info.bands), window=win, out_dtype="float32")
        out[i, :, : raw.shape[1], : raw.shape[2]] = raw * gain + offset
        inside[i, : raw.shape[1], : raw.shape[2]] = True
    return out, inside


EXPORT_TAKES = "s5geo export takes a .ckpt of s5geo train or s5geo distill"


def load_for_export(
    checkpoint: Path, dataset: str | None
) -> tuple[torch.nn.Module, Config, dict[str, Any]]:
    """The network to export (eval mode), the single-dataset config its metadata comes from, and
    extra recipe entries. MoE-MDF checkpoints need ``dataset``; other checkpoints refuse it."""
    from s5geo.models.loading import load_checkpoint_model, stored_config
    from s5geo.models.mdf import is_mdf_tree, load_mdf_dataset_model, mdf_config_from_dict

    config = stored_config(checkpoint, expected=EXPORT_TAKES)
    if not is_mdf_tree(config):
        if dataset is not None:
            raise UserError(
                f"--dataset applies to MoE-MDF checkpoints only; {checkpoint} holds a "
                f"single-dataset model: export it without --dataset"
            )
        net, cfg = load_checkpoint_model(checkpoint)
        return net, cfg, {}
    names = list(mdf_config_from_dict(config).datasets)
    if dataset is None:
        raise UserError(
            f"{checkpoint} is a MoE-MDF checkpoint of {len(names)} datasets: "
            f"{', '.join(names)}; pass --dataset NAME to export one dataset's path"
        )
    if dataset not in names:
        raise UserError(f"{checkpoint} has no dataset {dataset!r}; known: {', '.join(names)}")
    net, mdf = load_mdf_dataset_model(checkpoint, dataset)
    k = mdf.class_counts()[names.index(dataset)]
    cfg = Config(
        model=dataclasses.replace(mdf.model, num_classes=k, pretrained=None),
        data=mdf.datasets[dataset].data,
        train=mdf.train,
    )
    extra = {"dataset": dataset, "mdf_datasets": names, "expert_dim": mdf.moe.expert_dim}
    return net, cfg, extra


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    *,
    dataset: str | None = None,
    fp16: bool = False,
    int8: bool = False,
    tensorrt: bool = False,
    dynamic_size: bool = False,
    tolerance: float = 1e-3,
    n_windows: int = 16,
    overwrite: bool = False,
) -> list[str]:
    """Export a checkpoint of ``s5geo train`` (of a MoE-MDF run: the path of ``dataset``);
    returns report lines for the user."""
    if tensorrt:
        require_tensorrt()  # before any work: nothing is written when the provider is missing
    net, cfg, extra = load_for_export(checkpoint, dataset)
    tile = int(cfg.train.eval_tile)
    net, info = standardize_in_graph(net, model_info_for(cfg, checkpoint, tile, extra))
    images = validation_images(cfg)
    windows = real_windows(info, images, n_windows)
    lines: list[str] = []
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with atomic_outputs(overwrite) as outputs:
        main_tmp = outputs.temp(out)
        report = export_model(net, main_tmp, info, windows, dynamic_size=dynamic_size,
                              tolerance=tolerance)  # fmt: skip
        lines.append(
            f"{out}: parity with PyTorch on {report.windows} real windows, "
            f"max |logit difference| {report.max_abs_diff:.2e} (tolerance {tolerance:.0e})"
        )
        versions: list[tuple[str, Callable[[Path, Path], None]]] = []
        if fp16:
            versions.append(("fp16", to_fp16))
        if int8:
            versions.append(("int8", lambda src, dst: to_int8(src, dst, windows)))
        if versions:
            others, where = comparison_images(cfg, images)
            compare_on, inside = windows_and_extent(info, others, n_windows)
        for name, convert in versions:
            final = out.with_suffix(f".{name}.onnx")
            version_tmp = outputs.temp(final)
            convert(main_tmp, version_tmp)
            compared = compare_variant(main_tmp, version_tmp, compare_on, inside)
            lines.append(f"{final}: {name} version; {compared.describe(where)}")
    if tensorrt:
        lines.append(f"TensorRT engine cached in {build_engine(out)}")
    return lines
