"""Distillation data: soft labels of whole images, and training streams of weak views with them.

Soft labels are per-pixel log-probabilities ``[K, H, W]`` (float16) of a model over whole images,
one ``<stem>.pt`` file per image in a folder of the run; they are what teachers and MCKD students
hand to the next stage. A training item is a weak view (rescale, crop, flips) of an image with its
mask and soft labels warped identically: soft labels ride along as extra channels of the image.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from s5geo.config import DataConfig
from s5geo.data.augment import to_unit_range, weak_view
from s5geo.data.image_folder import ImageFolderSegmentation
from s5geo.data.module import build_source
from s5geo.datasets.classes import get_class_map
from s5geo.errors import UserError
from s5geo.models.checkpoint import load_torch_file
from s5geo.train.inference import predict_probs

Sample = dict[str, torch.Tensor]
LOG_FLOOR = -30.0  # log-probabilities are clamped here so float16 stays finite


def split_source(cfg: DataConfig, split: str, with_masks: bool = True) -> ImageFolderSegmentation:
    """Whole images of ``split``; distillation needs image names (``kind: image_folder``)."""
    source = build_source(cfg, split, with_masks=with_masks)
    if not isinstance(source, ImageFolderSegmentation):
        raise UserError("distillation supports data.kind image_folder only (it needs image names)")
    return source


@torch.no_grad()
def write_soft_labels(
    net: nn.Module,
    source: ImageFolderSegmentation,
    indices: Sequence[int],
    out_dir: Path,
    data: DataConfig,
    tile: int,
) -> None:
    """Label images ``indices`` of ``source`` with ``net`` (tiled, eval mode) into ``out_dir``.

    Files are written under a temporary name and renamed, so an interrupted labelling pass
    resumes with the images it has not finished.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    # Channels-last weights and windows: the ResNet-18 teacher labels in 0.77x the time on CPU.
    net.eval().to(memory_format=torch.channels_last)
    mean = torch.tensor(data.mean).view(-1, 1, 1)
    std = torch.tensor(data.std).view(-1, 1, 1)
    num_classes = get_class_map(data.class_map).num_classes
    for i in indices:
        target = out_dir / f"{source.names[i]}.pt"
        if target.is_file():
            continue
        x = (to_unit_range(source[i]["image"], data.input_scale) - mean) / std
        probs = predict_probs(net, x, num_classes, tile=tile, channels_last=True)
        log_probs = probs.clamp(min=1e-13).log().clamp(min=LOG_FLOOR).half()
        tmp = target.with_suffix(f".{os.getpid()}.tmp")  # concurrent runs may share a folder
        torch.save(log_probs, tmp)
        tmp.replace(target)


def read_soft_labels(folder: Path, names: Sequence[str]) -> list[torch.Tensor]:
    """The soft labels of ``names`` from ``folder`` (weights-only loading, a damaged file is a
    UserError naming it)."""
    out = []
    for name in names:
        path = folder / f"{name}.pt"
        if not path.is_file():
            raise UserError(f"soft labels missing: {path} (was the labelling stage run?)")
        out.append(load_torch_file(path, expected="soft labels of s5geo distill"))
    return out


def with_soft(
    source: ImageFolderSegmentation, indices: Sequence[int], soft: Sequence[torch.Tensor] | None
) -> list[Sample]:
    """Samples ``indices`` of ``source`` with their soft labels attached (when given)."""
    samples = []
    for j, i in enumerate(indices):
        sample = dict(source[i])
        if soft is not None:
            sample["soft"] = soft[j]
        samples.append(sample)
    return samples


class SoftViewStream(Dataset[Sample]):
    """``length`` items; each a weak view of a labeled sample (``image``, ``mask``, ``valid``,
    ``soft``) and/or of a random pseudo-labeled one (``u_image``, ``u_valid``, ``u_soft``)."""

    def __init__(
        self,
        labeled: Sequence[Sample],
        unlabeled: Sequence[Sample],
        length: int,
        view: Callable[..., dict[str, torch.Tensor]],
    ) -> None:
        if not labeled and not unlabeled:
            raise UserError("a distillation stage needs labeled or pseudo-labeled images")
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.length = length
        self.view = view

    def __len__(self) -> int:
        return self.length

    def _view(self, sample: Sample, rng: random.Random, prefix: str) -> Sample:
        soft = sample.get("soft")
        view = self.view(sample["image"], sample.get("mask"), rng=rng, extra=soft)
        out = {prefix + "image": view["image"], prefix + "valid": view["valid"]}
        if soft is not None:
            out[prefix + "soft"] = view["extra"]
        if prefix == "":
            out["mask"] = view["mask"]
        return out

    def __getitem__(self, index: int) -> Sample:
        rng = random.Random(int(torch.randint(0, 2**62, ()).item()))
        out: Sample = {}
        if self.labeled:
            out.update(self._view(self.labeled[index % len(self.labeled)], rng, ""))
        if self.unlabeled:
            out.update(self._view(self.unlabeled[rng.randrange(len(self.unlabeled))], rng, "u_"))
        return out


class DistillDataModule(L.LightningDataModule):
    """A stage's training stream plus the whole-image validation loader of the data config."""

    def __init__(
        self,
        cfg: DataConfig,
        labeled: Sequence[Sample],
        unlabeled: Sequence[Sample],
        steps: int,
        batch_size: int,
        num_workers: int,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.steps = steps
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.ignore_index = get_class_map(cfg.class_map).ignore_index

    def _view(
        self,
        image: torch.Tensor,
        mask: torch.Tensor | None,
        rng: random.Random,
        extra: torch.Tensor | None = None,
    ) -> Sample:
        return weak_view(
            image, mask, crop_size=self.cfg.crop_size,
            scale_range=(self.cfg.scale_range[0], self.cfg.scale_range[1]),
            rotation=self.cfg.rotation, ignore_index=self.ignore_index, rng=rng,
            input_scale=self.cfg.input_scale, extra=extra,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader[Any]:
        stream = SoftViewStream(
            self.labeled,
            self.unlabeled,
            self.steps * self.batch_size,
            self._view,
        )
        return DataLoader(
            stream,
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=True,
        )

    def val_dataloader(self) -> DataLoader[Any]:
        """Whole validation images one at a time (sizes differ); the module tiles them."""
        return DataLoader(build_source(self.cfg, self.cfg.split_val), batch_size=1)
