"""Large areas: many scenes (local, remote or from STAC) into one run folder, on Dask, resumable.

:func:`predict_many` segments each scene in this process or on a Dask distributed cluster: a
scene no larger than a block is one task (:func:`s5geo.segment.segment_scene`), a larger one
runs as blocks of its window rows spread over the workers and is then assembled into the class
COG a single process writes (:mod:`s5geo.largearea.blocks`). It writes a class COG per scene, a
mosaic VRT of them, a run index GeoPackage layer and a manifest that lets the same command
resume block by block, and with ``layer`` one polygon layer for the run, seam-free across the
borders of abutting scenes (:func:`write_run_layer`; docs/LARGE_AREAS.md).
:func:`predict_dataarray` gives the classes of a dask-backed xarray DataArray as a lazy one
(the ``xarray`` extra). Deployment install; Dask is imported only for ``workers`` or
``scheduler``, xarray only by :func:`predict_dataarray`.

May import: ``s5geo.segment``, ``s5geo.infer``, ``s5geo.vector``, ``s5geo.io``, ``s5geo.errors``.
"""

from s5geo.largearea.dataarray import predict_dataarray
from s5geo.largearea.layer import LayerResult, write_run_layer
from s5geo.largearea.run import RunOptions, RunResult, SceneOutcome, predict_many

__all__ = [
    "LayerResult",
    "RunOptions",
    "RunResult",
    "SceneOutcome",
    "predict_dataarray",
    "predict_many",
    "write_run_layer",
]
