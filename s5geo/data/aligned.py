"""Scenes with pixel-aligned label rasters that carry no georeferencing of their own, or with
vector labels burned on each scene's pixel grid.

Sources (../shared/data/README.md):

- SpaceNet-4 Atlanta sample (CC BY-SA 4.0): ``sample_geotiff.tif``, panchromatic uint16 (11-bit),
  0.5 m, EPSG:32616, 900x900. Its labels are the 43 building footprints of
  ``configs/labels/spacenet_atlanta_sample_footprints.geojson`` (``data.vector_labels``; see the
  README there): the shared ``sample_fp_mask.tif`` lies on this pixel grid but draws the
  footprints of another tile. Classes: background, building.
- swisstopo SWISSIMAGE crops (free geodata, attribution): ``images/*.tif`` RGB uint8, 0.5 m,
  EPSG:2056, 175x120, with ``masks/*.tif`` tree (1) / non-tree (0). Classes: non_tree, tree.

torchgeo joins images and labels by their georeferenced bounds, which these masks lack, so the pair
is read on the image's pixel grid instead (one sample per scene region, like an image folder).

With ``data.vector_labels`` the masks are not read: the polygons are reprojected to each scene's CRS
and burned on its grid, each as its class (:func:`s5geo.data.raster.polygon_class`: the
``data.label_attribute`` column, or ``data.label_value`` for all); pixels outside every polygon are
class 0 (background), as in the masks they replace. The scenes must then be georeferenced.

Splits are written in the config's split names, so a protocol needs no extra file and splits stay
spatial (never interleaved tiles): ``stems=a,b`` keeps the scenes with those file stems,
``rows=A:B`` keeps pixel rows A..B-1 of every kept scene; both may be joined with ``;``, e.g.
``rows=0:600`` for the top two thirds of the single SpaceNet scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import rasterio
import torch
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import rasterize
from rasterio.windows import Window
from torch.utils.data import Dataset

from s5geo.config import DataConfig
from s5geo.data.raster import polygon_class, vector_label_layer
from s5geo.datasets.classes import ClassMap, class_map_for
from s5geo.errors import UserError


@dataclass(frozen=True)
class SplitSpec:
    """Which scenes (by stem; None: all) and which pixel rows (None: all) a split holds."""

    stems: frozenset[str] | None
    rows: tuple[int, int] | None

    @classmethod
    def parse(cls, text: str) -> SplitSpec:
        stems: frozenset[str] | None = None
        rows: tuple[int, int] | None = None
        for part in filter(None, (p.strip() for p in text.split(";"))):
            key, sep, value = part.partition("=")
            if key == "stems" and sep:
                stems = frozenset(s.strip() for s in value.split(",") if s.strip())
            elif key == "rows" and sep:
                start, colon, stop = value.partition(":")
                try:
                    rows = (int(start), int(stop))
                except ValueError:
                    rows = None
                if not colon or rows is None or not 0 <= rows[0] < rows[1]:
                    raise UserError(f"split {text!r}: rows must read rows=START:STOP")
            else:
                raise UserError(f"split {text!r}: expected stems=a,b and/or rows=START:STOP")
        return cls(stems, rows)


class PolygonLabels:
    """Vector labels burned on a scene's pixel grid: each polygon as its class, the rest class 0."""

    def __init__(self, layer: gpd.GeoDataFrame, label_attribute: str, label_value: int | None):
        self.layer = layer
        self.label_attribute = label_attribute
        self.label_value = label_value
        self._by_crs: dict[str, gpd.GeoDataFrame] = {}  # the layer reprojected, per scene CRS

    def classes(self) -> set[int]:
        """The class indices the polygons are burned with."""
        return {
            polygon_class(f, self.label_attribute, self.label_value)
            for _, f in self.layer.iterrows()
        }

    def burn(self, crs: CRS, transform: Affine, shape: tuple[int, int]) -> npt.NDArray[np.int64]:
        """Class indices [h, w] on the grid of ``transform`` and ``shape`` in ``crs``."""
        wkt = crs.to_wkt()
        if wkt not in self._by_crs:
            self._by_crs[wkt] = self.layer.to_crs(wkt)  # as torchgeo's VectorDataset reprojects
        layer = self._by_crs[wkt]
        left, top = transform * (0, 0)
        right, bottom = transform * (shape[1], shape[0])
        layer = layer.cx[min(left, right) : max(left, right), min(top, bottom) : max(top, bottom)]
        shapes = [
            (f.geometry, polygon_class(f, self.label_attribute, self.label_value))
            for _, f in layer.iterrows()
        ]
        if not shapes:
            return np.zeros(shape, np.int64)
        burned = rasterize(shapes, out_shape=shape, transform=transform, fill=0, dtype="int32")
        return burned.astype(np.int64)


class AlignedPairs(Dataset[dict[str, torch.Tensor]]):
    """Regions of image scenes with pixel-aligned masks (or ``polygons`` burned on their grid):
    ``image`` float [C, h, w] in 0..1 (raw / ``input_scale``, bands as listed, 1-based, repeats
    allowed), ``valid`` (not nodata) and, when labeled, ``mask`` int64 [h, w] (class indices,
    nodata -> ignore)."""

    georeferenced = False  # samples are pixel regions; the scenes' CRS is not carried along

    def __init__(
        self,
        pairs: list[tuple[Path, Path | None]],
        class_map: ClassMap,
        bands: list[int],
        input_scale: float,
        rows: tuple[int, int] | None = None,
        with_masks: bool = True,
        polygons: PolygonLabels | None = None,
    ) -> None:
        self.pairs = pairs
        self.class_map = class_map
        self.bands = bands
        self.input_scale = input_scale
        self.rows = rows
        self.with_masks = with_masks
        self.polygons = polygons

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image_path, mask_path = self.pairs[index]
        with rasterio.open(image_path) as src:
            start, stop = self.rows or (0, src.height)
            window = Window(0, start, src.width, min(stop, src.height) - start)
            raw = src.read(self.bands, window=window).astype(np.float32)
            nodata, shape, crs = src.nodata, src.shape, src.crs
            transform = src.window_transform(window)
        valid = (raw != nodata).any(0) if nodata is not None else np.ones(raw.shape[1:], bool)
        image = np.clip(raw / self.input_scale, 0.0, 1.0)
        sample = {"image": torch.from_numpy(image), "valid": torch.from_numpy(valid)}
        if self.with_masks:
            labels: npt.NDArray[np.integer[Any]]
            if self.polygons is not None:
                if crs is None:
                    raise UserError(f"{image_path} has no CRS: data.vector_labels cannot be placed")
                labels = self.polygons.burn(crs, transform, valid.shape)
            else:
                with rasterio.open(mask_path) as src:
                    if src.shape != shape:
                        raise UserError(f"{mask_path} is not pixel-aligned with {image_path}")
                    labels = self.class_map.encode(src.read(1, window=window))
            mask = np.where(valid, labels, self.class_map.ignore_index).astype(np.int64)
            sample["mask"] = torch.from_numpy(mask)
        return sample


def aligned_split(cfg: DataConfig, split: str, with_masks: bool = True) -> AlignedPairs:
    """The samples of ``split`` (a :class:`SplitSpec` string) of an ``aligned`` data config.

    Labels (checked also without ``with_masks``, so that preflight finds their faults): masks
    paired with the scenes in name order, or the polygons of ``data.vector_labels``."""
    root = cfg.resolved_root()
    class_map = class_map_for(cfg.class_map)
    images = sorted((root / cfg.images_dir).glob(cfg.image_glob))
    if not images:
        raise UserError(f"no scene matches {root / cfg.images_dir / cfg.image_glob}")
    vector_path = cfg.resolved_vector_labels()
    polygons: PolygonLabels | None = None
    masks: list[Path | None]
    if vector_path is not None:
        layer = vector_label_layer(vector_path, cfg.label_attribute, cfg.label_value)
        polygons = PolygonLabels(layer, cfg.label_attribute, cfg.label_value)
        unknown = sorted(c for c in polygons.classes() if not 0 <= c < class_map.num_classes)
        if unknown:
            raise UserError(
                f"data.vector_labels {vector_path} burns class ids {unknown}; class map "
                f"{cfg.class_map!r} has classes 0..{class_map.num_classes - 1}"
            )
        masks = [None] * len(images)
    else:
        masks = [*sorted((root / cfg.masks_dir).glob(cfg.label_glob))]
        if len(images) != len(masks):
            raise UserError(
                f"{len(images)} scenes but {len(masks)} masks under {root} (paired in name order)"
            )
    spec = SplitSpec.parse(split)
    pairs = [
        (i, m)
        for i, m in zip(images, masks, strict=True)
        if spec.stems is None or i.stem in spec.stems
    ]
    if not pairs:
        raise UserError(f"split {split!r} selects no scene of {root}")
    return AlignedPairs(
        pairs, class_map, cfg.bands, cfg.input_scale, spec.rows, with_masks, polygons
    )
