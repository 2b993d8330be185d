"""Unusual scenes get a right answer or one clear message (issue 30, part B): south-up and
ungeoreferenced extents, GCP-only scenes, infinities, negative values, GDAL dataset names,
vector files, broken VRTs and truncated files, absurd batch and tile sizes."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from helpers import build_perpixel_model, perpixel_reference, write_scene
from rasterio.control import GroundControlPoint
from rasterio.transform import Affine

from s5geo.errors import UserError
from s5geo.infer import load_model, memory, predict_scene
from s5geo.infer.memory import BatchShape, batch_memory_bytes, check_batch_memory
from s5geo.io.scene import open_scene, scene_profile


def _read(path: Path) -> tuple[np.ndarray, Affine]:
    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform


def _raw(rng: np.random.Generator, h: int = 80, w: int = 80) -> np.ndarray:
    return rng.uniform(1, 255, size=(3, h, w)).astype("uint8")


def _write(path: Path, data: np.ndarray, **profile: object) -> Path:
    c, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=c,
                       dtype=data.dtype, **profile) as ds:  # fmt: skip
        ds.write(data)
    return path


def test_extent_on_a_south_up_scene(tmp_path, rng, perpixel_model) -> None:
    raw = _raw(rng)
    # Positive y pixel size: row 0 is the southern edge, y grows with the row.
    scene = _write(tmp_path / "south_up.tif", raw, crs="EPSG:32633",
                   transform=Affine(1.0, 0, 500_000.0, 0, 1.0, 5_000_000.0))  # fmt: skip
    out = tmp_path / "o.tif"
    predict_scene(scene, out, model=perpixel_model, bounds=(500_010, 5_000_020, 500_030, 5_000_050))
    classes, transform = _read(out)
    assert classes.shape == (30, 20)
    assert transform == Affine(1.0, 0, 500_010.0, 0, 1.0, 5_000_020.0)
    assert (classes == perpixel_reference(raw[:, 20:50, 10:30])).mean() > 0.999


def test_extent_in_pixels_on_a_scene_without_georeferencing(tmp_path, rng, perpixel_model):
    raw = _raw(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        scene = _write(tmp_path / "pixels.tif", raw)
    out = tmp_path / "o.tif"
    predict_scene(scene, out, model=perpixel_model, bounds=(10, 20, 30, 50))  # columns, rows
    classes, transform = _read(out)
    assert classes.shape == (30, 20) and (transform.c, transform.f) == (10.0, 20.0)
    assert (classes == perpixel_reference(raw[:, 20:50, 10:30])).mean() > 0.999
    with pytest.raises(UserError, match=r"in pixels \(column, row\) within 0,0,80,80"):
        predict_scene(scene, tmp_path / "p.tif", model=perpixel_model, bounds=(90, 0, 99, 9))
    with pytest.raises(UserError, match="four finite numbers"):
        predict_scene(scene, tmp_path / "p.tif", model=perpixel_model, bounds=(np.nan, 0, 9, 9))


def test_gcp_only_scenes_are_refused_with_the_way_out(tmp_path, rng, perpixel_model) -> None:
    gcps = [GroundControlPoint(r, c, 500_000 + c, 5_000_000 - r) for r in (0, 80) for c in (0, 80)]
    scene = _write(tmp_path / "gcps.tif", _raw(rng), gcps=gcps, crs="EPSG:32633")
    for out in (tmp_path / "o.tif", tmp_path / "o.gpkg"):
        with pytest.raises(UserError, match="only by 4 ground control points.*gdalwarp"):
            if out.suffix == ".tif":
                predict_scene(scene, out, model=perpixel_model)
            else:
                from s5geo.segment import segment_scene

                segment_scene(scene, out_raster=out.with_suffix(".tif"), out_vector=out,
                              model=perpixel_model)  # fmt: skip
    assert scene_profile(scene).gcps == 4  # `s5geo info` still describes it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gcps.tif", "perpixel.onnx"]


@pytest.mark.parametrize("resolution_cm", [0.0, 200.0])  # native, and resampled 2x
def test_infinities_are_nodata_without_numpy_warnings(tmp_path, rng, resolution_cm) -> None:
    model = build_perpixel_model(tmp_path / "m.onnx", resolution_cm=resolution_cm)
    raw = rng.uniform(0.0, 255.0, size=(3, 120, 120)).astype("float32")
    raw[:, 10:30, 10:40] = np.inf
    raw[2, 60:90, 60:100] = -np.inf  # one band is enough
    scene = write_scene(tmp_path / "inf.tif", raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's warnings fail the run
        predict_scene(scene, tmp_path / "o.tif", model=model)
    classes, _ = _read(tmp_path / "o.tif")
    infinite = np.isinf(raw).any(axis=0)
    assert (classes[infinite] == 255).all()
    assert (classes[~infinite] != 255).all()


def test_negative_values_are_warned(tmp_path, rng, perpixel_model) -> None:
    signed = (_raw(rng).astype("int16") - 300).astype("int16")  # -299..-45
    scene = write_scene(tmp_path / "int16.tif", signed)
    result = predict_scene(scene, tmp_path / "o.tif", model=perpixel_model)
    assert len(result.warnings) == 1
    assert "values from -29" in result.warnings[0] and "expects 0..255" in result.warnings[0]


def test_gdal_dataset_names_are_not_mangled(tmp_path, rng, perpixel_model) -> None:
    raw = _raw(rng)
    scene = write_scene(tmp_path / "scene.tif", raw)
    archive = tmp_path / "scene.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(scene, "inner/scene.tif")
    name = f"/vsizip//{str(archive).lstrip('/')}/inner/scene.tif"  # GDAL's absolute form
    assert name.startswith("/vsizip//")
    assert scene_profile(name).path == name
    predict_scene(name, tmp_path / "o.tif", model=perpixel_model)
    assert (_read(tmp_path / "o.tif")[0] == perpixel_reference(raw)).mean() > 0.999
    with pytest.raises(UserError, match="not a raster GDAL can read"):
        scene_profile(f"/vsizip//{str(archive).lstrip('/')}/missing.tif")


def test_a_vrt_with_a_missing_source_and_a_truncated_file_say_so(tmp_path, rng) -> None:
    source = write_scene(tmp_path / "source.tif", _raw(rng))
    vrt = tmp_path / "mosaic.vrt"
    rasterio.shutil.copy(source, vrt, driver="VRT")
    big = write_scene(tmp_path / "big.tif", _raw(rng, 600, 600))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(big.read_bytes()[:200_000])
    source.unlink()
    with pytest.raises(UserError, match="reads .*source.tif, which does not exist"):
        scene_profile(vrt)
    with pytest.raises(UserError, match="truncated or corrupt"):
        scene_profile(truncated)
    model = build_perpixel_model(tmp_path / "m.onnx")
    with pytest.raises(UserError, match="source.tif, which does not exist"):
        predict_scene(vrt, tmp_path / "o.tif", model=model)


def test_vector_files_and_model_folders_are_named_for_what_they_are(tmp_path) -> None:
    import pyogrio
    import shapely

    vector = tmp_path / "fields.gpkg"
    pyogrio.raw.write(vector, shapely.to_wkb(np.array([shapely.box(0, 0, 1, 1)])),
                      field_data=[np.array([1])], fields=["id"], geometry_type="Polygon",
                      crs="EPSG:32633", driver="GPKG", layer="fields")  # fmt: skip
    vector_file = r"is a vector file \(layers: fields\), not a raster"
    with pytest.raises(UserError, match=vector_file), open_scene(vector):
        pass
    with pytest.raises(UserError, match="is a folder, not a model file"):
        load_model(tmp_path)


def _shape(batch: int, tile: int) -> BatchShape:
    return BatchShape(batch=batch, bands=3, classes=5, tile=tile, window=(tile, tile),
                      overlap=tile // 8, width=20_000, confidence=False)  # fmt: skip


def test_the_batch_memory_estimate_counts_each_buffer() -> None:
    parts = batch_memory_bytes(_shape(4, 512))
    tile = 512 * 512 * 4
    assert parts["input"] == 2 * 4 * 3 * tile  # the batch being filled and the one handed over
    assert parts["probabilities"] == 4 * 5 * tile
    band, rows = 6 * 4 * 64 * 20_000, 512 * 20_000
    assert parts["blending"] == 4 * tile + 6 * tile + band + rows


def test_a_batch_beyond_the_available_memory_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 1 << 30)
    check_batch_memory(_shape(4, 256), batch_size=4, tile_from_model=False)  # 0.1 GiB fits
    with pytest.raises(UserError) as caught:
        check_batch_memory(_shape(128, 512), batch_size=1000, tile_from_model=True)
    message = str(caught.value)
    # 0.75 GiB input, 0.625 probabilities, 0.17 blending
    assert "(the model's tiles_size 512, batch_size 1000) needs at least 1.5 GiB" in message
    assert "but 1.0 GiB is available" in message
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: None)  # unknown: no check
    check_batch_memory(_shape(64, 512), batch_size=64, tile_from_model=True)
