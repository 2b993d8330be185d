"""Lightning data module: a dataset config -> training stream and whole-image eval loaders.

``kind: image_folder`` reads image/mask pairs by split name (Dubai); ``kind: raster`` reads
georeferenced scenes through torchgeo (:mod:`s5geo.data.raster`). Labeled and unlabeled sources
are separate datasets; the unlabeled one is built without masks.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from s5geo.config import DataConfig
from s5geo.data.classes import ClassMap, get_class_map
from s5geo.data.image_folder import ImageFolderSegmentation
from s5geo.data.splits import read_split
from s5geo.data.views import ViewStream
from s5geo.errors import UserError


def build_source(
    cfg: DataConfig, split: str, with_masks: bool = True, for_training: bool = False
) -> Dataset[Any]:
    """The samples of one split: whole images (image folders) or windows of scenes (rasters:
    random valid windows for training, a grid for evaluation)."""
    class_map = get_class_map(cfg.class_map)
    root = cfg.resolved_root()
    if not root.is_dir():
        raise UserError(f"data root not found: {root} (set S5GEO_DATA or data.root)")
    if cfg.kind == "image_folder":
        names = read_split(root, cfg.splits_file, split)
        return ImageFolderSegmentation(
            root, names, class_map, cfg.images_dir, cfg.masks_dir, with_masks=with_masks
        )
    if cfg.kind == "raster":
        from s5geo.data.raster import scene_split

        return scene_split(cfg, class_map, split, with_masks=with_masks, train=for_training)
    raise UserError(f"unknown data.kind {cfg.kind!r}; known: image_folder, raster")


class SegmentationDataModule(L.LightningDataModule):
    """Training views (supervised or S4P) plus val/test splits of whole images, batch size 1."""

    def __init__(
        self,
        cfg: DataConfig,
        labeled_split: str,
        semi_supervised: bool,
        steps: int,
        batch_size: int,
        num_workers: int,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.labeled_split = labeled_split
        self.semi_supervised = semi_supervised
        self.steps = steps
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.class_map: ClassMap = get_class_map(cfg.class_map)

    def train_dataloader(self) -> DataLoader[Any]:
        labeled = build_source(self.cfg, self.labeled_split, for_training=True)
        unlabeled = (
            build_source(self.cfg, self.cfg.split_unlabeled, with_masks=False, for_training=True)
            if self.semi_supervised
            else None
        )
        stream = ViewStream(
            labeled,
            unlabeled,
            length=self.steps * self.batch_size * max(self.trainer.world_size, 1)
            if self.trainer
            else self.steps * self.batch_size,
            crop_size=self.cfg.crop_size,
            scale_range=(self.cfg.scale_range[0], self.cfg.scale_range[1]),
            rotation=self.cfg.rotation,
            ignore_index=self.class_map.ignore_index,
        )
        return DataLoader(
            stream,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=True,
        )

    def eval_dataloader(self, split: str) -> DataLoader[Any]:
        """Whole images of ``split`` one at a time (sizes differ); the model tiles them."""
        return DataLoader(
            build_source(self.cfg, split), batch_size=1, num_workers=min(self.num_workers, 1)
        )

    def val_dataloader(self) -> DataLoader[Any]:
        return self.eval_dataloader(self.cfg.split_val)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.eval_dataloader(self.cfg.split_test)
