"""Putting s5geo's outputs into a QGIS project, styled by class.

s5geo writes the styles itself (a ``.qml`` sidecar next to the raster, a default style in the
GeoPackage's ``layer_styles`` table), so any QGIS opening the files sees the same colours and
class names. The plugin only makes sure those default styles are applied, names the layers, and
zooms the map to them.
"""

from __future__ import annotations

from typing import ClassVar

from qgis.core import (
    QgsCoordinateTransform,
    QgsMapLayer,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)

RASTER_SUFFIX = "land cover"
VECTOR_SUFFIX = "land-cover polygons"


def apply_class_style(layer: QgsMapLayer) -> bool:
    """(Re)apply the class style s5geo stored with the layer's file; True when one was found."""
    _message, ok = layer.loadDefaultStyle()
    layer.triggerRepaint()
    return bool(ok)


def load_outputs(
    project: QgsProject, raster_path: str, vector_path: str | None, base_name: str
) -> list[QgsMapLayer]:
    """Add the land-cover raster and (when written) the polygon layer to ``project``, styled.

    Polygons go above the raster so both stay visible where the polygons are drawn as outlines.
    """
    raster = QgsRasterLayer(raster_path, f"{base_name} {RASTER_SUFFIX}", "gdal")
    layers: list[QgsMapLayer] = [raster]
    if vector_path:
        layers.append(QgsVectorLayer(vector_path, f"{base_name} {VECTOR_SUFFIX}", "ogr"))
    for layer in layers:
        if not layer.isValid():
            raise OSError(f"QGIS cannot open the output {layer.source()}")
        apply_class_style(layer)
    for layer in layers:
        project.addMapLayer(layer)
    return layers


def combined_extent(layers: list[QgsMapLayer], project: QgsProject) -> QgsRectangle:
    """The extent covering ``layers``, in the project's CRS (what the map canvas shows)."""
    extent = QgsRectangle()
    extent.setMinimal()
    for layer in layers:
        transform = QgsCoordinateTransform(layer.crs(), project.crs(), project)
        extent.combineExtentWith(transform.transformBoundingBox(layer.extent()))
    return extent


class ClassStylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies the class style when Processing loads an output into the project.

    Processing keeps only a C++ pointer to a post-processor, so Python must hold the object until
    Processing has used it: :meth:`create` keeps it in a class-level registry, and
    :meth:`postProcessLayer` releases it.
    """

    _alive: ClassVar[dict[int, ClassStylePostProcessor]] = {}

    @classmethod
    def create(cls) -> ClassStylePostProcessor:
        processor = cls()
        cls._alive[id(processor)] = processor
        return processor

    def postProcessLayer(
        self, layer: QgsMapLayer, context: QgsProcessingContext, feedback: QgsProcessingFeedback
    ) -> None:
        if isinstance(layer, (QgsRasterLayer, QgsVectorLayer)):
            apply_class_style(layer)
        type(self)._alive.pop(id(self), None)
