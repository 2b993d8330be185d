"""The main job in one call: a scene in, a land-cover raster and polygon layer out, atomically.

This is what ``s5geo predict`` and the QGIS plugin call. Both outputs are written under temporary
names and renamed together at the end, so a failure, Ctrl-C or Cancel leaves neither behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from s5geo.errors import Cancelled, ParameterError
from s5geo.infer import Model, PredictResult, Progress, ProgressFn, load_model, predict_into
from s5geo.io.atomic import atomic_outputs
from s5geo.io.raster import GridSpec
from s5geo.io.scene import open_scene, refuse_gcp_only
from s5geo.options import PredictOptions

if TYPE_CHECKING:
    from s5geo.vector import VectorResult
    from s5geo.vector.rowfed import RowFedPolygonizer

# Share of the overall progress bar given to prediction when polygons are made too: they are made
# beside it, and the rest of the bar is what is left after the last class row (the regions that
# end in the last strip, the layer's index and style).
PREDICT_SHARE = 0.95


@dataclass
class SegmentResult:
    """What :func:`segment_scene` did: the prediction, the polygon layer (None for a raster-only
    run) and the seconds the whole job took."""

    prediction: PredictResult
    vector: VectorResult | None
    out_vector: Path | None
    seconds: float


def check_polygon_crs(scene: str | Path) -> None:
    """Refuse polygons (``out_vector``) for a scene without a CRS before any work: areas in m²
    need one."""
    with open_scene(scene) as ds:
        refuse_gcp_only(ds, Path(scene).name)  # its own message: "no CRS" would mislead
        if ds.crs is None:
            raise ParameterError(
                "{name} has no CRS, so its polygons cannot have areas in m²: write the raster "
                "only (without {out_vector}) or assign the CRS first "
                "(gdal_edit.py -a_srs EPSG:...)",
                name=Path(scene).name,
            )


def segment_scene(
    scene: str | Path,
    *,
    out_raster: str | Path,
    out_vector: str | Path | None = None,
    model: Model | str | Path | None = None,
    options: PredictOptions | None = None,
    confidence: str | Path | None = None,
    quicklook: str | Path | None = None,
    bounds: Sequence[float] | None = None,
    overwrite: bool = False,
    progress: ProgressFn | None = None,
) -> SegmentResult:
    """Predict land cover over ``scene`` and, with ``out_vector``, polygonize it into a GeoPackage.

    The polygons are made from the class rows while inference runs, and are those
    :func:`s5geo.vector.polygonize_raster` makes of the class raster written. All outputs are
    written under temporary names and renamed together at the end, so an error, Ctrl-C or cancel
    leaves none behind.

    :param scene: The image: a path or any GDAL dataset name (``/vsizip/...``, a URL, a VRT).
    :param out_raster: The class raster to write (``.tif``, a COG; see
        :func:`s5geo.infer.predict_scene`).
    :param out_vector: The polygon layer to write (``.gpkg``: class_id, class_name, area_m2);
        None writes the raster only. Needs a scene with a CRS.
    :param model: An ONNX model file or a loaded :class:`s5geo.infer.Model`; None takes the
        bundled model.
    :param options: How the scene is tiled, run and polygonized; None takes the defaults.
    :param confidence: Also write a confidence COG here (``.tif``).
    :param quicklook: Also write a PNG quicklook of the map here (``.png``).
    :param bounds: Process only ``(xmin, ymin, xmax, ymax)`` in the scene's CRS; None processes
        the whole scene.
    :param overwrite: Replace existing outputs instead of refusing them.
    :param progress: Called with :class:`s5geo.infer.Progress` reports (stage ``predict``, then
        ``polygonize``); returning False cancels, with no output left behind.
    :returns: The prediction's :class:`s5geo.infer.PredictResult`, the polygon layer's summary
        (None without ``out_vector``) and the seconds the whole job took.
    :raises s5geo.errors.ParameterError: For an option outside its valid range, or polygons
        asked of a scene without a CRS.
    :raises s5geo.errors.UserError: For other inputs that cannot work.
    :raises s5geo.errors.Cancelled: When ``progress`` returns False.
    """
    opts = options or PredictOptions()
    start = time.perf_counter()
    m = model if isinstance(model, Model) else load_model(model, opts.providers)
    share = PREDICT_SHARE if out_vector is not None else 1.0
    if out_vector is not None:
        check_polygon_crs(scene)
    with atomic_outputs(overwrite) as outputs:
        outputs.protect(scene, "scene")
        vector_tmp = outputs.temp(out_vector) if out_vector is not None else None
        polygons: RowFedPolygonizer | None = None
        vstart = start

        def rows_done(done: int, total: int, fraction: float | None = None) -> None:
            """Progress of the polygons once the last class row is in (calling thread).

            The fraction stays at prediction's end until the layer is written (``fraction``
            1.0): the rows are nearly all polygonized by then (what is left is the regions that
            end in the last strip), and prediction reports once more, at that fraction.
            """
            if progress is None:
                return
            elapsed = time.perf_counter() - vstart
            report = Progress(
                stage="polygonize",
                done=done,
                total=total,
                fraction=share if fraction is None else fraction,
                pixels_per_second=done * (polygons.width if polygons else 0) / max(elapsed, 1e-9),
                message=f"row {done}/{total}",
            )
            if progress(report) is False:
                raise Cancelled()

        def polygonize_rows(grid: GridSpec) -> Callable[[int, np.ndarray], None]:
            """The polygonizer of the class rows, started once the grid is known."""
            nonlocal polygons
            # Imported here: a raster-only run needs none of the vector modules.
            from s5geo.vector.area import GroundMetrics
            from s5geo.vector.rowfed import RowFedPolygonizer

            assert vector_tmp is not None and grid.crs is not None  # check_polygon_crs
            info = m.info
            polygons = fed = RowFedPolygonizer(
                vector_tmp,
                width=grid.width,
                height=grid.height,
                metrics=GroundMetrics.of(grid.crs, grid.transform),
                crs_wkt=grid.crs.to_wkt(),
                class_names=dict(info.class_names),
                class_colors={k: info.color(k) for k in info.class_names},
                min_area_m2=opts.min_area_m2,
                simplify_m=opts.simplify_m,
            )

            def put(row: int, classes: np.ndarray) -> None:
                nonlocal vstart
                fed.put(row, classes)
                if row + len(classes) == grid.height:
                    # The polygons are finished before the COG copy starts: the regions that end
                    # in the last strip (the largest ones, assembled then) and the copy each
                    # need memory that grows with the scene's width; one after the other, their
                    # peaks do not add up.
                    vstart = time.perf_counter()
                    with outputs.writing(vector_tmp):
                        fed.finish(progress=rows_done)

            return put

        try:
            pred = predict_into(
                outputs,
                scene,
                out_raster,
                model=m,
                options=opts,
                confidence=confidence,
                quicklook=quicklook,
                bounds=bounds,
                progress=progress,
                progress_span=(0.0, share),
                class_rows=polygonize_rows if vector_tmp is not None else None,
            )
            vector = None
            if polygons is not None and out_vector is not None:
                # SQLite's and the spill file's errors name no file: this says which output
                # failed.
                with outputs.writing(out_vector):
                    vector = polygons.finish(progress=rows_done)
                rows_done(polygons.height, polygons.height, fraction=1.0)
        except BaseException as error:
            # The worker stops writing before the outputs are discarded; its own error, raised
            # again here, is attributed to the GeoPackage.
            if polygons is not None:
                polygons.abort()
                if polygons.failure is error and out_vector is not None:
                    with outputs.writing(out_vector):
                        raise
            raise
    return SegmentResult(
        prediction=pred,
        vector=vector,
        out_vector=Path(out_vector) if out_vector is not None else None,
        seconds=time.perf_counter() - start,
    )
