"""The toolbar's simple dialog: segment a layer, then add both outputs styled and zoom to them.

It runs the same Processing algorithm as the toolbox, as a background task (QGIS stays usable,
the task appears in the task manager), with a progress bar and a Cancel button. Errors appear in
the dialog's message bar as readable text. "Train from polygons…" opens the Processing dialog of
the fitting algorithm for the chosen layer, and the model it trains becomes this dialog's model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapLayer,
    QgsMapLayerProxyModel,
    QgsProcessing,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsReferencedRectangle,
)
from qgis.gui import QgsDoubleSpinBox, QgsFileWidget, QgsMapLayerComboBox, QgsMessageBar
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .algorithm import SegmentLandCover
from .backend import ReadableError, raster_file
from .styling import combined_extent, load_outputs

ALGORITHM_ID = "s5geo:segmentlandcover"
FIT_ALGORITHM_ID = "s5geo:fit"


class _CollectingFeedback(QgsProcessingFeedback):
    """Keeps the errors a run reports, so the dialog can show them when the task ends."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def reportError(self, error: str, fatalError: bool = False) -> None:
        self.errors.append(error)
        super().reportError(error, fatalError)


def unique_output(folder: Path, stem: str, suffix: str) -> str:
    """``folder/stem_landcover.suffix``, numbered so that earlier results are never replaced."""
    candidate = folder / f"{stem}_landcover{suffix}"
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem}_landcover_{n}{suffix}"
        n += 1
    return str(candidate)


class SegmentDialog(QDialog):
    """Layer, model, a few options and an output folder; Run starts a background task."""

    #: Emitted when a run ends, with the layers it added (empty when it failed or was cancelled).
    runFinished = pyqtSignal(list)

    def __init__(self, iface: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.iface = iface
        self.setWindowTitle("s5geo: segment land cover")
        self.message_bar = QgsMessageBar()
        self.layer_combo = QgsMapLayerComboBox()
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.model_widget = QgsFileWidget()
        self.model_widget.setFilter("ONNX models (*.onnx)")
        self.model_widget.lineEdit().setPlaceholderText("Bundled default model")
        self.train_button = QPushButton("Train from polygons…")
        self.train_button.setToolTip(
            "Fit a model for this imagery from polygons or points with a class field"
        )
        self.train_button.clicked.connect(self.train)
        self.visible_only = QCheckBox("Only the area visible in the map")
        self.min_area = _spin(0.0, 1e9, " m²")
        self.simplify = _spin(0.0, 1e4, " m")
        self.polygons = QCheckBox("Also write polygons (GeoPackage)")
        self.polygons.setChecked(True)
        self.folder_widget = QgsFileWidget()
        self.folder_widget.setStorageMode(QgsFileWidget.GetDirectory)
        self.folder_widget.lineEdit().setPlaceholderText("Temporary files")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)

        form = QFormLayout()
        form.addRow("Raster layer", self.layer_combo)
        form.addRow("Model", self.model_widget)
        form.addRow("", self.train_button)
        form.addRow("", self.visible_only)
        form.addRow("Minimum mapping unit", self.min_area)
        form.addRow("Simplification tolerance", self.simplify)
        form.addRow("", self.polygons)
        form.addRow("Output folder", self.folder_widget)

        self.buttons = QDialogButtonBox(QDialogButtonBox.Close)
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.buttons.addButton(self.run_button, QDialogButtonBox.ActionRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ActionRole)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.message_bar)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)

        self._task: QgsProcessingAlgRunnerTask | None = None
        self._context: QgsProcessingContext | None = None
        self._feedback: _CollectingFeedback | None = None

    def parameters(self) -> dict[str, Any]:
        """The algorithm's parameters from the dialog's fields.

        The layer goes in as its file, so the background task opens its own copy rather than
        sharing the project's layer object across threads.
        """
        layer = self.layer_combo.currentLayer()
        scene = raster_file(layer)
        folder = self.folder_widget.filePath()
        stem = layer.name()
        if folder:
            raster = unique_output(Path(folder), stem, ".tif")
            vector = unique_output(Path(folder), stem, ".gpkg")
        else:
            raster = vector = QgsProcessing.TEMPORARY_OUTPUT
        params: dict[str, Any] = {
            SegmentLandCover.INPUT: scene,
            SegmentLandCover.MODEL: self.model_widget.filePath(),
            SegmentLandCover.MIN_AREA: self.min_area.value(),
            SegmentLandCover.SIMPLIFY: self.simplify.value(),
            SegmentLandCover.OUTPUT_RASTER: raster,
            SegmentLandCover.OUTPUT_VECTOR: vector if self.polygons.isChecked() else None,
        }
        canvas = self.iface.mapCanvas() if self.iface is not None else None
        if self.visible_only.isChecked() and canvas is not None:
            crs = canvas.mapSettings().destinationCrs()
            params[SegmentLandCover.EXTENT] = QgsReferencedRectangle(canvas.extent(), crs)
        return params

    def run(self) -> None:
        """Start the algorithm as a background task."""
        self.message_bar.clearWidgets()
        try:
            parameters = self.parameters()
        except ReadableError as exc:
            self.message_bar.pushWarning("s5geo", str(exc))
            return
        self._feedback = _CollectingFeedback()
        self._feedback.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        self._context = QgsProcessingContext()
        self._context.setProject(QgsProject.instance())
        algorithm = QgsApplication.processingRegistry().algorithmById(ALGORITHM_ID)
        if algorithm is None:
            self.message_bar.pushCritical("s5geo", "The s5geo Processing provider is not loaded.")
            return
        self._task = QgsProcessingAlgRunnerTask(
            algorithm, parameters, self._context, self._feedback
        )
        self._task.executed.connect(self._on_executed)
        self._set_running(True)
        self.progress.setValue(0)
        QgsApplication.taskManager().addTask(self._task)

    def train(self) -> None:
        """Open the fitting algorithm's dialog for the chosen layer; use the model it writes.

        The Processing dialog brings everything a fit needs (the polygon layer and its class field,
        tier, time cap, outputs) and runs it as a background task with progress and Cancel.
        """
        import processing

        layer = self.layer_combo.currentLayer()
        parameters = {"INPUT": [layer.id()]} if layer is not None else {}
        results = processing.execAlgorithmDialog(FIT_ALGORITHM_ID, parameters)
        model = (results or {}).get("OUTPUT")
        if model:
            self.model_widget.setFilePath(model)
            self.message_bar.pushMessage(
                "s5geo", f"Trained {model}; Run maps the layer with it.", Qgis.Success, 5
            )

    def cancel(self) -> None:
        """Ask the running task to stop; s5geo then removes its partial outputs."""
        if self._feedback is not None:
            self._feedback.cancel()

    def _on_executed(self, successful: bool, results: dict[str, Any]) -> None:
        self._set_running(False)
        layers: list[QgsMapLayer] = []
        feedback = self._feedback
        if successful:
            try:
                layers = self._add_results(results)
            except OSError as exc:
                self.message_bar.pushCritical("s5geo", str(exc))
        elif feedback is not None and feedback.isCanceled():
            self.message_bar.pushInfo("s5geo", "Cancelled: no output was written.")
        else:
            errors = feedback.errors if feedback is not None else []
            self.message_bar.pushCritical("s5geo", errors[-1] if errors else "The run failed.")
        self._task = None
        self.runFinished.emit(layers)

    def _add_results(self, results: dict[str, Any]) -> list[QgsMapLayer]:
        project = QgsProject.instance()
        layer = self.layer_combo.currentLayer()
        name = layer.name() if layer is not None else "s5geo"
        layers = load_outputs(
            project,
            results[SegmentLandCover.OUTPUT_RASTER],
            results.get(SegmentLandCover.OUTPUT_VECTOR),
            name,
        )
        if self.iface is not None:
            canvas = self.iface.mapCanvas()
            canvas.setExtent(combined_extent(layers, project))
            canvas.refresh()
        self.progress.setValue(100)
        self.message_bar.pushMessage(
            "s5geo", f"Added {len(layers)} layer(s) styled by class.", Qgis.Success, 5
        )
        return layers

    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)


def _spin(low: float, high: float, suffix: str) -> QgsDoubleSpinBox:
    spin = QgsDoubleSpinBox()
    spin.setRange(low, high)
    spin.setDecimals(1)
    spin.setSuffix(suffix)
    spin.setClearValue(0.0)
    return spin
