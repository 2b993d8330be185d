"""How a fitted model scales the scene's values: chosen from the scenes' own statistics.

A fitted model must take whatever the analyst brings (8-bit aerial RGB, 11-bit multispectral in
uint16, reflectances as float), so its scaling is measured on the training scenes and stored in
its graph, not assumed:

- ``input_scale`` (model metadata): 255 for 8-bit scenes, as for every 8-bit model, so Deepness and
  GeoDeep, which divide by 255, feed the graph what s5geo feeds it; otherwise a high percentile of
  the values, so that ``s5geo predict`` can warn when another scene's values do not fit;
- per-band standardisation (in the graph) for the filter features, which use every band;
- three bands for the bundled encoder, which was trained on 8-bit RGB: 8-bit scenes are fed as they
  are (what the encoder knows); other data types are stretched from their 2nd-98th percentile to
  0-1 per band, the stretch QGIS applies by default to show such a scene.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import ColorInterp
from rasterio.errors import NodataShadowWarning

from s5geo.errors import UserError

SAMPLE_SIDE = 1024  # a decimated read of the whole scene: statistics in milliseconds
STRETCH = (2.0, 98.0)
SCALE_PERCENTILE = 99.5


@dataclass(frozen=True)
class BandScaling:
    """Scaling of the graph input ``x = value / input_scale``.

    ``bands`` are the scene's 1-based band indices the model reads; the filter features use
    ``x * gain + offset`` (zero mean, unit variance per band); the encoder reads the bands at
    ``rgb_index`` (positions in ``bands``) as ``clip(x * rgb_gain + rgb_offset, 0, 1)``.
    """

    bands: tuple[int, ...]
    input_scale: float
    gain: tuple[float, ...]
    offset: tuple[float, ...]
    rgb_index: tuple[int, ...]  # three positions
    rgb_gain: tuple[float, ...]
    rgb_offset: tuple[float, ...]
    mean: tuple[float, ...]  # per band, of x: what padding and nodata are fed as

    def describe(self) -> dict[str, object]:
        """JSON-ready, for the model's recipe and the report."""
        return {
            "bands": list(self.bands),
            "input_scale": self.input_scale,
            "encoder_bands": [self.bands[i] for i in self.rgb_index],
            "encoder_gain": list(self.rgb_gain),
            "encoder_offset": list(self.rgb_offset),
        }


def _data_bands(ds: rasterio.DatasetReader) -> tuple[int, ...]:
    """Every band but an alpha band (which is a mask, not a measurement)."""
    return tuple(
        i for i, ci in zip(ds.indexes, ds.colorinterp, strict=True) if ci != ColorInterp.alpha
    )


def _rgb_default(ds: rasterio.DatasetReader, bands: tuple[int, ...]) -> tuple[int, int, int]:
    """Red, green, blue by colour interpretation when the file says, else the first three."""
    by_interp = {ci: i for i, ci in zip(ds.indexes, ds.colorinterp, strict=True)}
    wanted = (ColorInterp.red, ColorInterp.green, ColorInterp.blue)
    if all(c in by_interp for c in wanted):
        red, green, blue = (by_interp[c] for c in wanted)
        return red, green, blue
    if len(bands) >= 3:
        return bands[0], bands[1], bands[2]
    if len(bands) == 2:
        return bands[0], bands[1], bands[1]
    return bands[0], bands[0], bands[0]  # panchromatic: a grey image


def valid_mask(ds: rasterio.DatasetReader, **read: Any) -> np.ndarray:
    """GDAL's dataset mask > 0 (``read``: ``dataset_mask``'s window, out_shape, boundless).

    A scene with both a nodata value and an alpha band is masked by its nodata value, as
    ``s5geo predict`` masks it; rasterio warns about that on every read, which would only
    clutter the command's output.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NodataShadowWarning)
        return ds.dataset_mask(**read) > 0


def _sample(ds: rasterio.DatasetReader, bands: tuple[int, ...]) -> np.ndarray:
    """Valid, finite values of ``bands`` from a decimated read: [C, P] float64."""
    scale = max(ds.height, ds.width) / SAMPLE_SIDE
    shape = (max(1, round(ds.height / max(scale, 1))), max(1, round(ds.width / max(scale, 1))))
    data = ds.read(list(bands), out_shape=(len(bands), *shape)).astype(np.float64)
    valid = valid_mask(ds, out_shape=shape)
    valid &= np.isfinite(data).all(axis=0)
    return data[:, valid]


def scene_scaling(
    scenes: Sequence[rasterio.DatasetReader], rgb_bands: Sequence[int] | None = None
) -> BandScaling:
    """The scaling for a model of ``scenes`` (which must share their bands and data type)."""
    first = scenes[0]
    bands = _data_bands(first)
    for ds in scenes[1:]:
        if _data_bands(ds) != bands or ds.dtypes[0] != first.dtypes[0]:
            raise UserError(
                f"scenes {first.name} and {ds.name} differ in bands or data type: "
                "a model is fitted on scenes of one sensor"
            )
    if rgb_bands is not None:
        if len(rgb_bands) != 3 or any(b not in bands for b in rgb_bands):
            raise UserError(f"bands must name three of the scene's bands {list(bands)}")
        rgb = tuple(rgb_bands)
    else:
        rgb = _rgb_default(first, bands)
    values = np.concatenate([_sample(ds, bands) for ds in scenes], axis=1)
    if values.shape[1] < 16:
        raise UserError(f"scene {first.name} has no valid pixels to take statistics from")
    eight_bit = first.dtypes[0] == "uint8"
    high = float(np.percentile(values, SCALE_PERCENTILE))
    input_scale = 255.0 if eight_bit else (high if high > 0 else 1.0)
    x = values / input_scale
    mean, std = x.mean(axis=1), x.std(axis=1)
    std = np.where(std > 1e-12, std, 1.0)
    index = tuple(bands.index(b) for b in rgb)
    rgb_gain: tuple[float, ...] = (1.0, 1.0, 1.0)
    rgb_offset: tuple[float, ...] = (0.0, 0.0, 0.0)
    if not eight_bit:
        lo, hi = np.percentile(x[list(index)], STRETCH, axis=1)
        span = np.where(hi - lo > 1e-12, hi - lo, 1.0)
        rgb_gain = tuple(float(v) for v in 1.0 / span)
        rgb_offset = tuple(float(v) for v in -lo / span)
    return BandScaling(
        bands=bands,
        input_scale=input_scale,
        gain=tuple(float(v) for v in 1.0 / std),
        offset=tuple(float(v) for v in -mean / std),
        rgb_index=index,
        rgb_gain=rgb_gain,
        rgb_offset=rgb_offset,
        mean=tuple(float(v) for v in mean),
    )
