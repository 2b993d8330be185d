"""Image/mask pairs in two folders, on their pixel grid (no georeferencing), e.g. Dubai.

Source of the Dubai set: "Semantic segmentation of aerial imagery", Humans in the Loop with MBRSC
satellite imagery, listed as CC0. 72 RGB JPEG images of Dubai in 8 Tiles with dense masks of 5
classes (building, land, road, vegetation, water) and 255 for unlabeled pixels. The protocol
(``splits.json``) keeps whole Tiles apart: train 1,3-7 (12 labeled ``_001``/``_005`` images, 42
unlabeled), val Tile 2, test Tile 8.

These files carry no CRS or transform: the dataset is a torchgeo ``NonGeoDataset`` and says so
with ``georeferenced = False``; its samples have no ``bounds``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchgeo.datasets import NonGeoDataset

from s5geo.data.classes import ClassMap
from s5geo.data.splits import find_image, read_split  # noqa: F401  (read_split: re-exported)
from s5geo.errors import UserError


class ImageFolderSegmentation(NonGeoDataset):
    """Images and (optionally) masks named by stem; images cached in memory as uint8 tensors.

    ``with_masks=False`` makes an unlabeled source: samples carry no ``mask``, so labels of the
    unlabeled split cannot leak into semi-supervised training.
    """

    georeferenced = False

    def __init__(
        self,
        root: Path,
        names: list[str],
        class_map: ClassMap,
        images_dir: str = "images",
        masks_dir: str = "masks",
        with_masks: bool = True,
    ) -> None:
        self.root = Path(root)
        self.names = names
        self.class_map = class_map
        self.with_masks = with_masks
        self.image_paths = [find_image(self.root / images_dir, n) for n in names]
        self.mask_paths = (
            [find_image(self.root / masks_dir, n) for n in names] if with_masks else []
        )
        self._cache: dict[int, dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """``image`` uint8 ``[C, H, W]``, ``mask`` int64 ``[H, W]`` (255 ignore) when labeled."""
        if index not in self._cache:
            image = np.asarray(Image.open(self.image_paths[index]).convert("RGB"))
            sample = {"image": torch.from_numpy(image.copy()).permute(2, 0, 1).contiguous()}
            if self.with_masks:
                raw = np.asarray(Image.open(self.mask_paths[index]))
                mask = self.class_map.encode(raw)
                if mask.shape != image.shape[:2]:
                    raise UserError(f"{self.mask_paths[index]} differs in size from its image")
                sample["mask"] = torch.from_numpy(mask.astype(np.int64))
            self._cache[index] = sample
        return dict(self._cache[index])
