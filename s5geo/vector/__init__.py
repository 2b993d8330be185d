"""Vectorization: class rasters to GeoPackage polygons, seam-free across strips, styled for QGIS.

Holds strip polygonizing (``shapes``), the minimum mapping unit (``sieve``), the seam-free merge
across strips (``merge``) with out-of-core assembly of huge regions (``arcs``, ``spill``,
``streamed``), topology-preserving simplification (``simplify``), validity (``validity``), ground
areas (``area``), the entry point (``polygonize``) and the same fed with rows while they are
produced (``rowfed``, what ``s5geo predict`` uses). Deployment install, no torch.

May import: ``s5geo.io`` and ``s5geo.errors``.
"""

from s5geo.vector.polygonize import VectorResult, polygonize_raster

__all__ = ["VectorResult", "polygonize_raster"]
