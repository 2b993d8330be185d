"""The Processing algorithm "Segment land cover": a raster layer in, a land-cover raster and
polygon layer out.

It is a thin layer over :func:`s5geo.segment.segment_scene`, run in a child process like every
s5geo algorithm (base.py): parameters become arguments, the child's progress drives the Processing
feedback, Cancel stops the run and leaves no output, and s5geo's user errors become
``QgsProcessingException`` messages that name this algorithm's fields. Being an ordinary
Processing algorithm, it runs as a background task and works in the toolbox, the graphical
modeler, batch mode and ``qgis_process``.
"""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .backend import option_defaults, option_limits, raster_file
from .base import S5geoAlgorithm, check_suffix, given

# Execution-provider choices: label shown to the analyst, providers passed to s5geo (None = auto).
PROVIDER_CHOICES: tuple[tuple[str, list[str] | None], ...] = (
    ("Automatic (TensorRT, then CUDA, then CPU)", None),
    ("CPU only", ["CPUExecutionProvider"]),
)

# The prediction options behind this algorithm's number fields: library parameter -> (field,
# label, what the field takes, whether it takes integers). Errors name a parameter by its label.
OPTION_FIELDS: dict[str, tuple[str, str, str, bool]] = {
    "min_area_m2": ("MIN_AREA", "Minimum mapping unit", "m²", False),
    "simplify_m": ("SIMPLIFY", "Polygon simplification tolerance", "m", False),
    "tile_size": ("TILE_SIZE", "Tile size", "pixels; empty for the model's", True),
    "overlap": ("OVERLAP", "Tile overlap", "pixels; empty for the model's", True),
    "batch_size": ("BATCH_SIZE", "Batch size", "tiles per inference call", True),
}
FIELD_NAMES = {
    **{param: label for param, (_, label, _, _) in OPTION_FIELDS.items()},
    "bounds": "Processing extent",
    "out_vector": "Land-cover polygons",
}

HELP = """<p>Classifies every pixel of a raster layer into land-cover classes with an ONNX model
and writes a <b>land-cover raster</b> (Cloud-Optimized GeoTIFF, one class id per pixel, nodata
255) and a <b>polygon layer</b> (GeoPackage with class_id, class_name and area_m2). Both open
styled by class, with the model's colours and names.</p>
<p><b>Model</b>: leave empty for the model bundled with s5geo, or choose an ONNX file carrying s5geo
(or Deepness-style) metadata. The layer must have the bands the model reads
(Plugins &gt; s5geo &gt; Model info tells which).</p>
<p><b>Processing extent</b>: restricts the work to an area; empty means the whole layer.</p>
<p><b>Minimum mapping unit</b> removes patches smaller than this area (m²) by merging them into
their neighbours; <b>simplification</b> smooths polygon outlines (tolerance in metres) while
neighbouring polygons keep shared edges.</p>
<p>Tile size and overlap default to the model's own settings; a smaller batch uses less
memory.</p>"""


class SegmentLandCover(S5geoAlgorithm):
    """s5geo:segmentlandcover."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    EXTENT = "EXTENT"
    MIN_AREA = "MIN_AREA"
    SIMPLIFY = "SIMPLIFY"
    TILE_SIZE = "TILE_SIZE"
    OVERLAP = "OVERLAP"
    BATCH_SIZE = "BATCH_SIZE"
    EXECUTION = "EXECUTION"
    OUTPUT_RASTER = "OUTPUT_RASTER"
    OUTPUT_VECTOR = "OUTPUT_VECTOR"

    def name(self) -> str:
        return "segmentlandcover"

    def displayName(self) -> str:
        return "Segment land cover"

    def shortHelpString(self) -> str:
        return HELP

    def shortDescription(self) -> str:
        return "Land-cover raster and polygons from imagery with an ONNX model."

    def tags(self) -> list[str]:
        return ["land cover", "segmentation", "classification", "onnx", "deep learning", "s5geo"]

    def initAlgorithm(self, configuration: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, "Input raster layer"))
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL,
                "Model (ONNX file; empty for the bundled default model)",
                behavior=QgsProcessingParameterFile.File,
                extension="onnx",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterExtent(self.EXTENT, "Processing extent", optional=True)
        )
        for param in ("min_area_m2", "simplify_m"):
            self.addParameter(_option_field(param))
        advanced = [
            *(_option_field(param) for param in ("tile_size", "overlap", "batch_size")),
            QgsProcessingParameterEnum(
                self.EXECUTION,
                "Execution provider",
                options=[label for label, _ in PROVIDER_CHOICES],
                defaultValue=0,
            ),
        ]
        for param in advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(param)
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT_RASTER, "Land cover"))
        self.addParameter(
            QgsProcessingParameterVectorDestination(
                self.OUTPUT_VECTOR,
                "Land-cover polygons",
                type=QgsProcessing.TypeVectorPolygon,
                optional=True,
                createByDefault=True,
            )
        )

    def _process(
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        scene = raster_file(layer)
        model = self.parameterAsFile(parameters, self.MODEL, context) or None
        raster_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_RASTER, context)
        vector_out = self.parameterAsOutputLayer(parameters, self.OUTPUT_VECTOR, context) or None
        check_suffix(raster_out, (".tif", ".tiff"), "The land-cover raster is a GeoTIFF")
        if vector_out:
            check_suffix(vector_out, (".gpkg",), "The polygons are written as a GeoPackage")

        bounds = None
        if given(parameters, self.EXTENT):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            bounds = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        options: dict[str, Any] = {}
        for param, (field, _, _, integer) in OPTION_FIELDS.items():
            if given(parameters, field):
                read = self.parameterAsInt if integer else self.parameterAsDouble
                options[param] = read(parameters, field, context)
        providers = PROVIDER_CHOICES[self.parameterAsEnum(parameters, self.EXECUTION, context)][1]
        if providers is not None:
            options["providers"] = providers

        feedback.pushInfo(f"Scene: {scene}")
        feedback.pushInfo(f"Model: {model or 'bundled default'}")
        kwargs = {
            "out_raster": raster_out,
            "out_vector": vector_out,
            "model": model,
            "bounds": bounds,
            "options": options,
            "overwrite": True,  # Processing asks before overwriting a file the analyst picked
        }
        done = self.run_child({"scene": scene, "kwargs": kwargs, "names": FIELD_NAMES}, feedback)
        feedback.pushInfo(
            f"Segmented {done['width']} x {done['height']} pixels in {done['seconds']:.1f} s"
            f" on {done['provider']} ({done['tiles']} tiles of {done['tile_size']} px)."
        )

        self.style_on_load(context, raster_out, vector_out)
        return {self.OUTPUT_RASTER: raster_out, self.OUTPUT_VECTOR: vector_out}


def _option_field(param: str) -> QgsProcessingParameterNumber:
    """The number field of the prediction option ``param``, with s5geo's default and lower bound
    (none where s5geo cannot be imported: a run then says what is missing)."""
    field, label, takes, integer = OPTION_FIELDS[param]
    default = option_defaults().get(param)
    limits = option_limits().get(param)
    bounds = {"minValue": limits.low} if limits is not None else {}
    kind = QgsProcessingParameterNumber.Integer if integer else QgsProcessingParameterNumber.Double
    return QgsProcessingParameterNumber(
        field,
        f"{label} ({takes})",
        type=kind,
        defaultValue=default,
        optional=default is None,
        **bounds,
    )
