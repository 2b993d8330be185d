"""Where a run's windows go: the tile and overlap, the processed region, the scale to the
model's resolution, and the window plan over the region on the scene grid."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import rasterio
from rasterio.windows import Window

from s5geo.errors import ParameterError, UserError
from s5geo.infer.memory import BatchShape
from s5geo.infer.runtime import Model
from s5geo.infer.tiling import WindowPlan
from s5geo.io.raster import GridSpec
from s5geo.io.scene import ground_sample_distance_m, is_georeferenced
from s5geo.modelfile import ModelInfo
from s5geo.options import OVERLAP_MAX_SHARE, PredictOptions, check_overlap

# Resample to the model's ground sample distance only when the scene's differs by more than this
# fraction, and only within a sane range (resampling cannot rescue a 0.5 m model on 30 m imagery).
GSD_TOLERANCE = 0.10
GSD_MAX_FACTOR = 4.0


def tiling(options: PredictOptions, model: Model) -> tuple[int, int]:
    """The tile and overlap, in model pixels, that ``options`` give with ``model``: the options'
    own, else the model's ``tiles_size`` and ``tiles_overlap``.

    Raises :class:`ParameterError` for a tile the model cannot take (a fixed input size), and for
    a tile or overlap outside :attr:`PredictOptions.LIMITS` once the tile is known.
    """
    info = model.info
    tile = info.tile_size if options.tile_size is None else options.tile_size
    if model.fixed_size is not None and tile != model.fixed_size:
        raise ParameterError(
            "this model takes {fixed}-px tiles; {tile_size} {tile} cannot be used",
            fixed=model.fixed_size, tile=tile,
        )  # fmt: skip
    PredictOptions.LIMITS["tile_size"].check("tile_size", tile)  # the model's own as well
    if options.overlap is not None:
        check_overlap(options.overlap, tile)
        return tile, options.overlap
    overlap = round(tile * info.overlap_pct / 100.0)
    if not 0 <= overlap <= int(tile * OVERLAP_MAX_SHARE):
        raise ParameterError(
            "model {model}: its tiles_overlap of {pct:g} % must lie in 0..{high:g} %; pass "
            "{overlap} (in pixels) to override it",
            model=model.path.name, pct=info.overlap_pct, high=100 * OVERLAP_MAX_SHARE,
        )  # fmt: skip
    return tile, overlap


@dataclass(frozen=True)
class ScenePlan:
    """The windows of a run over the processed region of a scene.

    ``windows`` cover ``region`` on the scene grid: ``tile`` and ``overlap`` (model pixels)
    times ``scale`` (scene pixels per model pixel, 1.0 at native resolution). ``grid`` is the
    output's grid (the region's), ``warnings`` what the analyst should know about the resolution
    and georeferencing.
    """

    region: Window
    windows: WindowPlan
    grid: GridSpec
    tile: int
    overlap: int
    scale: float
    warnings: tuple[str, ...]


def plan_scene(
    ds: rasterio.DatasetReader,
    info: ModelInfo,
    tile: int,
    overlap: int,
    *,
    bounds: Sequence[float] | None,
    resample: bool,
    name: str,
) -> ScenePlan:
    """The windows of ``tile``-px tiles overlapping by ``overlap`` px over ``bounds`` of ``ds``
    (the whole scene when None), read at the model's resolution when ``resample``."""
    region = _region(ds, bounds, name)
    scale, warnings = _scale(info, ds, resample)
    if not is_georeferenced(ds):
        warnings.append(f"{name} has no georeferencing: outputs are on its pixel grid")
    windows = WindowPlan(
        height=int(region.height), width=int(region.width),
        size=round(tile * scale), overlap=round(overlap * scale),
        row_off=int(region.row_off), col_off=int(region.col_off),
    )  # fmt: skip
    grid = GridSpec(windows.width, windows.height, ds.crs, ds.window_transform(region))
    return ScenePlan(region, windows, grid, tile, overlap, scale, tuple(warnings))


def _region(ds: rasterio.DatasetReader, bounds: Sequence[float] | None, name: str) -> Window:
    """The scene window covering ``bounds`` (xmin, ymin, xmax, ymax in the scene's CRS; in
    pixel coordinates, column and row, for a scene without georeferencing).

    Rounded outwards to whole pixels: every part of the extent is covered, and an extent inside
    one pixel gives that pixel. The corners go through the inverse geotransform, so any
    orientation works: north-up, south-up (positive y pixel size) and GDAL's identity
    transform of a scene without georeferencing, where y grows downwards.
    """
    if bounds is None:
        return Window(0, 0, ds.width, ds.height)
    box = tuple(float(v) for v in bounds)
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ParameterError(
            "{bounds} must be four finite numbers xmin, ymin, xmax, ymax, not {box}", box=box
        )
    xmin, ymin, xmax, ymax = box
    inv = ~ds.transform  # written out: affine deprecates ``*`` and older affines lack ``@``
    corners = [(x, y) for x in (xmin, xmax) for y in (ymin, ymax)]
    cols = [inv.a * x + inv.b * y + inv.c for x, y in corners]
    rows = [inv.d * x + inv.e * y + inv.f for x, y in corners]
    col0, col1 = _outwards(min(cols), max(cols), ds.width)
    row0, row1 = _outwards(min(rows), max(rows), ds.height)
    if col1 <= col0 or row1 <= row0:
        raise UserError(f"the processing extent {box} does not overlap {name}{_covers(ds)}")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _outwards(lo: float, hi: float, size: int) -> tuple[int, int]:
    """Pixel range [first, end) covering ``lo``..``hi`` (at least one pixel), clipped to the
    scene; the tolerance keeps an edge that lies on a pixel boundary from taking the next one."""
    first = math.floor(lo + 1e-6)
    end = max(math.ceil(hi - 1e-6), first + 1)
    return max(first, 0), min(end, size)


def _covers(ds: rasterio.DatasetReader) -> str:
    """What the scene covers, for the message of an extent outside it."""
    if not is_georeferenced(ds):
        return (
            f", which has no georeferencing: give the extent in pixels (column, row) within "
            f"0,0,{ds.width},{ds.height}"
        )
    b = ds.bounds  # bottom lies above top on a south-up scene
    ys = sorted((b.bottom, b.top))
    return f", which covers {b.left:g},{ys[0]:g},{b.right:g},{ys[1]:g}"


def _scale(info: ModelInfo, ds: rasterio.DatasetReader, resample: bool) -> tuple[float, list[str]]:
    """Scene pixels per model pixel, and any warning about the resolution mismatch."""
    gsd = ground_sample_distance_m(ds)
    if not resample or not info.resolution_cm or gsd is None:
        return 1.0, []
    factor = info.resolution_cm / 100.0 / gsd
    if abs(factor - 1.0) <= GSD_TOLERANCE:
        return 1.0, []
    if not 1 / GSD_MAX_FACTOR <= factor <= GSD_MAX_FACTOR:
        return 1.0, [
            f"the scene's pixels ({gsd:.2f} m) are far from the model's "
            f"({info.resolution_cm / 100:.2f} m); predicting at native resolution, "
            "expect poor results"
        ]
    return factor, []


def batch_shape(
    plan: WindowPlan, info: ModelInfo, tile: int, batch: int, confidence: bool
) -> BatchShape:
    """The sizes of one batch's buffers (:mod:`s5geo.infer.memory`) for ``plan``."""
    window = (min(plan.size, plan.height), min(plan.size, plan.width))
    return BatchShape(
        batch=batch,
        bands=len(info.bands),
        classes=info.num_classes,
        tile=tile,
        window=window,
        overlap=plan.overlap,
        width=plan.width,
        confidence=confidence,
    )
