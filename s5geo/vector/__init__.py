"""Vectorization: class rasters to GeoPackage polygons, seam-free across strips, styled for QGIS."""

from s5geo.vector.polygonize import VectorResult, polygonize_raster

__all__ = ["VectorResult", "polygonize_raster"]
