"""The model-info window: what a model predicts, what it reads, and whether it fits a layer.

Shows the classes with their colours, the bands, the resolution and tile size the model was made
for, and the execution provider ONNX Runtime will use on this machine (TensorRT, CUDA or CPU).
With a layer chosen it says plainly whether the layer has the bands the model needs.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from qgis.core import QgsMapLayerProxyModel, QgsRasterLayer, QgsUnitTypes
from qgis.gui import QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from .backend import ReadableError, raster_file, require_s5geo

PROVIDER_NAMES = {
    "TensorrtExecutionProvider": "TensorRT (NVIDIA GPU)",
    "CUDAExecutionProvider": "CUDA (NVIDIA GPU)",
    "CPUExecutionProvider": "CPU",
}


@dataclass(frozen=True)
class ModelReport:
    """The window's content: HTML to show, and whether the model fits the layer (None: no layer)."""

    html: str
    fits: bool | None


def model_report(model_path: str | None, layer: QgsRasterLayer | None) -> ModelReport:
    """Describe the model at ``model_path`` (None: the bundled default) and check it against
    ``layer``; raise :class:`ReadableError` when the model itself cannot be read."""
    lib = require_s5geo()
    path = model_path or lib.default_model_path()
    try:
        model = lib.load_model(path)
    except lib.UserError as exc:
        raise ReadableError(str(exc)) from None
    info = model.info
    fits: bool | None = None
    verdict = ""
    if layer is not None:
        try:
            raster_file(layer)
            check_bands(info.bands, layer)
        except ReadableError as exc:
            fits = False
            verdict = (
                f"<p style='color:#b00020'><b>Does not fit '{_e(layer.name())}'</b>: {_e(exc)}</p>"
            )
        else:
            fits = True
            verdict = f"<p style='color:#1b5e20'><b>Fits '{_e(layer.name())}'</b>.</p>"
        unit = QgsUnitTypes.toAbbreviatedString(layer.crs().mapUnits())
        verdict += (
            f"<p>Layer: {layer.bandCount()} band(s), "
            f"{layer.rasterUnitsPerPixelX():g} {_e(unit)} per pixel, {_e(layer.crs().authid())}</p>"
        )
    rows = "".join(
        f"<tr><td>{cid}</td><td style='background:{info.color(cid)}'>&nbsp;&nbsp;&nbsp;&nbsp;</td>"
        f"<td>{_e(name)}</td></tr>"
        for cid, name in sorted(info.class_names.items())
    )
    resolution = f"{info.resolution_cm:g} cm per pixel" if info.resolution_cm else "not stated"
    bands = ", ".join(str(b) for b in info.bands)
    provider = PROVIDER_NAMES.get(model.provider, model.provider)
    body = (
        f"<h3>{_e(path)}</h3>{verdict}"
        f"<p><b>Bands read</b>: {bands} (1-based, in this order)<br>"
        f"<b>Resolution</b>: {resolution}<br>"
        f"<b>Tile size</b>: {info.tile_size} pixels<br>"
        f"<b>Execution provider</b>: {_e(provider)}</p>"
        f"<table cellspacing='2'><tr><th>id</th><th></th><th>class</th></tr>{rows}</table>"
    )
    return ModelReport(html=body, fits=fits)


def check_bands(bands: tuple[int, ...], layer: QgsRasterLayer) -> None:
    """Refuse a layer that lacks a band the model reads (the check s5geo makes before a run)."""
    if any(b > layer.bandCount() for b in bands):
        raise ReadableError(
            f"'{layer.name()}' has {layer.bandCount()} band(s) but the model reads bands "
            f"{', '.join(map(str, bands))} (it needs {len(bands)})"
        )


def _e(value: object) -> str:
    return html.escape(str(value))


class ModelInfoDialog(QDialog):
    """A model chooser, an optional layer to check against, and the report."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("s5geo: model info")
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter("ONNX models (*.onnx)")
        self.model_widget.lineEdit().setPlaceholderText("Bundled default model")
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.layer_combo.setAllowEmptyLayer(True)
        self.report = QTextBrowser()
        self.report.setMinimumSize(460, 360)
        form = QFormLayout()
        form.addRow("Model", self.model_widget)
        form.addRow("Check against layer", self.layer_combo)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.report)
        layout.addWidget(buttons)
        self.model_widget.fileChanged.connect(self.refresh)
        self.layer_combo.layerChanged.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the report for the chosen model and layer; problems are shown, not raised."""
        try:
            model = self.model_widget.filePath() or None
            report = model_report(model, self.layer_combo.currentLayer())
        except ReadableError as exc:
            self.report.setHtml(f"<p style='color:#b00020'>{_e(exc)}</p>")
        else:
            self.report.setHtml(report.html)
