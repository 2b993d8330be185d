"""Large areas: many scenes (local, remote or from STAC) into one run folder, on Dask, resumable.

:func:`predict_many` segments each scene with :func:`s5geo.segment.segment_scene` (the work unit
is one scene), in this process or on a Dask distributed cluster, and writes a class COG per scene,
a mosaic VRT of them, a run index GeoPackage layer and a manifest that lets the same command
resume, and with ``layer`` one polygon layer for the run, seam-free across the borders of
abutting scenes (:func:`write_run_layer`; docs/LARGE_AREAS.md). Deployment install; Dask is
imported only for ``workers`` or ``scheduler``.

May import: ``s5geo.segment``, ``s5geo.infer``, ``s5geo.vector``, ``s5geo.io``, ``s5geo.errors``.
"""

from s5geo.largearea.layer import LayerResult, write_run_layer
from s5geo.largearea.run import RunOptions, RunResult, SceneOutcome, predict_many

__all__ = [
    "LayerResult",
    "RunOptions",
    "RunResult",
    "SceneOutcome",
    "predict_many",
    "write_run_layer",
]
