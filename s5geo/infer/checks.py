"""Refusals and warnings before any work: output names, bands the model reads, value ranges.

A scene that cannot work with the model is refused with the reason; one that runs but would give a
meaningless map (values far outside the model's input scale) is warned about.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from s5geo.errors import ParameterError, UserError
from s5geo.io.scene import window_reader
from s5geo.modelfile import ModelInfo


def check_suffix(path: Path, suffixes: tuple[str, ...], parameter: str) -> None:
    """Refuse an output, the value of ``parameter``, whose extension names another format than
    the one written."""
    if path.suffix.lower() not in suffixes:
        raise ParameterError(
            "{" + parameter + "} {path} is written as {format}: "
            "give it a name ending in {suffixes}",
            path=path, format=suffixes[0][1:].upper(), suffixes=" or ".join(suffixes),
        )  # fmt: skip


def check_scene_fits(info: ModelInfo, ds: rasterio.DatasetReader, name: str) -> None:
    """Refuse a scene that lacks a band the model reads, or has a data type it cannot use."""
    missing = [b for b in info.bands if b > ds.count]
    if missing:
        raise UserError(
            f"{name} has {ds.count} band(s) but the model reads bands "
            f"{', '.join(map(str, info.bands))} (it needs {len(info.bands)})"
        )
    if any(np.dtype(d).kind == "c" for d in ds.dtypes):
        raise UserError(f"{name} has complex-valued bands, which a land-cover model cannot use")


# Sampled windows and the share of values in them that may lie above the model's input scale
# before a warning: a few hot pixels (specular glints, clouds) are normal in any imagery.
RANGE_SAMPLES = 3  # per side: 3 x 3 windows spread over the processed region
RANGE_SAMPLE_PX = 256
RANGE_QUANTILE = 0.99
# Values below 0 up to this share of the scale pass without a warning (atmospheric correction
# leaves slightly negative reflectances in dark pixels).
NEGATIVE_TOLERANCE = 0.02


def value_range_warnings(
    info: ModelInfo, ds: rasterio.DatasetReader, region: Window, name: str
) -> list[str]:
    """Warn when the scene's values do not fit the model's ``s5geo.input_scale``.

    A uint16 scene given to a model trained on 8-bit imagery (or reflectances in 0..1, or an
    int16 scene with negative values, given to it) runs without error and yields a meaningless
    map, so a few windows spread over the region are read and their 1st and 99th percentiles
    compared with the scale. Reading 9 small windows costs a few milliseconds, unlike statistics
    over the whole scene.
    """
    reader = window_reader(ds, tuple(info.bands))
    h, w = int(region.height), int(region.width)
    sh, sw = min(h, RANGE_SAMPLE_PX), min(w, RANGE_SAMPLE_PX)
    values = []
    for i in range(RANGE_SAMPLES):
        for j in range(RANGE_SAMPLES):
            row = int(region.row_off) + (h - sh) * i // max(RANGE_SAMPLES - 1, 1)
            col = int(region.col_off) + (w - sw) * j // max(RANGE_SAMPLES - 1, 1)
            try:
                data, valid = reader(Window(col, row, sw, sh))
            except RasterioIOError:
                return []  # the prediction itself reports unreadable pixels
            values.append(data[:, valid].ravel())
    sample = np.concatenate(values)
    if sample.size == 0:
        return []
    low, high = (float(v) for v in np.quantile(sample, (1.0 - RANGE_QUANTILE, RANGE_QUANTILE)))
    scale = info.input_scale
    if high > 2.0 * scale or low < -NEGATIVE_TOLERANCE * scale:
        # Values below 0 (signed integers, e.g. int16 elevation or radar) fit no 0..scale model
        # as badly as values far above it.
        return [
            f"{name} has values from {low:g} to {high:g} (1st to 99th percentile) but the model "
            f"expects 0..{scale:g} (s5geo.input_scale): the map will be meaningless unless the "
            "scene is rescaled (e.g. gdal_translate -scale) or a model for this data type is used"
        ]
    if scale >= 2.0 and high <= scale / 50.0 and high > 0:
        return [
            f"{name} has values only up to {high:g} (99th percentile) but the model expects "
            f"0..{scale:g} (s5geo.input_scale): reflectances in 0..1? rescale the scene first"
        ]
    return []
