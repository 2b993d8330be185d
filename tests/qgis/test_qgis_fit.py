"""The "Train land-cover model from polygons" Processing algorithm inside real QGIS: a crop of the
real NAIP scene and the demo's polygons drawn by eye, through processing.run, a graphical model,
``qgis_process`` and the worker the algorithm runs in.

Each fit on the 300 x 300 crop takes a few seconds; the crop is shared by the module.
"""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qgis.core")

import processing
from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsFeature,
    QgsFeatureRequest,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
    QgsProject,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsSymbol,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtGui import QColor
from qgis_helpers import ALGORITHM_ID, QGIS_PROCESS, qgis_process_env, raster_values

FIT_ID = "s5geo:fit"
REPO = Path(__file__).resolve().parents[2]
LABELS = REPO / "demo" / "naip_2020_labels.gpkg"
LABELS_SOURCE = f"{LABELS}|layername=labels"
CLASSES = {"water", "cropland", "grassland", "bare soil", "road"}
# 300 x 300 pixels (1.5 km) of the scene holding polygons of all five demo classes.
CROP_WINDOW = (420, 423, 300, 300)  # column, row, width, height


@pytest.fixture(scope="module")
def crop(scene_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The crop of the NAIP scene, written once for the module with rasterio."""
    import rasterio
    from rasterio.windows import Window

    out = tmp_path_factory.mktemp("crop") / "naip_crop.tif"
    with rasterio.open(scene_path) as ds:
        window = Window(*CROP_WINDOW)
        profile = ds.profile.copy()
        profile.update(width=window.width, height=window.height, tiled=False)
        profile.update(transform=ds.window_transform(window))
        profile.pop("blockxsize", None)
        profile.pop("blockysize", None)
        with rasterio.open(out, "w", **profile) as dst:
            dst.write(ds.read(window=window))
    return out


def model_of(path: Path) -> Any:
    from s5geo.infer import load_model

    return load_model(path)


def test_fit_registers(provider: Any) -> None:
    alg = QgsApplication.processingRegistry().algorithmById(FIT_ID)
    assert alg is not None
    assert alg.displayName() == "Train land-cover model from polygons"
    names = {p.name() for p in alg.parameterDefinitions()}
    assert {"INPUT", "LABELS", "CLASS_FIELD", "TIER", "MINUTES", "BANDS"} <= names
    assert {"OUTPUT", "OUTPUT_MAP", "OUTPUT_CONFIDENCE"} <= names
    assert alg.parameterDefinition("CLASS_FIELD").parentLayerParameterName() == "LABELS"
    assert alg.flags() & QgsProcessingAlgorithm.FlagCanCancel
    assert alg.flags() & QgsProcessingAlgorithm.FlagSupportsBatch


def test_fit_writes_model_and_loads_styled_map(
    provider: Any, crop: Path, tmp_path: Path, qgis_new_project: QgsProject
) -> None:
    labels = QgsVectorLayer(LABELS_SOURCE, "drawn by eye", "ogr")
    model_path = tmp_path / "naip.onnx"
    result = processing.runAndLoadResults(
        FIT_ID,
        {
            "INPUT": [str(crop)],
            "LABELS": labels,
            "CLASS_FIELD": "class",
            "OUTPUT": str(model_path),
            "OUTPUT_MAP": "TEMPORARY_OUTPUT",
            "OUTPUT_CONFIDENCE": str(tmp_path / "confidence.tif"),
        },
    )
    assert result["OUTPUT"] == str(model_path)
    assert Path(result["REPORT"]) == tmp_path / "naip.fit.json"
    report = json.loads(Path(result["REPORT"]).read_text(encoding="utf-8"))
    # 20 of the 28 polygons lie outside the crop, which the report says.
    assert report["features_outside_scenes"] == 20
    info = model_of(model_path).info
    assert set(info.class_names.values()) == CLASSES
    # The classes' colours are the labels' own categorized style.
    assert info.color(next(k for k, n in info.class_names.items() if n == "water")) == "#1F78B4"

    layers = [
        layer
        for layer in qgis_new_project.mapLayers().values()
        if layer.source() == result["OUTPUT_MAP"]
    ]
    assert len(layers) == 1
    raster = layers[0]
    assert isinstance(raster, QgsRasterLayer) and raster.isValid()
    assert (raster.width(), raster.height()) == CROP_WINDOW[2:]
    assert raster.crs().authid() == "EPSG:26914"
    assert raster.renderer().type() == "paletted"
    shown = {c.value: (c.label, c.color.name().upper()) for c in raster.renderer().classes()}
    assert shown == {k: (n, info.color(k).upper()) for k, n in info.class_names.items()}
    assert raster_values(raster) <= set(info.class_names)
    assert len(raster_values(raster)) >= 3  # a map, not one class everywhere
    confidence = QgsRasterLayer(str(tmp_path / "confidence.tif"), "confidence")
    assert confidence.isValid() and (confidence.width(), confidence.height()) == CROP_WINDOW[2:]


def test_selected_features_of_a_memory_layer(
    provider: Any, crop: Path, tmp_path: Path, qgis_new_project: QgsProject
) -> None:
    """A layer without a file, narrowed to its selection: copied for s5geo, with its style."""
    drawn = QgsVectorLayer(LABELS_SOURCE, "drawn", "ogr")
    memory = QgsVectorLayer("Polygon?crs=EPSG:26914&field=kind:string", "sketch", "memory")
    features = []
    for drawn_feature in drawn.getFeatures():
        feature = QgsFeature(memory.fields())
        feature.setGeometry(drawn_feature.geometry())
        feature["kind"] = drawn_feature["class"]
        features.append(feature)
    memory.dataProvider().addFeatures(features)
    colors = {"water": "#0000ff", "cropland": "#00ff00", "grassland": "#008000"}
    colors.update({"bare soil": "#a52a2a", "road": "#ff0000"})
    categories = []
    for name, color in colors.items():
        symbol = QgsSymbol.defaultSymbol(QgsWkbTypes.PolygonGeometry)
        symbol.setColor(QColor(color))
        categories.append(QgsRendererCategory(name, symbol, name))
    memory.setRenderer(QgsCategorizedSymbolRenderer("kind", categories))
    qgis_new_project.addMapLayer(memory)
    crop_layer = QgsRasterLayer(str(crop), "crop")
    inside = QgsFeatureRequest().setFilterRect(crop_layer.extent())
    memory.selectByIds([f.id() for f in memory.getFeatures(inside)])
    assert 0 < memory.selectedFeatureCount() < memory.featureCount()

    model_path = tmp_path / "sketch.onnx"
    result = processing.run(
        FIT_ID,
        {
            "INPUT": [crop_layer],
            "LABELS": QgsProcessingFeatureSourceDefinition(memory.id(), True),
            "OUTPUT": str(model_path),  # no class field: the only text field is taken
            "OUTPUT_MAP": None,
        },
    )
    assert result["OUTPUT_MAP"] is None
    report = json.loads(Path(result["REPORT"]).read_text(encoding="utf-8"))
    assert report["features_outside_scenes"] == 0  # only the selection was used
    info = model_of(model_path).info
    assert {n: info.color(k).lower() for k, n in info.class_names.items()} == colors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sketch.fit.json", "sketch.onnx"]


def test_cancel_leaves_nothing(provider: Any, crop: Path, tmp_path: Path) -> None:
    feedback = QgsProcessingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing.run(
            FIT_ID,
            {
                "INPUT": [str(crop)],
                "LABELS": LABELS_SOURCE,
                "OUTPUT": str(tmp_path / "m.onnx"),
                "OUTPUT_MAP": str(tmp_path / "map.tif"),
            },
            feedback=feedback,
        )
    assert list(tmp_path.iterdir()) == []


def test_cancel_while_mapping_removes_the_fitted_model(
    plugin_path: Path, crop: Path, tmp_path: Path
) -> None:
    """A Cancel that arrives after the model is written, during the map, leaves nothing either."""
    from s5geo_plugin.worker import fit

    from s5geo.errors import Cancelled

    model_path = tmp_path / "m.onnx"

    class AfterTheModel(threading.Event):
        def is_set(self) -> bool:
            return model_path.exists()

    job = {
        "scenes": [str(crop)],
        "labels": str(LABELS),
        "out": str(model_path),
        "kwargs": {"class_field": "class", "layer": "labels"},
        "map": {"out_raster": str(tmp_path / "map.tif"), "confidence": None},
    }
    with pytest.raises(Cancelled):
        fit(job, AfterTheModel())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"CLASS_FIELD": "nope"},
            r"Layer 'naip_2020_labels' has no field 'nope' \(fields: class\)",
        ),
        ({"TIER": 1}, r"Tier 'full' \(semi-supervised training\) is not available yet"),
    ],
    ids=["bad-field", "full-tier"],
)
def test_readable_errors(
    provider: Any, crop: Path, tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    parameters = {
        "INPUT": [str(crop)],
        "LABELS": LABELS_SOURCE,
        "CLASS_FIELD": "class",
        "OUTPUT": str(tmp_path / "m.onnx"),
        "OUTPUT_MAP": str(tmp_path / "map.tif"),
    }
    with pytest.raises(QgsProcessingException, match=expected) as raised:
        processing.run(FIT_ID, {**parameters, **change})
    message = str(raised.value)
    assert "Traceback" not in message and "class_field" not in message
    assert "quality" not in message
    assert list(tmp_path.iterdir()) == []


def test_fit_then_segment_in_a_graphical_model(provider: Any, crop: Path, tmp_path: Path) -> None:
    """Fit as one step of a Processing model whose next step segments with the fitted model."""
    model = QgsProcessingModelAlgorithm("fit and map", "tests")
    model.addModelParameter(
        QgsProcessingParameterRasterLayer("scene", "Scene"), QgsProcessingModelParameter("scene")
    )
    model.addModelParameter(
        QgsProcessingParameterVectorLayer("labels", "Labels"),
        QgsProcessingModelParameter("labels"),
    )
    fit_step = QgsProcessingModelChildAlgorithm(FIT_ID)
    fit_step.setChildId("fit")
    fit_step.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")]
    )
    fit_step.addParameterSources(
        "LABELS", [QgsProcessingModelChildParameterSource.fromModelParameter("labels")]
    )
    fit_step.addParameterSources(
        "CLASS_FIELD", [QgsProcessingModelChildParameterSource.fromStaticValue("class")]
    )
    model.addChildAlgorithm(fit_step)
    seg_step = QgsProcessingModelChildAlgorithm(ALGORITHM_ID)
    seg_step.setChildId("seg")
    seg_step.addParameterSources(
        "INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")]
    )
    seg_step.addParameterSources(
        "MODEL", [QgsProcessingModelChildParameterSource.fromChildOutput("fit", "OUTPUT")]
    )
    output = QgsProcessingModelOutput("landcover")
    output.setChildId("seg")
    output.setChildOutputName("OUTPUT_RASTER")
    seg_step.setModelOutputs({"landcover": output})
    model.addChildAlgorithm(seg_step)
    out_tif = tmp_path / "landcover.tif"
    result = processing.run(
        model, {"scene": str(crop), "labels": LABELS_SOURCE, "seg:landcover": str(out_tif)}
    )
    assert result["seg:landcover"] == str(out_tif)
    raster = QgsRasterLayer(str(out_tif), "landcover")
    assert raster.isValid() and (raster.width(), raster.height()) == CROP_WINDOW[2:]
    assert raster.renderer().type() == "paletted"  # the fitted model's classes, from its .qml
    assert {c.label for c in raster.renderer().classes()} == CLASSES


def test_qgis_process_run_fit(plugin_path: Path, crop: Path, tmp_path: Path) -> None:
    if not QGIS_PROCESS.exists():
        pytest.fail(f"{QGIS_PROCESS} is missing: install the Debian package qgis")
    model_path, map_path = tmp_path / "out" / "naip.onnx", tmp_path / "out" / "map.tif"
    model_path.parent.mkdir()
    command = [
        str(QGIS_PROCESS),
        "--json",
        "run",
        FIT_ID,
        "--",
        f"INPUT={crop}",
        f"LABELS={LABELS_SOURCE}",
        "CLASS_FIELD=class",
        "TIER=0",
        "MINUTES=5",
        f"OUTPUT={model_path}",
        f"OUTPUT_MAP={map_path}",
    ]
    env = qgis_process_env(plugin_path, tmp_path / "profile")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    report = json.loads(done.stdout[done.stdout.index("{") :])
    assert report["algorithm_details"]["id"] == FIT_ID
    assert report["results"]["OUTPUT"] == str(model_path)
    assert report["results"]["OUTPUT_MAP"] == str(map_path)
    assert set(model_of(model_path).info.class_names.values()) == CLASSES
    raster = QgsRasterLayer(str(map_path), "map")
    assert raster.isValid() and raster.renderer().type() == "paletted"
    assert raster.crs().authid() == "EPSG:26914"


def test_qgis_process_bad_field_is_one_readable_error(
    plugin_path: Path, crop: Path, tmp_path: Path
) -> None:
    if not QGIS_PROCESS.exists():
        pytest.fail(f"{QGIS_PROCESS} is missing: install the Debian package qgis")
    command = [
        str(QGIS_PROCESS),
        "run",
        FIT_ID,
        "--",
        f"INPUT={crop}",
        f"LABELS={LABELS_SOURCE}",
        "CLASS_FIELD=nope",
        f"OUTPUT={tmp_path / 'm.onnx'}",
    ]
    env = qgis_process_env(plugin_path, tmp_path / "profile")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "has no field 'nope'" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_dialog_button_opens_the_algorithm(
    provider: Any, qgis_iface: Any, crop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The segmentation dialog's "Train from polygons…" opens the fit algorithm's dialog with the
    chosen layer, and a trained model becomes the dialog's model."""
    from s5geo_plugin.segment_dialog import SegmentDialog

    layer = QgsRasterLayer(str(crop), "crop")
    QgsProject.instance().addMapLayer(layer)
    opened: list[tuple[str, dict[str, Any]]] = []

    def exec_dialog(alg_id: str, parameters: dict[str, Any]) -> dict[str, Any]:
        opened.append((alg_id, parameters))
        return {"OUTPUT": "/data/trained.onnx"}

    monkeypatch.setattr(processing, "execAlgorithmDialog", exec_dialog)
    dialog = SegmentDialog(qgis_iface)
    try:
        dialog.layer_combo.setLayer(layer)
        dialog.train_button.click()
        assert opened == [(FIT_ID, {"INPUT": [layer.id()]})]
        assert dialog.model_widget.filePath() == "/data/trained.onnx"
    finally:
        dialog.deleteLater()
        QgsProject.instance().removeMapLayer(layer.id())
