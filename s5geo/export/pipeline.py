"""``s5geo export``: checkpoint -> ONNX model file (+ FP16, INT8, TensorRT engine), atomically.

The real windows used for the parity check and INT8 calibration come from the run's own data
config (its validation split), normalised exactly as the model file will say.

A MoE-MDF checkpoint (``s5geo.train.mdf``) holds several datasets; ``dataset`` picks one, whose
path (shared weights + its expert merged into ``fc2`` + its decoder,
:func:`s5geo.models.moe.dataset_path`) is exported as an ordinary single-dataset model with that
dataset's classes, colours, bands and normalisation: a dense model's graph and cost.
"""

from __future__ import annotations

import dataclasses
import warnings
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
from s5geo.export.tensorrt import build_engine, require_tensorrt
from s5geo.io.atomic import atomic_outputs
from s5geo.modelfile import ModelInfo
from s5geo.models.checkpoint import load_torch_file

# Overlap recorded in exported models: windows overlap by this share when s5geo predicts.
EXPORT_OVERLAP_PCT = 12.5


def model_info_for(
    cfg: Config, checkpoint: Path, tile: int, extra_recipe: dict[str, Any] | None = None
) -> ModelInfo:
    """The model-file metadata of a trained run: classes, bands, normalisation, provenance."""
    from s5geo.data.aligned import class_map_for

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


def validation_images(cfg: Config) -> list[Path]:
    """The images of the run's validation split, whose windows check parity and calibrate INT8.

    Image folders and raster scenes are found as training finds them
    (:func:`s5geo.data.splits.split_items`: splits-file names or split specs over a benchmark's
    own layout); ``aligned`` scenes by their ``stems=`` part (all scenes without one).
    """
    data = cfg.data
    root = data.resolved_root()
    if not root.is_dir():
        raise UserError(
            f"data root not found: {root} (set S5GEO_DATA or data.root): the parity check and "
            "calibration read real windows of the run's validation split"
        )
    if data.kind in ("image_folder", "raster"):
        from s5geo.data.splits import split_items

        return [item.image for item in split_items(data, data.split_val, with_masks=False)]
    from s5geo.data.aligned import SplitSpec

    stems = SplitSpec.parse(data.split_val).stems
    scenes = sorted((root / data.images_dir).glob(data.image_glob))
    return [p for p in scenes if stems is None or p.stem in stems]


def real_windows(info: ModelInfo, images: list[Path], count: int, start: int = 0) -> np.ndarray:
    """``count`` normalised windows [count, C, T, T] spread over ``images`` (zero-padded edges).

    Window ``i`` is drawn by seed ``start + i``: calls with disjoint ranges of ``start`` give
    other windows (the held-out ones the INT8 and FP16 versions are compared on)."""
    if not images:
        raise UserError("no images found for the parity check and calibration windows")
    t = info.tile_size
    gain = 1.0 / (info.input_scale * np.asarray(info.std, np.float32))[:, None, None]
    offset = (-np.asarray(info.mean, np.float32) / np.asarray(info.std, np.float32))[:, None, None]
    out = np.zeros((count, len(info.bands), t, t), np.float32)
    for i in range(count):
        seed = start + i
        with warnings.catch_warnings():  # image folders are not georeferenced; no matter here
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(images[seed % len(images)])
        with ds:
            rng = np.random.default_rng(seed)
            y = int(rng.integers(0, max(1, ds.height - t + 1)))
            x = int(rng.integers(0, max(1, ds.width - t + 1)))
            win = rasterio.windows.Window(x, y, min(t, ds.width), min(t, ds.height))
            raw = ds.read(list(info.bands), window=win, out_dtype="float32")
        out[i, :, : raw.shape[1], : raw.shape[2]] = raw * gain + offset
    return out


EXPORT_TAKES = "s5geo export takes a .ckpt of s5geo train or s5geo distill"


def stored_config(checkpoint: Path) -> dict[str, Any]:
    """The run config inside an s5geo training checkpoint (memory-mapped: tensors are not read)."""
    ckpt = load_torch_file(checkpoint, mmap=True, expected=EXPORT_TAKES)
    config = ckpt.get("hyper_parameters", {}).get("config") if isinstance(ckpt, dict) else None
    if not isinstance(config, dict):
        raise UserError(f"{checkpoint} is not an s5geo training checkpoint (no config inside)")
    return config


def load_for_export(
    checkpoint: Path, dataset: str | None
) -> tuple[torch.nn.Module, Config, dict[str, Any]]:
    """The network to export (eval mode), the single-dataset config its metadata comes from, and
    extra recipe entries. MoE-MDF checkpoints need ``dataset``; other checkpoints refuse it."""
    from s5geo.models.mdf import is_mdf_tree, mdf_config_from_dict

    config = stored_config(checkpoint)
    if not is_mdf_tree(config):
        if dataset is not None:
            raise UserError(
                f"--dataset applies to MoE-MDF checkpoints only; {checkpoint} holds a "
                f"single-dataset model: export it without --dataset"
            )
        from s5geo.train.evaluate import load_checkpoint_model

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
    from s5geo.train.mdf import load_mdf_dataset_model

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
    info = model_info_for(cfg, checkpoint, tile, extra)
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
        variants: dict[str, Any] = {}
        if fp16:
            variants["fp16"] = (to_fp16, ())
        if int8:
            variants["int8"] = (to_int8, (windows,))
        # compared on windows the calibration did not see
        held_out = real_windows(info, images, n_windows, start=n_windows) if variants else windows
        for name, (convert, extra) in variants.items():
            final = out.with_suffix(f".{name}.onnx")
            variant_tmp = outputs.temp(final)
            convert(main_tmp, variant_tmp, *extra)
            compared = compare_variant(main_tmp, variant_tmp, held_out)
            lines.append(f"{final}: {name} version; {compared.describe()}")
    if tensorrt:
        lines.append(f"TensorRT engine cached in {build_engine(out)}")
    return lines
