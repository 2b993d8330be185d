from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_scene
from rasterio.enums import ColorInterp
from rasterio.windows import Window

from s5geo.errors import UserError
from s5geo.io.scene import mask_kind, open_scene, scene_profile, window_reader


def _agrees_with_gdal(path: Path, bands: tuple[int, ...], win: Window) -> None:
    """window_reader gives rasterio's pixels and GDAL's dataset mask for ``win``."""
    with rasterio.open(path) as ds:
        pixels, valid = window_reader(ds, bands)(win)
        assert pixels.dtype == np.float32 and valid.dtype == bool
        np.testing.assert_array_equal(pixels, ds.read(list(bands), window=win, out_dtype="float32"))
        np.testing.assert_array_equal(valid, ds.dataset_mask(window=win) > 0)


@pytest.mark.parametrize("bands", [(1, 2, 3), (1,), (3, 1), (2, 3)])
def test_nodata_mask_from_one_read_agrees_with_gdal(tmp_path: Path, rng, bands) -> None:
    data = rng.integers(0, 3, size=(3, 60, 70), dtype=np.uint8)  # many zeros in single bands
    data[:, :10] = 0
    path = write_scene(tmp_path / "nd.tif", data, nodata=0)
    assert rasterio.open(path).nodatavals == (0, 0, 0)
    _agrees_with_gdal(path, bands, Window(5, 3, 50, 40))


def test_nan_nodata_agrees_with_gdal(tmp_path: Path, rng) -> None:
    data = rng.normal(size=(4, 30, 40)).astype(np.float32)
    data[rng.random(data.shape) < 0.5] = np.nan  # some pixels NaN in every band
    data[:, :4] = np.nan
    path = write_scene(tmp_path / "nan.tif", data, nodata=float("nan"))
    # GDAL's mask keeps a pixel with a number in any band; the reader also drops pixels with NaN
    # in a band the model reads (a model cannot use them) and zeroes them.
    win = Window(0, 0, 40, 30)
    with rasterio.open(path) as ds:
        pixels, valid = window_reader(ds, (1, 2, 3))(win)
        raw = ds.read([1, 2, 3], window=win)
        nan = np.isnan(raw).any(axis=0)
        np.testing.assert_array_equal(valid, (ds.dataset_mask(window=win) > 0) & ~nan)
    np.testing.assert_array_equal(pixels, np.where(nan, 0.0, raw))


def test_alpha_and_mask_band_agree_with_gdal(tmp_path: Path, rng) -> None:
    data = rng.integers(1, 255, size=(4, 40, 50), dtype=np.uint8)
    data[3] = np.where(rng.random((40, 50)) < 0.3, 0, rng.integers(1, 255, (40, 50)))
    alpha = write_scene(tmp_path / "alpha.tif", data)
    with rasterio.open(alpha, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    with rasterio.open(alpha) as ds:
        assert mask_kind(ds) == "alpha"
    _agrees_with_gdal(alpha, (1, 2, 3), Window(3, 2, 40, 30))
    masked = write_scene(tmp_path / "masked.tif", data[:3])
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(masked, "r+") as ds:
        ds.write_mask(np.where(data[3] > 0, 255, 0).astype(np.uint8))
    with rasterio.open(masked) as ds:
        assert mask_kind(ds) == "mask band"
    _agrees_with_gdal(masked, (2, 3), Window(3, 2, 40, 30))


@pytest.mark.realdata
def test_landsat_collar_mask(real_data: Path) -> None:
    with rasterio.open(real_data / "landsat" / "RGB.byte.tif") as ds:
        assert mask_kind(ds) == "nodata"
    _agrees_with_gdal(real_data / "landsat" / "RGB.byte.tif", (1, 2, 3), Window(0, 0, 791, 718))


def test_mask_kinds(tmp_path: Path, rng) -> None:
    plain = write_scene(tmp_path / "plain.tif", rng.integers(1, 9, (2, 8, 8), dtype=np.uint8))
    with rasterio.open(plain) as ds:
        assert mask_kind(ds) == "none"
    _agrees_with_gdal(plain, (2,), Window(0, 0, 8, 8))


def test_profile_and_errors(tmp_path: Path, rng) -> None:
    path = write_scene(tmp_path / "g.tif", rng.integers(1, 9, (4, 20, 30), dtype=np.uint16),
                       crs="EPSG:4326", res=0.001, origin=(8.0, 47.0))  # fmt: skip
    prof = scene_profile(path)
    assert (prof.width, prof.height, prof.count, prof.epsg) == (30, 20, 4, 4326)
    assert prof.is_geographic and prof.gsd_m == pytest.approx(95, rel=0.2)
    assert prof.describe()["dtypes"] == ["uint16"] * 4
    (tmp_path / "x.gpkg").write_text("not a raster")
    for bad, words in ((tmp_path / "none.tif", "no such file"), (tmp_path, "folder"),
                       (tmp_path / "x.gpkg", "not a raster")):  # fmt: skip
        with pytest.raises(UserError, match=words), open_scene(bad):
            pass
