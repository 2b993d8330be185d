"""The plugin's GUI inside real QGIS (offscreen): initGui/unload, the Processing dialog, the
toolbar's segmentation dialog and the model-info window, with pytest-qgis's stand-in iface."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qgis.core")

import processing
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
)
from qgis.gui import QgsBrowserGuiModel
from qgis_helpers import ALGORITHM_ID, PLUGIN_ID, PROVIDER_ID, SMALL_EXTENT, model_classes


def one_band_copy(scene_path: Path, folder: Path) -> QgsRasterLayer:
    """A real single-band raster (band 1 of the scene), which the 4-band model cannot use."""
    out = folder / "one_band.tif"
    processing.run(
        "gdal:translate", {"INPUT": str(scene_path), "EXTRA": "-b 1", "OUTPUT": str(out)}
    )
    return QgsRasterLayer(str(out), "one band")


def test_init_gui_and_unload(qgis_iface: Any, plugin_path: Path, qgis_processing: None) -> None:
    registry = QgsApplication.processingRegistry()
    assert registry.providerById(PROVIDER_ID) is None, "an earlier test left the provider loaded"
    plugin = importlib.import_module(PLUGIN_ID).classFactory(qgis_iface)
    plugin.initGui()
    try:
        assert registry.providerById(PROVIDER_ID) is plugin.provider
        assert registry.algorithmById(ALGORITHM_ID) is not None
        assert [a.text() for a in plugin.actions] == ["Segment land cover…", "Model info…"]
        assert plugin.toolbar.actions() == plugin.actions
        plugin.initProcessing()  # QGIS may call it again: still one provider
        assert len([p for p in registry.providers() if p.id() == PROVIDER_ID]) == 1
        plugin.actions[0].trigger()
        assert plugin._dialogs["segment"].isVisible()
    finally:
        plugin.unload()
    assert registry.providerById(PROVIDER_ID) is None
    assert plugin.actions == [] and plugin.toolbar is None and plugin._dialogs == {}


def test_algorithm_dialog_opens_offscreen(
    provider: Any, qgis_iface: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The Processing dialog asks the iface for QGIS's browser model; the stand-in iface has none,
    # so give it a real one.
    browser = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: browser, raising=False)
    dialog = processing.createAlgorithmDialog(ALGORITHM_ID, {})
    try:
        dialog.show()
        QgsApplication.processEvents()
        assert dialog.isVisible()
        assert "Segment land cover" in dialog.windowTitle()
        wrappers = dialog.mainWidget().wrappers
        assert {"INPUT", "MODEL", "EXTENT", "MIN_AREA", "OUTPUT_RASTER", "OUTPUT_VECTOR"} <= set(
            wrappers
        )
    finally:
        dialog.close()
        dialog.deleteLater()


def test_segment_dialog_adds_styled_layers_and_zooms(
    provider: Any,
    qgis_iface: Any,
    qgis_new_project: QgsProject,
    scene_path: Path,
    tmp_path: Path,
    wait_for: Callable[..., list[Any]],
) -> None:
    from s5geo_plugin.segment_dialog import SegmentDialog

    scene = QgsRasterLayer(str(scene_path), "naip")
    qgis_new_project.addMapLayer(scene)
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:26914"))
    canvas.setExtent(QgsRectangle(*SMALL_EXTENT))
    dialog = SegmentDialog(qgis_iface)
    dialog.layer_combo.setLayer(scene)
    dialog.visible_only.setChecked(True)
    dialog.folder_widget.setFilePath(str(tmp_path))
    dialog.run()
    assert not dialog.run_button.isEnabled()
    (layers,) = wait_for(dialog.runFinished)
    assert [layer.name() for layer in layers] == ["naip land cover", "naip land-cover polygons"]
    raster, vector = layers
    assert Path(raster.source()) == tmp_path / "naip_landcover.tif"
    assert {layer.id() for layer in layers} <= set(qgis_new_project.mapLayers())
    assert raster.renderer().type() == "paletted"
    assert {c.label for c in raster.renderer().classes()} == set(model_classes().values())
    assert vector.renderer().type() == "categorizedSymbol"
    assert canvas.extent().contains(raster.extent()) or canvas.extent() == raster.extent()
    assert dialog.progress.value() == 100
    # A second run keeps the first results and numbers the new files.
    dialog.run()
    wait_for(dialog.runFinished)
    assert (tmp_path / "naip_landcover_2.tif").exists()
    dialog.close()


def test_segment_dialog_shows_band_mismatch(
    provider: Any,
    qgis_iface: Any,
    qgis_new_project: QgsProject,
    scene_path: Path,
    tmp_path: Path,
    wait_for: Callable[..., list[Any]],
) -> None:
    from s5geo_plugin.segment_dialog import SegmentDialog

    layer = one_band_copy(scene_path, tmp_path)
    qgis_new_project.addMapLayer(layer)
    dialog = SegmentDialog(qgis_iface)
    dialog.layer_combo.setLayer(layer)
    dialog.run()
    (layers,) = wait_for(dialog.runFinished)
    assert layers == []
    texts = [item.text() for item in dialog.message_bar.items()]
    assert any("band" in text and "Traceback" not in text for text in texts), texts
    assert dialog.run_button.isEnabled()
    dialog.close()


def test_model_info_reports_classes_provider_and_fit(
    provider: Any, qgis_new_project: QgsProject, scene_path: Path, tmp_path: Path
) -> None:
    from s5geo_plugin.model_info import ModelInfoDialog, model_report

    scene = QgsRasterLayer(str(scene_path), "naip")
    one_band = one_band_copy(scene_path, tmp_path)
    qgis_new_project.addMapLayers([scene, one_band])

    report = model_report(None, scene)
    assert report.fits is True
    assert "CPU" in report.html
    assert "4 band(s), 5 m per pixel, EPSG:26914" in report.html
    for name in model_classes().values():
        assert name in report.html
    mismatch = model_report(None, one_band)
    assert mismatch.fits is False
    assert "Does not fit" in mismatch.html and "band" in mismatch.html

    dialog = ModelInfoDialog()
    dialog.layer_combo.setLayer(one_band)
    assert "Does not fit" in dialog.report.toPlainText()
    dialog.model_widget.setFilePath(str(tmp_path / "missing.onnx"))
    assert "no such file" in dialog.report.toPlainText()
    dialog.close()


def test_segment_dialog_cancel_leaves_nothing(
    provider: Any,
    qgis_iface: Any,
    qgis_new_project: QgsProject,
    scene_path: Path,
    tmp_path: Path,
    wait_for: Callable[..., list[Any]],
) -> None:
    from s5geo_plugin.segment_dialog import SegmentDialog

    scene = QgsRasterLayer(str(scene_path), "naip")
    qgis_new_project.addMapLayer(scene)
    dialog = SegmentDialog(qgis_iface)
    dialog.layer_combo.setLayer(scene)
    dialog.folder_widget.setFilePath(str(tmp_path))
    dialog.run()
    dialog.cancel()
    (layers,) = wait_for(dialog.runFinished)
    assert layers == []
    assert any("Cancelled" in item.text() for item in dialog.message_bar.items())
    assert list(tmp_path.iterdir()) == []
    assert set(qgis_new_project.mapLayers()) == {scene.id()}
    dialog.close()
