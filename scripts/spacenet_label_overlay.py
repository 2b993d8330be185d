"""Draws docs/figures/spacenet_labels.png: the SpaceNet sample scene with the shared mask's
footprints (left, red) and the repository's corrected footprints (right, green), to show which
labels belong to the image (configs/labels/README.md).
Usage: .venv/bin/python scripts/spacenet_label_overlay.py
"""

import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize

from s5geo.config import data_root

SCENE = data_root() / "spacenet" / "sample_geotiff.tif"
SHARED_MASK = data_root() / "spacenet" / "sample_fp_mask.tif"
FOOTPRINTS = Path("configs/labels/spacenet_atlanta_sample_footprints.geojson")
OUT = Path("docs/figures/spacenet_labels.png")


def outlined(gray: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    """RGB of ``gray`` with the 2-px outline of ``mask`` drawn in ``colour``."""
    rgb = np.repeat(gray[..., None], 3, axis=2)
    inner = mask.copy()
    for _ in range(2):  # two 4-neighbour erosions (numpy: scipy is not a dependency)
        padded = np.pad(inner, 1)
        inner = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    edge = mask & ~inner
    rgb[edge] = colour
    return rgb


with rasterio.open(SCENE) as src:
    raw = src.read(1).astype(np.float32)
    transform, crs, shape = src.transform, src.crs, src.shape
lo, hi = np.percentile(raw, (2, 98))
gray = (np.clip((raw - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", NotGeoreferencedWarning)  # the mask is pixel-aligned only
    with rasterio.open(SHARED_MASK) as src:
        shared = src.read(1) > 0
layer = gpd.read_file(FOOTPRINTS).to_crs(crs)
corrected = rasterize(layer.geometry, out_shape=shape, transform=transform).astype(bool)
panel = np.concatenate(
    [outlined(gray, shared, (255, 0, 0)), np.full((shape[0], 12, 3), 255, np.uint8),
     outlined(gray, corrected, (0, 255, 0))], axis=1,
)  # fmt: skip
OUT.parent.mkdir(parents=True, exist_ok=True)
Image.fromarray(panel).resize((panel.shape[1] // 2, panel.shape[0] // 2)).quantize(64).save(
    OUT, optimize=True
)
print(OUT)
