"""``fit_model`` end to end: the NAIP 2020 scene with the demo polygons, and a toy scene.

The fitted file must be an ordinary model file (loaded by ``load_model``, run by
``predict_scene``), its report must hold the cross-validated scores, and bad labels, refused
outputs and cancellation must leave nothing behind.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import rasterio
import shapely
from fit_helpers import (
    DEMO_CLASSES,
    DEMO_LABELS,
    NAIP_2020,
    NAIP_CROP,
    TOY_CLASSES,
    TOY_GEOMETRIES,
    TOY_SIZE,
    to_lonlat,
    toy_box,
    write_crop,
    write_geoparquet,
    write_labels,
    write_toy_scene,
)
from rasterio.features import rasterize

from s5geo.errors import Cancelled, UserError
from s5geo.fit import FitResult, fit_model
from s5geo.fit.features import ENCODER_CHANNELS
from s5geo.fit.labels import read_labels
from s5geo.infer import Progress, load_model, predict_scene
from s5geo.io.gpkg import write_default_style
from s5geo.io.qgis_style import vector_qml
from s5geo.modelfile import REQUIRED_KEYS

# The analyst's legend saved with the demo labels for these tests (QGIS categorized style).
LEGEND = {"water": "#0A50C8", "cropland": "#F0E68C", "grassland": "#55AA22",
          "bare soil": "#B08050", "road": "#202020"}  # fmt: skip


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ---------------------------------------------------------------------------------------------
# The NAIP 2020 scene (a window of it) with the demo polygons drawn by eye.


@pytest.fixture(scope="module")
def naip(real_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("naip_fit")
    scene = write_crop(real_data / NAIP_2020, folder / "crop.tif", NAIP_CROP)
    labels = folder / "labels.gpkg"
    shutil.copy(DEMO_LABELS, labels)
    names = dict(enumerate(DEMO_CLASSES))
    colors = {k: LEGEND[v] for k, v in names.items()}
    write_default_style(labels, "labels", vector_qml(names, colors, field="class", values=names))
    reports: list[Progress] = []

    def progress(p: Progress) -> bool:
        reports.append(p)
        return True

    result = fit_model([scene], labels, folder / "model.onnx", progress=progress)
    return {"folder": folder, "scene": scene, "labels": labels, "result": result,
            "progress": reports}  # fmt: skip


@pytest.mark.realdata
def test_outputs_are_written(naip: dict[str, Any]) -> None:
    folder, r = naip["folder"], naip["result"]
    assert isinstance(r, FitResult)
    assert r.model == folder / "model.onnx" and r.report == folder / "model.fit.json"
    assert r.confusion_png == folder / "model.confusion.png"
    assert r.maps == [folder / "model_crop.tif"]
    assert r.confidences == [folder / "model_crop_confidence.tif"]
    assert {"model.onnx", "model.fit.json", "model.confusion.png", "model_crop.tif",
            "model_crop_confidence.tif"} <= _files(folder)  # fmt: skip
    assert not [n for n in _files(folder) if ".s5geo-tmp" in n]


@pytest.mark.realdata
def test_model_file_contract(naip: dict[str, Any]) -> None:
    path = naip["result"].model
    model = load_model(path)
    info = model.info
    assert info.class_names == dict(enumerate(DEMO_CLASSES))  # in the legend's order
    assert info.class_colors == {k: LEGEND[v] for k, v in enumerate(DEMO_CLASSES)}
    assert info.bands == (1, 2, 3, 4)  # every band of the NAIP scene, near infrared included
    assert info.input_scale == 255.0 and info.tile_size == 512
    assert info.recipe["class_field"] == "class" and info.recipe["labels"] == "labels.gpkg"
    assert info.recipe["features"] == 3 * 4 * 6 + ENCODER_CHANNELS
    meta = {p.key for p in onnx.load(str(path), load_external_data=False).metadata_props}
    assert set(REQUIRED_KEYS) <= meta
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["image"]
    assert [o.name for o in graph.output] == ["probs"]


@pytest.mark.realdata
def test_predict_scene_runs_the_fitted_model(naip: dict[str, Any], tmp_path: Path) -> None:
    scene, r = naip["scene"], naip["result"]
    out = tmp_path / "landcover.tif"
    result = predict_scene(scene, out, model=r.model)
    assert result.raster == out
    # Its own scene is as familiar as the reference the fit recorded: no warning.
    reference = load_model(r.model).info.reference_confidence
    assert reference is not None and 0.2 < reference < 1.0
    assert result.mean_confidence == pytest.approx(reference, abs=0.1)
    assert not any("s5geo fit" in w for w in result.warnings)
    with rasterio.open(out) as got, rasterio.open(r.maps[0]) as own, rasterio.open(scene) as src:
        classes = got.read(1)
        assert got.crs == src.crs and got.transform == src.transform
        assert np.array_equal(classes, own.read(1))  # the fit's own map is this prediction
        labels = read_labels(naip["labels"])
        burnt = rasterize(
            ((g, int(k) + 1) for g, k in zip(labels.geometries, labels.class_ids, strict=True)),
            out_shape=classes.shape, transform=src.transform, fill=0, dtype="int16",
        )  # fmt: skip
    assert set(np.unique(classes)) <= set(range(5))
    inside = burnt > 0
    # The map follows the polygons it was fitted on (all but the 1-px road, mostly).
    assert (classes[inside] == burnt[inside] - 1).mean() > 0.85
    for k in range(4):
        assert (classes[burnt == k + 1] == k).mean() > 0.6, DEMO_CLASSES[k]


@pytest.mark.realdata
def test_report(naip: dict[str, Any]) -> None:
    r = naip["result"]
    report = json.loads(r.report.read_text())
    v = report["validation"]
    assert v["method"].startswith("spatial 2-fold cross-validation, folds by label feature")
    confusion = np.array(v["confusion"])
    assert confusion.shape == (5, 5) and confusion.sum() == report["labelled_pixels"] == r.pixels
    assert 0 < v["miou"] <= v["accuracy"] <= 100
    assert [c["class_name"] for c in report["classes"]] == list(DEMO_CLASSES)
    for row in report["classes"]:
        assert 0 <= row["iou"] <= row["accuracy"] <= 100
        assert row["pixels"] > 0
    bare = report["classes"][3]
    assert bare["iou"] > 50  # large, distinct polygons: well separated even across folds
    assert report["class_colors"]["0"] == LEGEND["water"]
    assert report["maps"] == [str(r.maps[0])] and report["confidence"] == [str(r.confidences[0])]
    assert r.confusion_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.realdata
def test_labels_outside_the_window_are_counted(naip: dict[str, Any]) -> None:
    r = naip["result"]
    labels = read_labels(naip["labels"])
    with rasterio.open(naip["scene"]) as ds:
        outside = int((~shapely.intersects(labels.geometries, shapely.box(*ds.bounds))).sum())
    assert outside == 15
    assert r.outside == outside and r.geometries == 28 - outside
    assert f"{outside} of 28 label features lie outside every scene and were not used" in r.warnings
    report = json.loads(r.report.read_text())
    assert report["features_outside_scenes"] == outside
    assert report["warnings"] == r.warnings


@pytest.mark.realdata
def test_confidence_raster(naip: dict[str, Any]) -> None:
    r = naip["result"]
    with rasterio.open(r.confidences[0]) as conf, rasterio.open(naip["scene"]) as src:
        assert conf.transform == src.transform and conf.crs == src.crs
        values = conf.read(1)
    assert values.min() >= 100 // 5 - 1 and values.max() <= 100  # percent; never below 1/K
    assert values.min() < 60 < values.max()  # somewhere sure, somewhere unsure


@pytest.mark.realdata
def test_progress_reports_stages_in_order(naip: dict[str, Any]) -> None:
    reports = naip["progress"]
    stages = [p.stage for p in reports]
    order = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    assert order[:3] == ["features", "validate", "fit"]
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


@pytest.mark.realdata
def test_existing_outputs_are_refused_before_any_work(naip: dict[str, Any]) -> None:
    folder, scene = naip["folder"], naip["scene"]
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    called: list[Progress] = []
    missing = folder / "no-such-labels.gpkg"  # read after the outputs are checked
    with pytest.raises(UserError, match=r"model\.onnx exists; pass --overwrite to replace it"):
        fit_model([scene], missing, folder / "model.onnx", progress=called.append)
    (folder / "other_crop.tif").write_bytes(b"someone's map")
    with pytest.raises(UserError, match=r"other_crop\.tif exists"):
        fit_model([scene], missing, folder / "other.onnx", progress=called.append)
    with pytest.raises(UserError, match="no such file"):  # without maps, that name is free
        fit_model([scene], missing, folder / "other.onnx", maps=False)
    assert called == []
    (folder / "other_crop.tif").unlink()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


# ---------------------------------------------------------------------------------------------
# A toy scene: water on the left, field on the right. Fits in seconds with filter features only.


@pytest.fixture
def toy(tmp_path: Path) -> tuple[Path, Path]:
    scene = write_toy_scene(tmp_path / "toy.tif")
    labels = write_geoparquet(tmp_path / "labels.parquet", to_lonlat(TOY_GEOMETRIES),
                              {"class": TOY_CLASSES}, crs="EPSG:4326")  # fmt: skip
    return scene, labels


def test_toy_fit_maps_the_halves(toy: tuple[Path, Path], tmp_path: Path) -> None:
    scene, labels = toy
    r = fit_model([scene], labels, tmp_path / "toy.onnx", encoder=False, maps=False)
    assert r.maps == [] and r.confidences == []
    assert not (tmp_path / "toy_toy.tif").exists()
    assert r.validation is not None and r.validation.folds == 2
    assert r.validation.miou > 0.95
    info = load_model(r.model).info
    assert info.class_names == {0: "field", 1: "water"} and info.bands == (1, 2, 3)
    assert "filters)" in info.architecture
    predict_scene(scene, tmp_path / "map.tif", model=r.model)
    with rasterio.open(tmp_path / "map.tif") as ds:
        classes = ds.read(1)
    half = TOY_SIZE // 2
    assert (classes[:, : half - 2] == 1).mean() > 0.98  # water
    assert (classes[:, half + 2 :] == 0).mean() > 0.98  # field


def test_integer_codes_are_the_maps_class_ids(tmp_path: Path) -> None:
    scene = write_toy_scene(tmp_path / "toy.tif")
    labels = write_labels(tmp_path / "codes.shp", TOY_GEOMETRIES, {"code": [7, 7, 3, 3]})
    r = fit_model([scene], labels, tmp_path / "codes.onnx", encoder=False, maps=True)
    model = load_model(r.model)
    assert model.info.class_names == {3: "3", 7: "7"}
    assert onnx.load(str(r.model)).graph.output[0].type.tensor_type.shape.dim[1].dim_value == 8
    with rasterio.open(r.maps[0]) as ds:
        classes = ds.read(1)
    assert set(np.unique(classes)) == {3, 7}
    assert (classes[:, :60] == 7).mean() > 0.98
    assert [row["class_id"] for row in r.scores] == [3, 7]


def test_points_on_two_scenes(tmp_path: Path) -> None:
    west = write_toy_scene(tmp_path / "west.tif")
    east = write_toy_scene(tmp_path / "east.tif", seed=1, east=TOY_SIZE)
    rng = np.random.default_rng(5)
    cols = np.concatenate([rng.uniform(2, 60, 12), rng.uniform(68, 126, 12)])
    cols = np.concatenate([cols, cols + TOY_SIZE])  # the same layout on the east scene
    rows = rng.uniform(2, 126, cols.size)
    names = (["water"] * 12 + ["field"] * 12) * 2
    points = list(shapely.points(500_000.0 + cols, 5_000_000.0 - rows))
    points.append(shapely.Point(400_000.0, 5_000_000.0))  # in neither scene
    labels = write_labels(tmp_path / "points.geojson", to_lonlat(points),
                          {"class": [*names, "water"]}, crs="EPSG:4326")  # fmt: skip
    r = fit_model([west, east], labels, tmp_path / "pts.onnx", encoder=False)
    assert r.pixels == 48 and r.geometries == 48 and r.outside == 1
    assert r.validation is not None and r.validation.folds == 5  # folds by point
    assert r.maps == [tmp_path / "pts_west.tif", tmp_path / "pts_east.tif"]
    for path in r.maps:
        with rasterio.open(path) as ds:
            classes = ds.read(1)
        assert (classes[:, :60] == 1).mean() > 0.95 and (classes[:, 68:] == 0).mean() > 0.95


def test_overwrite_replaces_the_outputs(toy: tuple[Path, Path], tmp_path: Path) -> None:
    scene, labels = toy
    out = tmp_path / "toy.onnx"
    out.write_text("an older model")
    (tmp_path / "toy.fit.json").write_text("{}")
    r = fit_model([scene], labels, out, encoder=False, maps=False, overwrite=True)
    assert load_model(out).info.class_names == {0: "field", 1: "water"}
    assert json.loads(r.report.read_text())["labelled_pixels"] == 1024
    assert not [n for n in _files(tmp_path) if ".s5geo-tmp" in n]


@pytest.mark.parametrize("stage", ["features", "validate", "fit", "predict"])
def test_cancelling_leaves_nothing_behind(
    toy: tuple[Path, Path], tmp_path: Path, stage: str
) -> None:
    scene, labels = toy
    before = _files(tmp_path)
    seen: list[str] = []

    def progress(p: Progress) -> bool:
        seen.append(p.stage)
        return p.stage != stage

    with pytest.raises(Cancelled):
        fit_model([scene], labels, tmp_path / "toy.onnx", encoder=False, progress=progress)
    assert seen[-1] == stage
    assert _files(tmp_path) == before


def test_progress_without_maps_ends_at_one(toy: tuple[Path, Path], tmp_path: Path) -> None:
    scene, labels = toy
    reports: list[Progress] = []
    fit_model([scene], labels, tmp_path / "toy.onnx", encoder=False, maps=False,
              progress=reports.append)  # fmt: skip
    fractions = [p.fraction for p in reports]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_time_cap_leaves_out_validation_and_maps(toy: tuple[Path, Path], tmp_path: Path) -> None:
    scene, labels = toy
    r = fit_model([scene], labels, tmp_path / "toy.onnx", encoder=False, minutes=1e-6)
    assert r.validation is None and r.confusion_png is None and r.maps == []
    assert "cross-validation left out to stay within minutes" in r.warnings
    assert "maps left out to stay within minutes" in r.warnings
    assert _files(tmp_path) == {"toy.tif", "labels.parquet", "toy.onnx", "toy.fit.json"}
    assert json.loads(r.report.read_text())["validation"] is None


def test_one_polygon_per_class_fits_without_validation(tmp_path: Path) -> None:
    scene = write_toy_scene(tmp_path / "toy.tif")
    labels = write_labels(tmp_path / "l.gpkg", TOY_GEOMETRIES[1:3], {"class": ["water", "field"]})
    r = fit_model([scene], labels, tmp_path / "m.onnx", encoder=False, maps=False)
    assert r.validation is None and r.confusion_png is None
    assert any("at least two label features" in w for w in r.warnings)
    assert [set(row) for row in r.scores] == [{"class_id", "class_name"}] * 2
    assert not (tmp_path / "m.confusion.png").exists()


BAD_LABELS = {
    "nothing inside": ([shapely.affinity.translate(g, 0, 50_000) for g in TOY_GEOMETRIES],
                       TOY_CLASSES, "none of the 4 features lies inside the scenes"),
    "class clipped away": ([*TOY_GEOMETRIES, toy_box(2000, 0, 20, 20)], [*TOY_CLASSES, "road"],
                           "class 'road' has no labelled pixel inside the scenes"),
    "lines": ([shapely.LineString(g.exterior.coords) for g in TOY_GEOMETRIES], TOY_CLASSES,
              "LineString geometries"),
    "empty class": (TOY_GEOMETRIES, ["water", "", "field", "field"],
                    "1 feature(s) have no value in 'class'"),
    "overlap": ([*TOY_GEOMETRIES, toy_box(15, 15, 4, 4)], [*TOY_CLASSES, "field"],
                "feature 1 (water) and feature 5 (field) overlap"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_bad_labels_write_nothing(tmp_path: Path, case: str) -> None:
    geoms, classes, words = BAD_LABELS[case]
    scene = write_toy_scene(tmp_path / "toy.tif")
    labels = write_labels(tmp_path / "l.gpkg", geoms, {"class": classes})
    before = _files(tmp_path)
    with pytest.raises(UserError) as err:
        fit_model([scene], labels, tmp_path / "m.onnx")
    assert words in str(err.value) and "\n" not in str(err.value)
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"quality": "best"}, "quality must be one of quick, full, not 'best'"),
        ({"quality": "full"}, "use quality 'quick'"),
        ({"minutes": 0}, "minutes must be positive"),
        ({"out": "model.tif"}, "out must name an .onnx model file"),
        ({"scenes": []}, "name at least one scene"),
        ({"bands": [1, 2, 9]}, "bands must name three of the scene's bands [1, 2, 3]"),
    ],
)
def test_bad_options(
    toy: tuple[Path, Path], tmp_path: Path, options: dict[str, Any], words: str
) -> None:
    scene, labels = toy
    args: dict[str, Any] = {"scenes": [scene], "out": "m.onnx", **options}
    before = _files(tmp_path)
    with pytest.raises(UserError) as err:
        fit_model(args.pop("scenes"), labels, tmp_path / args.pop("out"), encoder=False, **args)
    assert words in str(err.value)
    assert _files(tmp_path) == before


def test_labels_may_not_be_an_output(toy: tuple[Path, Path], tmp_path: Path) -> None:
    scene, _ = toy
    labels = write_labels(tmp_path / "m.fit.json", TOY_GEOMETRIES, {"class": TOY_CLASSES},
                          driver="GeoJSON")  # fmt: skip
    with pytest.raises(UserError, match="is the input labels of this run"):
        fit_model([scene], labels, tmp_path / "m.onnx", overwrite=True, encoder=False)
