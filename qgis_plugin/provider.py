"""The Processing provider "s5geo", home of the "Segment land cover" and "Train land-cover model
from polygons" algorithms."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithm import SegmentLandCover
from .base import ICON
from .fit_algorithm import FitLandCoverModel


class S5geoProvider(QgsProcessingProvider):
    """Lists s5geo's algorithms in the toolbox, the modeler and ``qgis_process``.

    Outputs are limited to the formats s5geo writes (GeoTIFF, GeoPackage), so Processing never
    offers a format the algorithm would refuse.
    """

    def id(self) -> str:
        return "s5geo"

    def name(self) -> str:
        return "s5geo"

    def longName(self) -> str:
        return "s5geo land cover"

    def icon(self) -> QIcon:
        return QIcon(ICON)

    def loadAlgorithms(self) -> None:
        self.addAlgorithm(SegmentLandCover())
        self.addAlgorithm(FitLandCoverModel())

    def supportedOutputRasterLayerExtensions(self) -> list[str]:
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:
        return "tif"

    def supportedOutputVectorLayerExtensions(self) -> list[str]:
        return ["gpkg"]

    def defaultVectorFileExtension(self, hasGeometry: bool = True) -> str:
        return "gpkg"
