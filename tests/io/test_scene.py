from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import write_scene
from rasterio.windows import Window

from s5geo.errors import UserError
from s5geo.io.scene import mask_kind, open_scene, scene_profile, validity_from_data


def test_validity_from_pixels_agrees_with_gdal_dataset_mask(tmp_path: Path, rng) -> None:
    data = rng.integers(0, 3, size=(3, 60, 70), dtype=np.uint8)  # many zeros in single bands
    data[:, :10] = 0
    path = write_scene(tmp_path / "nd.tif", data, nodata=0)
    with rasterio.open(path) as ds:
        win = Window(5, 3, 50, 40)
        raw = ds.read(window=win, out_dtype="float32")
        fast = validity_from_data(ds, (1, 2, 3))(win, raw)
        np.testing.assert_array_equal(fast, ds.dataset_mask(window=win) > 0)
        subset = validity_from_data(ds, (1,))(win, raw[:1])  # falls back to GDAL
        np.testing.assert_array_equal(subset, ds.dataset_mask(window=win) > 0)


@pytest.mark.realdata
def test_landsat_collar_mask(real_data: Path) -> None:
    with rasterio.open(real_data / "landsat" / "RGB.byte.tif") as ds:
        assert mask_kind(ds) == "nodata"
        raw = ds.read(out_dtype="float32")
        full = Window(0, 0, ds.width, ds.height)
        np.testing.assert_array_equal(
            validity_from_data(ds, (1, 2, 3))(full, raw), ds.dataset_mask() > 0
        )


def test_mask_kinds(tmp_path: Path, rng) -> None:
    plain = write_scene(tmp_path / "plain.tif", rng.integers(1, 9, (2, 8, 8), dtype=np.uint8))
    with rasterio.open(plain) as ds:
        assert mask_kind(ds) == "none"
        assert validity_from_data(ds, (1, 2))(Window(0, 0, 8, 8), ds.read()).all()


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
