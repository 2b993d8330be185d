"""Land cover of a dask-backed DataArray (rioxarray): lazy, and the classes of the
single-process predictor on the same file, pixel for pixel, on threads and on 2 processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from s5geo.infer import PredictOptions, predict_scene

rioxarray = pytest.importorskip("rioxarray")


@pytest.mark.realdata
def test_a_dataarray_gets_the_classes_of_predict_scene(real_data: Path, tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    from s5geo.largearea.dataarray import predict_dataarray

    scene = real_data / "landsat" / "RGB.byte.tif"  # a no-data collar around the image
    options = PredictOptions(overlap=200)
    predict_scene(scene, tmp_path / "single.tif", options=options)
    with rasterio.open(tmp_path / "single.tif") as ds:
        expected, transform, crs = ds.read(1), ds.transform, ds.crs

    data = rioxarray.open_rasterio(scene, chunks={"band": -1, "y": 256, "x": 256})
    classes = predict_dataarray(data, options=options, block_megapixels=0.15)
    assert classes.dims == ("y", "x") and classes.dtype == np.uint8
    assert len(classes.chunks[0]) >= 3  # blocks of rows, none computed yet
    assert classes.rio.crs == crs and classes.rio.transform() == transform
    assert classes.rio.nodata == 255
    np.testing.assert_array_equal(classes.x, data.x)
    np.testing.assert_array_equal(classes.compute(scheduler="threads").values, expected)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
        as cluster,
        Client(cluster),
    ):  # fmt: skip
        np.testing.assert_array_equal(classes.compute().values, expected)


def test_a_dataarray_needs_band_y_x() -> None:
    import xarray as xr

    from s5geo.errors import UserError
    from s5geo.largearea.dataarray import predict_dataarray

    with pytest.raises(UserError, match=r"dims \('band', 'y', 'x'\)"):
        predict_dataarray(xr.DataArray(np.zeros((4, 4)), dims=("y", "x")))
