"""Training streams of weak views: labeled, unlabeled and the CutMix partner, one dict per item.

Item ``i`` of :class:`ViewStream` takes ``labeled[i % n_l]`` (the labeled set is cycled: with a
shuffled sampler over ``length`` items every image recurs evenly) and, for S4P, two random
unlabeled images: the unlabeled view and the CutMix partner. Randomness comes from torch's RNG,
which Lightning seeds per worker, so runs are reproducible from their seed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from s5geo.data.augment import weak_view


class ViewStream(Dataset[dict[str, torch.Tensor]]):
    """``length`` items of weak views; keys ``image``/``mask``/``valid`` (+ ``u_*``, ``m_*``)."""

    def __init__(
        self,
        labeled: Sequence[dict[str, torch.Tensor]] | Any,
        unlabeled: Sequence[dict[str, torch.Tensor]] | Any | None,
        length: int,
        crop_size: int,
        scale_range: tuple[float, float],
        rotation: bool,
        ignore_index: int,
        input_scale: float = 255.0,
    ) -> None:
        self.labeled = labeled
        self.unlabeled = unlabeled
        self.length = length
        self.view_args = {
            "crop_size": crop_size,
            "scale_range": scale_range,
            "rotation": rotation,
            "ignore_index": ignore_index,
            "input_scale": input_scale,
        }

    def __len__(self) -> int:
        return self.length

    def _view(self, sample: dict[str, torch.Tensor], rng: random.Random) -> dict[str, torch.Tensor]:
        return weak_view(
            sample["image"],
            sample.get("mask"),
            valid=sample.get("valid"),
            rng=rng,
            **self.view_args,  # type: ignore[arg-type]
        )

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = random.Random(int(torch.randint(0, 2**62, ()).item()))
        out = self._view(self.labeled[index % len(self.labeled)], rng)
        if self.unlabeled is not None:
            n = len(self.unlabeled)
            for prefix in ("u_", "m_"):
                view = self._view(self.unlabeled[rng.randrange(n)], rng)
                out.update({prefix + "image": view["image"], prefix + "valid": view["valid"]})
        return out
