"""Lightning data module: a dataset config -> training stream and whole-image eval loaders.

``kind: image_folder`` reads image/mask pairs by split name (Dubai); ``kind: raster`` reads
georeferenced scenes through torchgeo (:mod:`s5geo.data.raster`). Labeled and unlabeled sources
are separate datasets; the unlabeled one is built without masks. With ``data.unlabeled_selection``
the unlabeled source is the windows of a curated selection (:mod:`s5geo.data.selection`, written
by ``s5geo curate``) instead of the ``split_unlabeled`` images, for either kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import DataLoader, Dataset

from s5geo.config import DataConfig
from s5geo.data.image_folder import ImageFolderSegmentation
from s5geo.data.views import ViewStream
from s5geo.datasets.classes import ClassMap, get_class_map
from s5geo.datasets.splits import split_items
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
        return ImageFolderSegmentation.from_config(
            cfg, split, class_map, with_masks=with_masks, for_training=for_training
        )
    if cfg.kind == "raster":
        from s5geo.data.raster import scene_split

        return scene_split(cfg, class_map, split, with_masks=with_masks, train=for_training)
    raise UserError(f"unknown data.kind {cfg.kind!r}; known: image_folder, raster")


def split_files(cfg: DataConfig, split: str) -> list[Path]:
    """The image files of ``split``: by name, scene file stem or split spec
    (:mod:`s5geo.datasets.splits`)."""
    return [item.image for item in split_items(cfg, split, with_masks=False)]


def selection_source(cfg: DataConfig) -> Dataset[Any]:
    """The curated selection of ``data.unlabeled_selection`` as unlabeled samples.

    Refused (UserError) when the file is missing or unreadable, when a scene it lists is missing,
    lacks ``data.bands`` or does not contain its window, and when any window comes from an image
    of the validation or test split (unlabeled training data must not overlap evaluation images).
    """
    from s5geo.data.selection import SelectedWindows

    path = cfg.resolved_unlabeled_selection()
    if path is None:
        raise UserError("data.unlabeled_selection is not set")
    if not path.is_file():
        raise UserError(
            f"data.unlabeled_selection: selection file not found: {path} (make it with s5geo "
            "curate, or leave the key unset to use data.split_unlabeled)"
        )
    source = SelectedWindows(path, list(cfg.bands), cfg.input_scale)
    root = cfg.resolved_root()
    if root.is_dir() and cfg.kind in ("image_folder", "raster"):
        chosen = {p.resolve() for p in source.scene_paths}
        for split in dict.fromkeys((cfg.split_val, cfg.split_test)):
            clash = chosen & {p.resolve() for p in split_files(cfg, split)}
            if clash:
                raise UserError(
                    f"data.unlabeled_selection {path}: {len(clash)} of its scenes belong to the "
                    f"{split!r} split (e.g. {min(clash)}); unlabeled training data must not "
                    "come from evaluation images"
                )
    return source


def unlabeled_source(cfg: DataConfig) -> Dataset[Any]:
    """S4P's unlabeled samples: the curated selection when ``data.unlabeled_selection`` is set,
    else the images of ``data.split_unlabeled`` (without masks)."""
    if cfg.unlabeled_selection:
        return selection_source(cfg)
    return build_source(cfg, cfg.split_unlabeled, with_masks=False, for_training=True)


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
        # A curated selection is checked now, so a bad one fails before the model is built.
        self._unlabeled: Dataset[Any] | None = (
            selection_source(cfg) if semi_supervised and cfg.unlabeled_selection else None
        )

    def train_dataloader(self) -> DataLoader[Any]:
        labeled = build_source(self.cfg, self.labeled_split, for_training=True)
        unlabeled = None
        if self.semi_supervised:
            unlabeled = (
                self._unlabeled if self._unlabeled is not None else unlabeled_source(self.cfg)
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
            input_scale=self.cfg.input_scale,
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
