"""Georeferenced scenes through torchgeo: image rasters with label rasters or vector labels.

- :class:`SceneImages` (a torchgeo ``RasterDataset``): GeoTIFF/COG scenes of any band count and
  dtype, read as the 1-based bands of ``data.bands`` in that order (the bands export writes into
  the model file as ``s5geo.bands``; a scene with fewer bands is refused), selected by file glob
  and split (scene file stems listed in the splits JSON, or a split spec such as ``ids=...`` or
  ``list=...``, see :mod:`s5geo.datasets.splits`: splits are by scene, never by interleaved
  windows).
- :class:`LabelRasters`: label rasters (``RasterDataset`` with ``is_image = False``), decoded by
  the class map (stored values or colours -> class indices, unlisted ones -> ignore).
- :class:`VectorLabels`: GeoPackage/Shapefile/GeoJSON polygons rasterised on the fly by a class
  attribute, or all with ``data.label_value`` (torchgeo ``VectorDataset``); pixels outside every
  polygon become the ignore index. :func:`vector_label_layer` and :func:`polygon_class` are the
  checks and the class choice that the ``aligned`` kind shares.
- :class:`ValidRandomGeoSampler`: torchgeo's ``RandomGeoSampler`` that rejects windows holding
  only nodata; ``GridGeoSampler`` covers scenes for evaluation.
- :class:`GeoWindows`: windows drawn by a sampler, as a sequence of samples with ``image`` (0..1),
  ``mask`` (nodata -> ignore) and ``valid`` (False on nodata), which the training views consume.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import rasterio
import torch
from torch.utils.data import Dataset
from torchgeo.datasets import GeoDataset, RasterDataset, VectorDataset
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

from s5geo.config import DataConfig
from s5geo.datasets.classes import ClassMap
from s5geo.datasets.splits import split_items
from s5geo.errors import UserError


class SceneImages(RasterDataset):
    """Scene rasters cast to float32 by torchgeo; ``nodata`` marks invalid pixels.

    ``bands``: the 1-based bands to read, in this order (``data.bands``; None: every band). A
    scene with fewer bands than listed is refused with a UserError naming it.
    """

    is_image = True

    def __init__(
        self, paths: list[Path], nodata: float = 0.0, *, bands: list[int] | None = None
    ) -> None:
        self.nodata = nodata
        if bands is not None and (not bands or min(bands) < 1):
            raise UserError(f"data.bands are 1-based band numbers (1 = first band); got {bands}")
        super().__init__(paths=[str(p) for p in paths])
        if bands is not None:
            for path in self.index.filepath:
                with rasterio.open(path) as src:
                    count = src.count
                if max(bands) > count:
                    raise UserError(
                        f"{path} has {count} band{'s' if count != 1 else ''}; "
                        f"data.bands asks for {list(bands)}"
                    )
            # torchgeo reads these band indexes of every file (RasterDataset._merge_files).
            self.band_indexes = list(bands)


class LabelRasters(RasterDataset):
    """Label rasters of class indices, read with nearest-neighbour resampling."""

    is_image = False

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(paths=[str(p) for p in paths])


def vector_label_layer(
    path: Path, label_attribute: str, label_value: int | None
) -> gpd.GeoDataFrame:
    """The polygons of ``path`` (``data.vector_labels``), checked for what burning them needs: the
    file exists, declares a CRS and, unless ``label_value`` is set, has ``label_attribute``."""
    if not path.is_file():
        raise UserError(f"data.vector_labels: file not found: {path}")
    layer = gpd.read_file(path)
    if layer.crs is None:
        raise UserError(f"data.vector_labels {path} declares no CRS; the polygons cannot be placed")
    if label_value is None and label_attribute not in layer.columns:
        raise UserError(
            f"data.vector_labels {path} has no column {label_attribute!r} (data.label_attribute); "
            "name the column holding class ids, or set data.label_value to burn every polygon as "
            "that class"
        )
    return layer


def polygon_class(feature: Any, label_attribute: str, label_value: int | None) -> int:
    """The class index a polygon is burned with: ``label_value`` when set, else the feature's
    ``label_attribute``."""
    return label_value if label_value is not None else int(feature[label_attribute])


class VectorLabels(VectorDataset):
    """Polygons rasterised by ``label_attribute`` (or all as ``label_value``); uncovered pixels
    become ``ignore_index``.

    torchgeo fills uncovered pixels with 0, so labels are burned as ``class + 1`` and shifted back.
    """

    def __init__(
        self,
        path: Path,
        res: float,
        label_attribute: str,
        ignore_index: int,
        label_value: int | None = None,
    ) -> None:
        vector_label_layer(path, label_attribute, label_value)
        self.ignore_index = ignore_index
        self.label_value = label_value
        super().__init__(paths=str(path), res=res, label_name=label_attribute)

    def get_label(self, feature: Any) -> int:
        return polygon_class(feature, str(self.label_name), self.label_value) + 1

    def __getitem__(self, query: Any) -> dict[str, Any]:
        sample = super().__getitem__(query)
        mask = sample["mask"].long() - 1
        sample["mask"] = torch.where(mask < 0, self.ignore_index, mask)
        return sample


class ValidRandomGeoSampler(RandomGeoSampler):
    """Random windows in pixel units; a window whose image is all nodata is drawn again."""

    def __init__(self, dataset: GeoDataset, size: int, length: int, nodata: float = 0.0) -> None:
        super().__init__(dataset, size, length)
        self.dataset = dataset
        self.nodata = nodata

    def __iter__(self) -> Iterator[Any]:
        produced = 0
        while produced < len(self):
            for query in super().__iter__():
                if (self.dataset[query]["image"] != self.nodata).any():
                    yield query
                    produced += 1
                    if produced == len(self):
                        return


def encode_mask(class_map: ClassMap, mask: torch.Tensor) -> torch.Tensor:
    """Raw label window (``[H, W]`` values or ``[3+, H, W]`` colours) -> int64 class indices."""
    raw = mask.numpy()
    if raw.ndim == 3 and raw.shape[0] == 1:
        raw = raw[0]
    if raw.ndim == 3:
        raw = np.moveaxis(raw[:3], 0, -1).astype(np.uint8)
    return torch.from_numpy(class_map.encode(raw).astype(np.int64))


class GeoWindows(Dataset[dict[str, torch.Tensor]]):
    """Samples of ``dataset`` at the windows of ``sampler``, normalised for the training views.

    With ``class_map``, label rasters are decoded by it (not for vector labels, which are burned
    as class indices already).
    """

    georeferenced = True

    def __init__(
        self,
        dataset: GeoDataset,
        sampler: Any,
        input_scale: float,
        nodata: float,
        ignore_index: int,
        class_map: ClassMap | None = None,
    ) -> None:
        self.dataset = dataset
        self.class_map = class_map
        self.queries = list(sampler)
        self.input_scale = input_scale
        self.nodata = nodata
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return len(self.queries)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.dataset[self.queries[index]]
        image = sample["image"]
        valid = (image != self.nodata).any(dim=0)
        out = {"image": (image / self.input_scale).clamp(0, 1), "valid": valid}
        if "mask" in sample:
            mask = sample["mask"]
            mask = encode_mask(self.class_map, mask) if self.class_map is not None else mask.long()
            out["mask"] = torch.where(valid, mask, self.ignore_index)
        return out


def scene_split(
    cfg: DataConfig,
    class_map: ClassMap,
    split: str,
    with_masks: bool = True,
    train: bool = True,
) -> GeoWindows:
    """Windows of the scenes of ``split``: random valid windows (training) or a grid (eval)."""
    root = cfg.resolved_root()
    scenes = sorted(item.image for item in split_items(cfg, split, with_masks=False))
    if not scenes:
        raise UserError(
            f"no scene of split {split!r} matches {root / cfg.images_dir / cfg.image_glob}"
        )
    images = SceneImages(scenes, bands=list(cfg.bands))
    dataset: GeoDataset = images
    if with_masks:
        vector_path = cfg.resolved_vector_labels()
        if vector_path is not None:
            labels: GeoDataset = VectorLabels(
                vector_path, images.res[0], cfg.label_attribute, class_map.ignore_index,
                cfg.label_value,
            )  # fmt: skip
        else:
            label_files = sorted((root / cfg.masks_dir).glob(cfg.label_glob))
            if not label_files:
                raise UserError(f"no label raster matches {root / cfg.masks_dir / cfg.label_glob}")
            labels = LabelRasters(label_files)
        dataset = images & labels
    size = 2 * cfg.crop_size if train else cfg.crop_size
    sampler = (
        ValidRandomGeoSampler(dataset, size, cfg.train_windows, nodata=images.nodata)
        if train
        else GridGeoSampler(dataset, size, size)
    )
    return GeoWindows(
        dataset, sampler, cfg.input_scale, images.nodata, class_map.ignore_index,
        class_map=class_map if with_masks and not cfg.vector_labels else None,
    )  # fmt: skip
