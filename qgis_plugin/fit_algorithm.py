"""The Processing algorithm "Train land-cover model from polygons": raster layers and a polygon or
point layer with a class field in, a model file (.onnx) and optionally the map of the first raster
out.

It is a thin layer over :func:`s5geo.fit.fit_model`, run in a child process like every s5geo
algorithm (base.py): the child's progress drives the Processing feedback, Cancel stops the run
and leaves nothing behind, and s5geo's user errors become ``QgsProcessingException`` messages that
name this algorithm's parameters instead of the library's arguments. Being an ordinary Processing
algorithm, it runs as a background task and works in the toolbox, the graphical modeler, batch
mode and ``qgis_process``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeatureSourceDefinition,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from .backend import ReadableError, raster_file
from .base import S5geoAlgorithm, check_suffix, given

# Tier choices: label shown to the analyst, the ``quality`` passed to s5geo.
TIERS: tuple[tuple[str, str], ...] = (
    ("Quick (random forest on image features; seconds to a minute)", "quick"),
    ("Full (semi-supervised training; not available yet)", "full"),
)
# Label files s5geo reads itself (through pyogrio/GDAL or pyarrow). Any other layer, and any layer
# narrowed in QGIS (selection, filter), is first written to a temporary GeoPackage.
READABLE_LABELS = (".gpkg", ".shp", ".geojson", ".json", ".fgb", ".parquet", ".geoparquet")

HELP = """<p>Fits a land-cover <b>model file</b> (ONNX) for your own imagery from a few polygons or
points you drew on it, each with a class in a field. The model runs like any other s5geo model
(<i>Segment land cover</i>, <code>s5geo predict</code>, Deepness, GeoDeep).</p>
<p><b>Raster layers</b>: one or more scenes of one sensor (same bands and data type), any CRS.
<b>Training polygons or points</b>: any vector layer QGIS reads, in any CRS; with features
selected, only those are used. Polygons of different classes must not overlap, and every class
needs labelled pixels inside the rasters.</p>
<p><b>Class field</b>: names or integer codes. Empty: the single text or integer field that looks
like a class. Class names, their order and colours come from the layer's categorized style when it
has one on that field.</p>
<p><b>Tier</b>: <i>quick</i> (a random forest on multi-scale filters and the bundled network's
features, folded into one ONNX graph). <i>full</i> (semi-supervised training) is not available
yet. <b>Time cap</b>: stages that would not fit in it are left out (the model is always
written).</p>
<p>Next to the model, s5geo writes a report: <code>MODEL.fit.json</code> with per-class accuracy
and IoU by spatial cross-validation (folds by polygon) and <code>MODEL.confusion.png</code>.
The optional <b>map</b> is the first raster classified by the new model, styled with the labels'
classes and colours; its optional <b>confidence</b> raster shows where the model is unsure, which
is where the next polygons help most.</p>"""


@dataclass(frozen=True)
class _LabelsPlan:
    """Where s5geo reads the labels: a file it opens itself, or a copy to write first."""

    name: str  # the layer's name, for messages
    path: str | None  # None: write the features to a temporary GeoPackage first
    layer: str | None
    style_qml: str | None  # the layer's current style, kept with a copy for the class colours


class FitLandCoverModel(S5geoAlgorithm):
    """s5geo:fit."""

    INPUT = "INPUT"
    LABELS = "LABELS"
    CLASS_FIELD = "CLASS_FIELD"
    TIER = "TIER"
    MINUTES = "MINUTES"
    BANDS = "BANDS"
    OUTPUT = "OUTPUT"
    OUTPUT_MAP = "OUTPUT_MAP"
    OUTPUT_CONFIDENCE = "OUTPUT_CONFIDENCE"
    REPORT = "REPORT"
    MIOU = "MIOU"

    def __init__(self) -> None:
        super().__init__()
        self._labels: _LabelsPlan | None = None

    def name(self) -> str:
        return "fit"

    def displayName(self) -> str:
        return "Train land-cover model from polygons"

    def shortHelpString(self) -> str:
        return HELP

    def shortDescription(self) -> str:
        return "A land-cover model file for your imagery from polygons or points with a class."

    def tags(self) -> list[str]:
        return [
            "land cover",
            "classification",
            "training",
            "supervised",
            "random forest",
            "onnx",
            "s5geo",
        ]

    def initAlgorithm(self, configuration: dict[str, Any] | None = None) -> None:
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.INPUT, "Raster layers", layerType=QgsProcessing.TypeRaster
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.LABELS,
                "Training polygons or points",
                types=[QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint],
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.CLASS_FIELD,
                "Class field",
                parentLayerParameterName=self.LABELS,
                type=QgsProcessingParameterField.Any,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.TIER, "Tier", options=[label for label, _ in TIERS], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MINUTES,
                "Time cap (minutes)",
                type=QgsProcessingParameterNumber.Double,
                optional=True,
                minValue=0.1,
            )
        )
        bands = QgsProcessingParameterString(
            self.BANDS,
            "Bands for the network's features (three band numbers as red, green, blue, e.g. 4,3,2)",
            optional=True,
        )
        bands.setFlags(bands.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(bands)
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT, "Model file", fileFilter="ONNX models (*.onnx)"
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_MAP,
                "Land cover of the first raster",
                optional=True,
                createByDefault=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(
                self.OUTPUT_CONFIDENCE,
                "Confidence of that map (low where more polygons would help)",
                optional=True,
                createByDefault=False,
            )
        )
        self.addOutput(QgsProcessingOutputFile(self.REPORT, "Validation report (JSON)"))
        self.addOutput(
            QgsProcessingOutputNumber(
                self.MIOU, "Cross-validated mIoU (%; empty when not measured)"
            )
        )

    def prepareAlgorithm(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> bool:
        # Runs in the main thread: the only safe place to look at a project layer's style.
        self._labels = self._plan_labels(parameters, context)
        return True

    def _process(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise ReadableError("Choose at least one raster layer.")
        scenes = [raster_file(layer) for layer in layers]
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        check_suffix(out, (".onnx",), "The model file is an ONNX file")
        map_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_MAP, context) or None
        conf_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_CONFIDENCE, context) or None
        for path in (map_out, conf_out):
            if path:
                check_suffix(path, (".tif", ".tiff"), "The map rasters are GeoTIFFs")
        if conf_out and not map_out:
            raise ReadableError(
                f"'{self.label_of(self.OUTPUT_CONFIDENCE)}' comes with the map: "
                f"also set '{self.label_of(self.OUTPUT_MAP)}'."
            )
        fields = self.parameterAsFields(parameters, self.CLASS_FIELD, context)
        tier = TIERS[self.parameterAsEnum(parameters, self.TIER, context)][1]
        minutes = None
        if given(parameters, self.MINUTES):
            minutes = self.parameterAsDouble(parameters, self.MINUTES, context)
        bands = self._bands(self.parameterAsString(parameters, self.BANDS, context))

        plan = self._labels or self._plan_labels(parameters, context)
        labels_path, labels_layer = plan.path, plan.layer
        if labels_path is None:
            labels_path, labels_layer = self._copy_labels(parameters, context, feedback, plan)
        feedback.pushInfo(f"Scenes: {', '.join(scenes)}")
        feedback.pushInfo(
            f"Labels: {labels_path}" + (f" (layer {labels_layer})" if labels_layer else "")
        )
        job = {
            "task": "fit",
            "scenes": scenes,
            "labels": labels_path,
            "out": out,
            "kwargs": {
                "class_field": fields[0] if fields else None,
                "layer": labels_layer,
                "quality": tier,
                "minutes": minutes,
                "bands": bands,
            },
            "map": {"out_raster": map_out, "confidence": conf_out} if map_out else None,
        }
        done = self.run_child(job, feedback)
        self._report(done, feedback)

        self.style_on_load(context, map_out)
        miou = done["miou"]
        return {
            self.OUTPUT: out,
            self.OUTPUT_MAP: map_out,
            self.OUTPUT_CONFIDENCE: conf_out,
            self.REPORT: done["report"],
            self.MIOU: None if miou is None else round(100.0 * miou, 2),
        }

    def _plan_labels(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> _LabelsPlan:
        """Read the labels' file directly when s5geo can, or plan a copy with the layer's style.

        A layer narrowed in QGIS (selected features, a feature limit, a subset filter), a layer
        without a file (memory, database, web service), a format s5geo does not read, or a layer
        styled by category in QGIS whose file has no saved style is copied.
        """
        value = parameters.get(self.LABELS)
        narrowed = False
        if isinstance(value, QgsProcessingFeatureSourceDefinition):
            narrowed = value.selectedFeaturesOnly or value.featureLimit != -1
            # QGIS 3.22's parameterAsVectorLayer does not look inside a source definition.
            name = value.source.valueAsString(context.expressionContext())[0]
            parameters = {**parameters, self.LABELS: name}
        layer = self.parameterAsVectorLayer(parameters, self.LABELS, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(
                f"'{self.label_of(self.LABELS)}': the layer is missing or cannot be read."
            )
        style = _style_qml(layer)
        copy = _LabelsPlan(name=layer.name(), path=None, layer=None, style_qml=style)
        if narrowed or layer.providerType() != "ogr" or layer.subsetString():
            return copy
        parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
        path = parts.get("path") or ""
        if not os.path.isfile(path) or not path.lower().endswith(READABLE_LABELS):
            return copy
        if _categorized(layer) and not _has_saved_style(layer, path):
            return copy  # s5geo reads colours from a saved style only: keep the ones shown here
        return _LabelsPlan(
            name=layer.name(), path=path, layer=parts.get("layerName") or None, style_qml=style
        )

    def _copy_labels(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
        plan: _LabelsPlan,
    ) -> tuple[str, str]:
        """Write the features Processing hands over (a selection, a memory layer...) to a temporary
        GeoPackage, with the layer's style beside it (s5geo takes the class colours from it)."""
        source = self.parameterAsSource(parameters, self.LABELS, context)
        if source is None:
            raise ReadableError(f"'{self.label_of(self.LABELS)}' cannot be read.")
        folder = Path(QgsProcessingUtils.tempFolder())
        path = QgsProcessingUtils.generateTempFilename("labels.gpkg")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        options.layerName = "labels"
        options.datasourceOptions = ["VERSION=1.2"]
        writer = QgsVectorFileWriter.create(
            path,
            source.fields(),
            source.wkbType(),
            source.sourceCrs(),
            context.transformContext(),
            options,
        )
        if writer.hasError() != QgsVectorFileWriter.NoError:
            raise ReadableError(
                f"Cannot copy '{plan.name}' to {folder} for s5geo: {writer.errorMessage()}"
            )
        request = QgsFeatureRequest()
        for feature in source.getFeatures(request):
            if feedback.isCanceled():
                break
            if not writer.addFeature(QgsFeature(feature), QgsFeatureSink.FastInsert):
                raise ReadableError(f"Cannot copy '{plan.name}' for s5geo: {writer.errorMessage()}")
        del writer  # closes the file
        if feedback.isCanceled():
            Path(path).unlink(missing_ok=True)
            raise QgsProcessingException("Cancelled: no output was written.")
        if plan.style_qml:
            Path(path).with_suffix(".qml").write_text(plan.style_qml, encoding="utf-8")
        return path, "labels"

    def _bands(self, text: str) -> list[int] | None:
        """The BANDS text as band numbers (None when empty)."""
        if not text.strip():
            return None
        try:
            return [int(b) for b in re.split(r"[\s,;]+", text.strip())]
        except ValueError:
            raise ReadableError(
                f"'{self.label_of(self.BANDS)}': give three band numbers such as 4,3,2, "
                f"not {text!r}."
            ) from None

    def _report(self, done: dict[str, Any], feedback: QgsProcessingFeedback) -> None:
        """The validation scores and what was written, in the Processing log."""
        feedback.pushInfo(
            f"Fitted on {done['pixels']} labelled pixels from {done['geometries']} features "
            f"in {done['seconds']:.1f} s."
        )
        if done["miou"] is not None:
            feedback.pushInfo(
                f"Spatial cross-validation: accuracy {100 * done['accuracy']:.1f} %, "
                f"mIoU {100 * done['miou']:.1f} %."
            )
            for row in done["scores"]:
                iou = "n/a" if row.get("iou") is None else f"{row['iou']:.1f} %"
                acc = "n/a" if row.get("accuracy") is None else f"{row['accuracy']:.1f} %"
                feedback.pushInfo(f"  {row['class_name']}: accuracy {acc}, IoU {iou}")
        feedback.pushInfo(f"Model: {done['model']}")
        feedback.pushInfo(f"Report: {done['report']}")
        if done["confusion_png"]:
            feedback.pushInfo(f"Confusion matrix: {done['confusion_png']}")

    def translate(self, message: str) -> str:
        """s5geo's message with its argument names replaced by this algorithm's parameters.

        fit_model names its arguments (class_field, quality, minutes, bands, layer) and the
        labels' file; the analyst knows the parameters' descriptions and the layer's name.
        """
        if self._labels is not None:
            files = {Path(self._labels.path or "labels.gpkg").name, "labels.gpkg"}
            for name in files:
                message = re.sub(
                    rf"^labels {re.escape(name)}\b", f"Layer '{self._labels.name}'", message
                )
        field = self.label_of(self.CLASS_FIELD)
        tier = self.label_of(self.TIER)
        rules = (
            (r"\bclass_field\b", f"the '{field}' parameter"),
            (r"^quality must", f"'{tier}' must"),
            (r"^quality '", f"{tier} '"),
            (r"\buse quality '", "choose the tier '"),
            (r"^minutes must", f"'{self.label_of(self.MINUTES)}' must"),
            (r"^bands must", f"'{self.label_of(self.BANDS)}' must"),
            (r"choose one with layer$", "save the layer you mean on its own"),
            # "labels X have/hold" became "Layer 'name' ...": one layer, singular verb.
            (r"^(Layer '[^']*') have\b", r"\1 has"),
            (r"^(Layer '[^']*') hold\b", r"\1 holds"),
        )
        for pattern, replacement in rules:
            message = re.sub(pattern, replacement, message)
        return message[:1].upper() + message[1:]


def _style_qml(layer: QgsVectorLayer) -> str | None:
    """The layer's current style as QML text (its categorized colours), or None."""
    from qgis.PyQt.QtXml import QDomDocument

    document = QDomDocument()
    error = layer.exportNamedStyle(document)
    return document.toString() if not error else None


def _categorized(layer: QgsVectorLayer) -> bool:
    renderer = layer.renderer()
    return renderer is not None and renderer.type() == "categorizedSymbol"


def _has_saved_style(layer: QgsVectorLayer, path: str) -> bool:
    """Whether the file carries a style s5geo reads (a ``.qml`` beside it, a GeoPackage's
    ``layer_styles`` table)."""
    if Path(path).with_suffix(".qml").exists():
        return True
    if not path.lower().endswith(".gpkg"):
        return False
    return layer.listStylesInDatabase()[0] > 0
