"""Georeferenced scenes through torchgeo: image rasters with label rasters or vector labels.

- :class:`SceneImages` (a torchgeo ``RasterDataset``): GeoTIFF/COG scenes of any band count and
  dtype, selected by file glob and split (scene file stems listed in the splits JSON: splits are by
  scene, never by interleaved windows).
- :class:`LabelRasters`: class-index rasters (``RasterDataset`` with ``is_image = False``).
- :class:`VectorLabels`: GeoPackage/Shapefile polygons rasterised on the fly by a class attribute
  (torchgeo ``VectorDataset``); pixels outside every polygon become the ignore index.
- :class:`ValidRandomGeoSampler`: torchgeo's ``RandomGeoSampler`` that rejects windows holding
  only nodata; ``GridGeoSampler`` covers scenes for evaluation.
- :class:`GeoWindows`: windows drawn by a sampler, as a sequence of samples with ``image`` (0..1),
  ``mask`` (nodata -> ignore) and ``valid`` (False on nodata), which the training views consume.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torchgeo.datasets import GeoDataset, RasterDataset, VectorDataset
from torchgeo.samplers import GridGeoSampler, RandomGeoSampler

from s5geo.config import DataConfig
from s5geo.data.classes import ClassMap
from s5geo.data.splits import read_split
from s5geo.errors import UserError


class SceneImages(RasterDataset):
    """Scene rasters (all bands, cast to float32 by torchgeo); ``nodata`` marks invalid pixels."""

    is_image = True

    def __init__(self, paths: list[Path], nodata: float = 0.0) -> None:
        self.nodata = nodata
        super().__init__(paths=[str(p) for p in paths])


class LabelRasters(RasterDataset):
    """Label rasters of class indices, read with nearest-neighbour resampling."""

    is_image = False

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(paths=[str(p) for p in paths])


class VectorLabels(VectorDataset):
    """Polygons rasterised by ``label_attribute``; uncovered pixels become ``ignore_index``.

    torchgeo fills uncovered pixels with 0, so labels are burned as ``class + 1`` and shifted back.
    """

    def __init__(self, path: Path, res: float, label_attribute: str, ignore_index: int) -> None:
        self.ignore_index = ignore_index
        super().__init__(paths=str(path), res=res, label_name=label_attribute)

    def get_label(self, feature: Any) -> int:
        return int(feature[self.label_name]) + 1

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


class GeoWindows(Dataset[dict[str, torch.Tensor]]):
    """Samples of ``dataset`` at the windows of ``sampler``, normalised for the training views."""

    georeferenced = True

    def __init__(
        self,
        dataset: GeoDataset,
        sampler: Any,
        input_scale: float,
        nodata: float,
        ignore_index: int,
    ) -> None:
        self.dataset = dataset
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
            mask = sample["mask"].long()
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
    stems = set(read_split(root, cfg.splits_file, split))
    scenes = sorted(p for p in (root / cfg.images_dir).glob(cfg.image_glob) if p.stem in stems)
    if not scenes:
        raise UserError(
            f"no scene of split {split!r} matches {root / cfg.images_dir / cfg.image_glob}"
        )
    images = SceneImages(scenes)
    dataset: GeoDataset = images
    if with_masks:
        if cfg.vector_labels:
            labels: GeoDataset = VectorLabels(
                root / cfg.vector_labels, images.res[0], cfg.label_attribute,
                class_map.ignore_index,
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
    return GeoWindows(dataset, sampler, cfg.input_scale, images.nodata, class_map.ignore_index)
