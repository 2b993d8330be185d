"""The "Segment land cover" Processing algorithm inside real QGIS, on the real NAIP scene."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qgis.core")

import processing
from qgis.core import (
    QgsApplication,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsReferencedRectangle,
    QgsVectorLayer,
)
from qgis_helpers import (
    ALGORITHM_ID,
    SMALL_EXTENT,
    SMALL_EXTENT_PIXELS,
    model_classes,
    raster_values,
    reference_polygons,
    vertex_count,
)


def small_extent(crs: Any) -> QgsReferencedRectangle:
    return QgsReferencedRectangle(QgsRectangle(*SMALL_EXTENT), crs)


def test_provider_registers(provider: Any) -> None:
    registry = QgsApplication.processingRegistry()
    assert registry.providerById("s5geo") is provider
    alg = registry.algorithmById(ALGORITHM_ID)
    assert alg is not None
    assert alg.displayName() == "Segment land cover"
    names = {p.name() for p in alg.parameterDefinitions()}
    assert {"INPUT", "MODEL", "EXTENT", "MIN_AREA", "SIMPLIFY", "TILE_SIZE", "OVERLAP"} <= names
    assert {"BATCH_SIZE", "OUTPUT_RASTER", "OUTPUT_VECTOR"} <= names
    assert provider.supportedOutputVectorLayerExtensions() == ["gpkg"]
    assert alg.flags() & QgsProcessingAlgorithm.FlagCanCancel
    assert alg.flags() & QgsProcessingAlgorithm.FlagSupportsBatch


def test_full_scene_gives_valid_layers_with_model_classes(
    provider: Any, scene_path: Path, tmp_path: Path
) -> None:
    out_tif, out_gpkg = tmp_path / "lc.tif", tmp_path / "lc.gpkg"
    result = processing.run(
        ALGORITHM_ID,
        {"INPUT": str(scene_path), "OUTPUT_RASTER": str(out_tif), "OUTPUT_VECTOR": str(out_gpkg)},
    )
    assert result["OUTPUT_RASTER"] == str(out_tif)
    assert result["OUTPUT_VECTOR"] == str(out_gpkg)
    scene = QgsRasterLayer(str(scene_path), "scene")
    raster = QgsRasterLayer(str(out_tif), "lc")
    vector = QgsVectorLayer(str(out_gpkg), "lc", "ogr")
    assert raster.isValid() and vector.isValid()
    assert raster.crs().authid() == scene.crs().authid() == "EPSG:26914"
    assert vector.crs().authid() == "EPSG:26914"
    assert (raster.width(), raster.height()) == (scene.width(), scene.height())
    assert raster.bandCount() == 1
    classes = model_classes()
    values = raster_values(raster)
    assert values and values <= set(classes)
    assert {"class_id", "class_name", "area_m2"} <= set(vector.fields().names())
    features = list(vector.getFeatures())
    assert features
    for feature in features:
        assert feature["class_name"] == classes[feature["class_id"]]
        assert feature.geometry().isGeosValid()
        assert feature["area_m2"] > 0
    assert {f["class_id"] for f in features} == values


def test_extent_and_options(provider: Any, scene_path: Path, tmp_path: Path) -> None:
    scene = QgsRasterLayer(str(scene_path), "scene")
    out_tif = tmp_path / "small.tif"
    processing.run(
        ALGORITHM_ID,
        {
            "INPUT": scene,
            "EXTENT": small_extent(scene.crs()),
            "MIN_AREA": 500.0,
            "SIMPLIFY": 5.0,
            "BATCH_SIZE": 2,
            "EXECUTION": 1,
            "OUTPUT_RASTER": str(out_tif),
            "OUTPUT_VECTOR": str(tmp_path / "small.gpkg"),
        },
    )
    raster = QgsRasterLayer(str(out_tif), "small")
    # The extent is 1000 m x 750 m at 5 m per pixel.
    assert (raster.width(), raster.height()) == SMALL_EXTENT_PIXELS
    vector = QgsVectorLayer(str(tmp_path / "small.gpkg"), "small", "ogr")
    # The options reach s5geo's polygonizer: the layer is what it makes of the raster with them,
    # whatever the model predicted.
    expected = reference_polygons(out_tif, tmp_path / "reference.gpkg", 500.0, 5.0)
    assert vector.featureCount() == expected.n_polygons
    areas = [f["area_m2"] for f in vector.getFeatures()]
    assert sum(areas) == pytest.approx(expected.total_area_m2, rel=1e-9)
    # The minimum mapping unit holds on the pixel regions (before simplifying, which moves shared
    # edges and so areas: README, --simplify), and simplifying happened.
    reference_polygons(out_tif, tmp_path / "sieved.gpkg", 500.0, 0.0)
    unsimplified = QgsVectorLayer(str(tmp_path / "sieved.gpkg"), "sieved", "ogr")
    assert min(f["area_m2"] for f in unsimplified.getFeatures()) >= 500.0
    assert vertex_count(vector) < vertex_count(unsimplified)


def test_run_and_load_results_adds_styled_layers(
    provider: Any, scene_path: Path, qgis_new_project: QgsProject
) -> None:
    scene = QgsRasterLayer(str(scene_path), "scene")
    result = processing.runAndLoadResults(
        ALGORITHM_ID,
        {
            "INPUT": scene,
            "EXTENT": small_extent(scene.crs()),
            "OUTPUT_RASTER": "TEMPORARY_OUTPUT",
            "OUTPUT_VECTOR": "TEMPORARY_OUTPUT",
        },
    )
    by_file = {file_of(layer): layer for layer in qgis_new_project.mapLayers().values()}
    raster = by_file[result["OUTPUT_RASTER"]]
    vector = by_file[result["OUTPUT_VECTOR"]]
    classes = model_classes()
    assert raster.renderer().type() == "paletted"
    labels = {c.value: c.label for c in raster.renderer().classes()}
    assert set(labels) == set(classes)
    assert all(labels[k] == classes[k] for k in classes)
    assert vector.renderer().type() == "categorizedSymbol"
    shown = {c.label() for c in vector.renderer().categories()}
    assert shown >= {classes[v] for v in raster_values(raster)}
    assert vector.crs().authid() == "EPSG:26914"


def file_of(layer: Any) -> str:
    """The file behind a layer (a GeoPackage source reads ``path|layername=...``)."""
    return layer.source().split("|")[0]


def test_cancel_leaves_no_output(provider: Any, scene_path: Path, tmp_path: Path) -> None:
    # Cancelled before the child has predicted anything: the bundled model is so quick that a
    # Cancel pressed at the first progress report may arrive after the run has finished.
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(
            ALGORITHM_ID,
            {
                "INPUT": str(scene_path),
                "OUTPUT_RASTER": str(tmp_path / "lc.tif"),
                "OUTPUT_VECTOR": str(tmp_path / "lc.gpkg"),
            },
            feedback=feedback,
        )
    assert feedback.isCanceled()
    assert list(tmp_path.iterdir()) == []


def test_wrong_band_count_is_a_readable_error(
    provider: Any, scene_path: Path, tmp_path: Path
) -> None:
    one_band = tmp_path / "one_band.tif"
    processing.run(
        "gdal:translate",
        {"INPUT": str(scene_path), "EXTRA": "-b 1", "OUTPUT": str(one_band)},
    )
    with pytest.raises(QgsProcessingException, match="band") as raised:
        processing.run(
            ALGORITHM_ID,
            {"INPUT": str(one_band), "OUTPUT_RASTER": str(tmp_path / "lc.tif")},
        )
    assert "Traceback" not in str(raised.value)
    assert not (tmp_path / "lc.tif").exists()


def test_fields_carry_the_library_ranges_and_errors_name_the_fields(
    provider: Any, scene_path: Path, tmp_path: Path
) -> None:
    """The number fields hold s5geo's own defaults and lower bounds, and an option the library
    refuses (an overlap over half the bundled model's 512-px tile, which depends on the model
    and so has no field bound) is named by its field, not by the library's parameter."""
    from s5geo.options import PredictOptions

    alg = QgsApplication.processingRegistry().algorithmById(ALGORITHM_ID)
    defaults = PredictOptions()
    fields = {"TILE_SIZE": "tile_size", "OVERLAP": "overlap", "BATCH_SIZE": "batch_size",
              "MIN_AREA": "min_area_m2", "SIMPLIFY": "simplify_m"}  # fmt: skip
    for field, param in fields.items():
        definition = alg.parameterDefinition(field)
        assert definition.minimum() == PredictOptions.LIMITS[param].low, field
        default = getattr(defaults, param)
        assert definition.defaultValue() == default, field
        assert bool(definition.flags() & definition.FlagOptional) == (default is None), field
    with pytest.raises(QgsProcessingException) as raised:
        processing.run(
            ALGORITHM_ID,
            {"INPUT": str(scene_path), "OVERLAP": 1000, "OUTPUT_RASTER": str(tmp_path / "lc.tif")},
        )
    assert str(raised.value).startswith(
        "Tile overlap must lie in 0..256 px for 512-px tiles, not 1000"
    )
    assert not (tmp_path / "lc.tif").exists()


def test_missing_s5geo_is_a_readable_error(
    provider: Any, scene_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "s5geo", None)  # what a QGIS without s5geo looks like
    with pytest.raises(QgsProcessingException, match="not installed") as raised:
        processing.run(
            ALGORITHM_ID, {"INPUT": str(scene_path), "OUTPUT_RASTER": str(tmp_path / "lc.tif")}
        )
    assert "pip install" in str(raised.value) and "Traceback" not in str(raised.value)
    assert not (tmp_path / "lc.tif").exists()


def test_worker_without_s5geo_reports_it(plugin_path: Path) -> None:
    """The child process says plainly when it cannot import s5geo (Debian's Python has none)."""
    from s5geo_plugin.runner import WORKER

    done = subprocess.run(
        ["/usr/bin/python3", "-I", str(WORKER)],
        input='{"scene": "scene.tif", "kwargs": {}}\n',
        capture_output=True,
        text=True,
        timeout=60,
    )
    final = json.loads(done.stdout.splitlines()[-1])
    assert final["kind"] == "missing" and "s5geo" in final["error"]
    assert done.returncode != 0


def test_unreadable_layer_is_refused(provider: Any, tmp_path: Path) -> None:
    with pytest.raises(QgsProcessingException, match="INPUT"):
        processing.run(
            ALGORITHM_ID,
            {"INPUT": str(tmp_path / "missing.tif"), "OUTPUT_RASTER": str(tmp_path / "x.tif")},
        )


def test_runs_inside_a_graphical_model(provider: Any, scene_path: Path, tmp_path: Path) -> None:
    """The algorithm as one step of a Processing model (what the graphical modeler builds)."""
    model = QgsProcessingModelAlgorithm("segment", "tests")
    model.addModelParameter(
        QgsProcessingParameterRasterLayer("scene", "Scene"), QgsProcessingModelParameter("scene")
    )
    step = QgsProcessingModelChildAlgorithm(ALGORITHM_ID)
    step.setChildId("seg")
    step.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")]
    )
    xmin, ymin, xmax, ymax = SMALL_EXTENT
    extent = f"{xmin},{xmax},{ymin},{ymax} [EPSG:26914]"
    step.addParameterSources(
        "EXTENT", [QgsProcessingModelChildParameterSource.fromStaticValue(extent)]
    )
    output = QgsProcessingModelOutput("landcover")
    output.setChildId("seg")
    output.setChildOutputName("OUTPUT_RASTER")
    step.setModelOutputs({"landcover": output})
    model.addChildAlgorithm(step)
    out_tif = tmp_path / "model.tif"
    result = processing.run(model, {"scene": str(scene_path), "seg:landcover": str(out_tif)})
    assert result["seg:landcover"] == str(out_tif)
    raster = QgsRasterLayer(str(out_tif), "model")
    assert raster.isValid() and (raster.width(), raster.height()) == SMALL_EXTENT_PIXELS
