"""Streamed mode overviews against a reference, and inside the COG that GDAL writes."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from affine import Affine

from s5geo.io.overviews import StreamingOverviews, mode_2x2, overview_grids
from s5geo.io.raster import NODATA, BlockRowWriter, GridSpec, write_class_cog


def reference_mode(block: list[int]) -> int:
    """The most frequent non-nodata value, the first seen on ties; nodata if there is none."""
    counts = Counter(v for v in block if v != NODATA)
    if not counts:
        return NODATA
    top = max(counts.values())
    return next(v for v in block if v != NODATA and counts[v] == top)


def reference_level(rows: np.ndarray) -> np.ndarray:
    """One level down, computed block by block (odd sides padded with nodata)."""
    h, w = rows.shape
    padded = np.full((h + h % 2, w + w % 2), NODATA, np.uint8)
    padded[:h, :w] = rows
    out = np.empty((padded.shape[0] // 2, padded.shape[1] // 2), np.uint8)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            block = padded[2 * i : 2 * i + 2, 2 * j : 2 * j + 2]
            out[i, j] = reference_mode(block.ravel().tolist())
    return out


def class_map(rng: np.random.Generator, h: int, w: int, k: int = 4) -> np.ndarray:
    """Blobs of k classes (upsampled noise) with a nodata corner: a map like a prediction's."""
    coarse = rng.integers(0, k, size=(h // 8 + 1, w // 8 + 1), dtype=np.uint8)
    classes = np.kron(coarse, np.ones((8, 8), np.uint8))[:h, :w].copy()
    noise = rng.random((h, w)) < 0.1
    classes[noise] = rng.integers(0, k, size=int(noise.sum()), dtype=np.uint8)
    classes[: h // 5, : w // 4] = NODATA
    return classes


def test_mode_2x2_is_the_block_mode_without_nodata(rng) -> None:
    rows = rng.choice(np.array([0, 1, 2, NODATA], np.uint8), size=(64, 64))
    rows[:2, :2] = NODATA  # a wholly nodata block stays nodata
    np.testing.assert_array_equal(mode_2x2(rows), reference_level(rows))
    assert mode_2x2(rows)[0, 0] == NODATA


@pytest.mark.parametrize(("h", "w"), [(1301, 1100), (1024, 2049), (400, 300)])
def test_streamed_levels_match_the_whole_raster_reference(rng, tmp_path: Path, h, w) -> None:
    grid = GridSpec(w, h, None, Affine.identity())
    classes = class_map(rng, h, w)
    overviews = StreamingOverviews(tmp_path / "stage.tif", grid)
    row = 0
    while row < h:  # rows arrive in uneven batches, as the blender finishes them
        n = int(rng.integers(1, 200))
        overviews.add(classes[row : row + n])
        row += n
    overviews.close()
    grids = overview_grids(grid)
    assert len(overviews.paths) == len(grids)
    expected = classes
    for path, level in zip(overviews.paths, grids, strict=True):
        expected = reference_level(expected)
        with rasterio.open(path) as ds:
            assert (ds.width, ds.height) == (level.width, level.height)
            np.testing.assert_array_equal(ds.read(1), expected)
    overviews.discard()
    assert not any(p.exists() for p in overviews.paths)


@pytest.mark.parametrize(("h", "w"), [(1500, 1900), (300, 1025), (2100, 700)])
def test_cog_carries_the_streamed_overviews_and_gdal_would_make_the_same_levels(
    rng, tmp_path: Path, h, w
) -> None:
    grid = GridSpec(w, h, None, Affine.translation(500000, 5200000) * Affine.scale(5, -5))
    classes = class_map(rng, h, w)
    cogs = {}
    for streamed in (True, False):
        stage = tmp_path / f"stage_{streamed}.tif"
        writer = BlockRowWriter(stage, grid, "land-cover class")
        overviews = StreamingOverviews(stage, grid)
        writer.write(0, classes)
        overviews.add(classes)
        writer.close()
        overviews.close()
        cogs[streamed] = tmp_path / f"cog_{streamed}.tif"
        names, colors = {0: "a", 1: "b", 2: "c", 3: "d"}, dict.fromkeys(range(4), "#112233")
        paths = overviews.paths if streamed else None
        write_class_cog(stage, cogs[streamed], names, colors, {"S5GEO_MODEL": "m"}, paths)
    with rasterio.open(cogs[True]) as ours, rasterio.open(cogs[False]) as gdal:
        assert ours.overviews(1) == gdal.overviews(1)
        np.testing.assert_array_equal(ours.read(1), classes)
        assert ours.colormap(1)[0] == (17, 34, 51, 255)
        assert ours.tags()["S5GEO_MODEL"] == "m"
        assert ours.nodata == NODATA and ours.transform == grid.transform
        assert ours.descriptions == ("land-cover class",)
    assert not list(tmp_path.glob("*.vrt"))
    level1 = {}
    for streamed, path in cogs.items():
        with rasterio.open(path, overview_level=0) as ds:
            level1[streamed] = ds.read(1)
    np.testing.assert_array_equal(level1[True], reference_level(classes))
    # GDAL's own mode differs only where a block's mode is tied (and GDAL rounds an odd side down
    # where these levels keep the last column or row).
    h1, w1 = level1[False].shape
    assert (level1[True][:h1, :w1] == level1[False]).mean() > 0.95
