"""A curated selection as an unlabeled training source (the S4P trainer's hook).

:class:`SelectedWindows` reads the windows listed in a ``selection.gpkg`` (every layer) and yields
samples like :class:`s5geo.data.raster.GeoWindows` does for unlabeled scenes: ``image`` float
[C, h, w] in 0..1 (raw / ``input_scale``, the listed 1-based bands) and ``valid`` (False on
nodata). The weak/strong views (:class:`s5geo.data.views.ViewStream`) crop them as usual.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window
from torch.utils.data import Dataset

from s5geo.curate.manifest import read_selection
from s5geo.errors import UserError


class SelectedWindows(Dataset[dict[str, torch.Tensor]]):
    """The windows of a curated selection, read on demand (nothing is cached)."""

    def __init__(self, selection: Path, bands: list[int], input_scale: float) -> None:
        if not Path(selection).is_file():
            raise UserError(f"selection file not found: {selection}")
        self.rows = read_selection(Path(selection))
        if not self.rows:
            raise UserError(f"{selection} lists no window")
        self.bands = bands
        self.input_scale = input_scale

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        r = self.rows[index]
        window = Window(r["col_off"], r["row_off"], r["width"], r["height"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(r["scene"]) as src:
                raw = src.read(self.bands, window=window).astype(np.float32)
                nodata = src.nodata
        valid = (raw != nodata).any(0) if nodata is not None else np.ones(raw.shape[1:], bool)
        image = np.clip(raw / self.input_scale, 0.0, 1.0)
        return {"image": torch.from_numpy(image), "valid": torch.from_numpy(valid)}
