"""Training samples: the features of labelled pixels, computed by the model's own feature graph.

The scene is walked in tiles of the model's size whose outer ``MARGIN`` pixels are context only,
and only tiles that hold labels are read, so memory is one tile's features whatever the scene's
size. Labels are burnt per tile with the geometry index as value (``rasterio.features``), which
keeps each pixel's polygon for the spatial cross-validation; pixels that are nodata in the scene
are dropped. Each geometry contributes at most a fixed number of pixels: one large polygon must not
outvote ten small ones, and the forest's fitting time stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
import rasterio
import shapely
from rasterio.features import rasterize
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from s5geo.errors import UserError
from s5geo.fit.labels import Labels, to_crs
from s5geo.fit.scaling import BandScaling, valid_mask
from s5geo.io.scene import is_georeferenced

MARGIN = 64  # context pixels on each side of a tile's labelled core (the largest filter: 41 px)
PER_GEOMETRY = 2000
PER_CLASS = 60000


@dataclass
class Samples:
    """Feature vectors of labelled pixels, their class and the geometry each came from."""

    x: np.ndarray  # [P, F] float32
    y: np.ndarray  # [P] int64 class id
    groups: np.ndarray  # [P] geometry index
    outside: int  # geometries lying in no scene
    partly: int = 0  # geometries crossing a scene's edge (only their inside pixels count)


def scene_geometries(labels: Labels, ds: rasterio.DatasetReader) -> np.ndarray:
    """The label geometries in the scene's CRS (pixel coordinates when it has none)."""
    if is_georeferenced(ds):
        return to_crs(labels, ds.crs)
    return labels.geometries


def _tiles(ds: rasterio.DatasetReader, tile: int) -> list[Window]:
    core = tile - 2 * MARGIN
    return [
        Window(c, r, min(core, ds.width - c), min(core, ds.height - r))
        for r in range(0, ds.height, core)
        for c in range(0, ds.width, core)
    ]


def read_tile(
    ds: rasterio.DatasetReader, core: Window, tile: int, scaling: BandScaling
) -> tuple[np.ndarray, np.ndarray]:
    """Graph input [1, C, tile, tile] around ``core`` (nodata and outside as the band means)."""
    outer = Window(core.col_off - MARGIN, core.row_off - MARGIN, tile, tile)
    raw = ds.read(list(scaling.bands), window=outer, boundless=True, fill_value=0).astype(
        np.float32
    )
    valid = valid_mask(ds, window=outer, boundless=True)
    valid &= np.isfinite(raw).all(axis=0)
    x = raw / np.float32(scaling.input_scale)
    fill = np.asarray(scaling.mean, np.float32)[:, None]
    x[:, ~valid] = fill
    return x[None], valid


def collect_samples(
    scenes: list[rasterio.DatasetReader],
    labels: Labels,
    session: ort.InferenceSession,
    scaling: BandScaling,
    tile: int,
    seed: int = 0,
    step: Callable[[int, int], None] | None = None,
) -> Samples:
    """Features of labelled pixels over every scene; refuses labels that give no class pixels."""
    rng = np.random.default_rng(seed)
    n = len(labels.geometries)
    inside_any = np.zeros(n, bool)
    within_any = np.zeros(n, bool)
    plans = []
    for ds in scenes:
        geoms = scene_geometries(labels, ds)
        to_pixels = ~ds.transform if is_georeferenced(ds) else None
        box = (
            shapely.box(*ds.bounds)
            if to_pixels is not None
            else shapely.box(0, 0, ds.width, ds.height)
        )
        inside_any |= shapely.intersects(geoms, box)
        within_any |= shapely.within(geoms, box)
        tree = shapely.STRtree(geoms)
        for core in _tiles(ds, tile):
            bounds = (
                rasterio.windows.bounds(core, ds.transform)
                if to_pixels is not None
                else (
                    core.col_off,
                    core.row_off,
                    core.col_off + core.width,
                    core.row_off + core.height,
                )
            )
            hits = tree.query(shapely.box(*bounds), predicate="intersects")
            if len(hits):
                plans.append((ds, core, hits, geoms))
    if not inside_any.any():
        raise UserError(
            f"labels {labels.source}: none of the {n} features lies inside the scenes "
            "(check that they cover the scenes and have the right CRS)"
        )
    xs, ys, gs, ks = [], [], [], []
    for i, (ds, core, hits, geoms) in enumerate(plans):
        transform = (
            window_transform(core, ds.transform)
            if is_georeferenced(ds)
            else rasterio.Affine.translation(core.col_off, core.row_off)
        )
        if labels.points:
            _refuse_shared_pixels(labels, geoms[hits], hits, transform)
        burnt = rasterize(
            ((geoms[j], int(j) + 1) for j in hits),
            out_shape=(int(core.height), int(core.width)),
            transform=transform,
            fill=0,
            dtype="int32",
        )
        x, valid = read_tile(ds, core, tile, scaling)
        h, w = burnt.shape
        burnt[~valid[MARGIN : MARGIN + h, MARGIN : MARGIN + w]] = 0
        rows, cols = np.nonzero(burnt)
        if rows.size:
            features = session.run(None, {"image": x})[0][0]
            core_features = features[:, MARGIN : MARGIN + h, MARGIN : MARGIN + w]
            group = burnt[rows, cols] - 1
            # Thinned per tile already, so a polygon over much of a large scene holds at most
            # PER_GEOMETRY pixels' features per tile in memory, not all of its pixels'.
            keys = rng.random(rows.size)
            keep = _smallest_keys(group, keys, PER_GEOMETRY)
            rows, cols, group = rows[keep], cols[keep], group[keep]
            xs.append(core_features[:, rows, cols].T.copy())
            gs.append(group)
            ks.append(keys[keep])
            ys.append(labels.class_ids[group])
        if step is not None:
            step(i + 1, len(plans))
    if not xs:
        raise UserError(f"labels {labels.source}: no labelled pixel lies on valid scene pixels")
    y, groups, keys = np.concatenate(ys), np.concatenate(gs), np.concatenate(ks)
    keep = _smallest_keys(groups, keys, PER_GEOMETRY)
    keep = keep[_smallest_keys(y[keep], keys[keep], PER_CLASS)]
    x = np.concatenate(xs)
    partly = int((inside_any & ~within_any).sum())
    samples = Samples(x[keep], y[keep], groups[keep], int((~inside_any).sum()), partly)
    _check_classes(samples, labels)
    return samples


def _refuse_shared_pixels(
    labels: Labels, points: np.ndarray, index: np.ndarray, transform: rasterio.Affine
) -> None:
    """Refuse points of different classes in one pixel: burning would keep one silently."""
    xy = shapely.get_coordinates(points)
    if len(xy) != len(points):  # multipoints: their parts share the feature's class anyway
        return
    cols, rows = ~transform * (xy[:, 0], xy[:, 1])
    pixel = np.floor(rows).astype(np.int64) * (1 << 32) + np.floor(cols).astype(np.int64)
    order = np.argsort(pixel, kind="stable")
    same = pixel[order][1:] == pixel[order][:-1]
    classes = labels.class_ids[index[order]]
    clash = np.flatnonzero(same & (classes[1:] != classes[:-1]))
    if clash.size:
        a, b = sorted(int(i) for i in index[order][clash[0] : clash[0] + 2])
        name = {i: labels.class_names[int(labels.class_ids[i])] for i in (a, b)}
        raise UserError(
            f"labels {labels.source}: feature {a + 1} ({name[a]}) and feature {b + 1} "
            f"({name[b]}) fall in one pixel; a pixel can have one class only"
        )


def _check_classes(samples: Samples, labels: Labels) -> None:
    present = set(np.unique(samples.y).tolist())
    for k, name in labels.class_names.items():
        if k not in present:
            raise UserError(
                f"labels {labels.source}: class {name!r} has no labelled pixel inside the scenes "
                "(its features lie outside them, on nodata, or are smaller than a pixel)"
            )


def _smallest_keys(by: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Sorted indices of the ``k`` smallest ``keys`` of each value of ``by``.

    With keys drawn uniformly at random once per pixel, this draws at most ``k`` pixels per
    geometry (or class) uniformly without replacement, and gives the same draw whether it is
    applied once to all pixels or first per tile and then to what the tiles kept.
    """
    order = np.lexsort((keys, by))
    sorted_by = by[order]
    rank = np.arange(by.size) - np.searchsorted(sorted_by, sorted_by, side="left")
    return np.sort(order[rank < k])
