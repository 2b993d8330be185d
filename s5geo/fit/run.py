"""``fit_model``: a model for the analyst's own area from a few labelled polygons or points.

The quick tier: per-pixel features (multi-scale filters on every band plus the bundled network's
decoder channels, :mod:`s5geo.fit.features`) and a random forest fitted on the labelled pixels,
folded into one ONNX model file. Next to the model it writes a report: spatial cross-validation
scores (JSON and a confusion-matrix PNG) and, per scene, the map with its confidence raster, whose
low values show where the next polygons would help most.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from s5geo import __version__
from s5geo.errors import Cancelled, UserError
from s5geo.fit.classifier import Validation, cross_validate, forest_onnx, make_forest
from s5geo.fit.features import FeatureSpec, features_model
from s5geo.fit.graph import fitted_model, set_metadata
from s5geo.fit.labels import Labels, read_labels
from s5geo.fit.reference import reference_confidence
from s5geo.fit.report import confusion_png, per_class, write_json
from s5geo.fit.samples import collect_samples
from s5geo.fit.scaling import scene_scaling
from s5geo.infer import Progress, ProgressFn, load_model, predict_into
from s5geo.infer.runtime import default_model_path
from s5geo.io.atomic import atomic_outputs, check_writable
from s5geo.io.scene import open_scene
from s5geo.modelfile import ModelInfo, info_from_metadata

QUALITIES = ("quick", "full")
# Share of the whole job each stage reports as done (the maps take the most time; their progress
# comes from the prediction, as stage "predict").
STAGES = {"features": (0.0, 0.35), "validate": (0.35, 0.5), "fit": (0.5, 0.55), "map": (0.55, 1.0)}


@dataclass
class FitResult:
    """What a fit wrote and how well it validated."""

    model: Path
    report: Path
    confusion_png: Path | None
    maps: list[Path]
    confidences: list[Path]
    validation: Validation | None
    class_names: dict[int, str]
    pixels: int
    geometries: int
    outside: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)


class _Reporter:
    """Turns stage steps into :class:`Progress` reports; a False return cancels.

    Without maps the stages before them fill the whole bar (``end`` is where they stop).
    """

    def __init__(self, progress: ProgressFn | None, maps: bool) -> None:
        self.progress = progress
        self.end = 1.0 if maps else STAGES["map"][0]

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        lo, hi = STAGES[stage]
        report = Progress(
            stage=stage,
            done=done,
            total=total,
            fraction=(lo + (hi - lo) * done / max(total, 1)) / self.end,
            pixels_per_second=0.0,
            message=f"{stage} {done}/{total}",
        )
        if self.progress(report) is False:
            raise Cancelled()


def _outputs(out: Path, scenes: Sequence[Path]) -> tuple[Path, Path, list[Path], list[Path]]:
    """The report, confusion figure, map and confidence paths beside ``out``."""
    stem = out.with_suffix("")
    maps = [Path(f"{stem}_{Path(s).stem}.tif") for s in scenes]
    conf = [Path(f"{stem}_{Path(s).stem}_confidence.tif") for s in scenes]
    return Path(f"{stem}.fit.json"), Path(f"{stem}.confusion.png"), maps, conf


def fit_model(
    scenes: Sequence[str | Path],
    labels: str | Path | Labels,
    out: str | Path,
    *,
    class_field: str | None = None,
    layer: str | None = None,
    quality: str = "quick",
    minutes: float | None = None,
    bands: Sequence[int] | None = None,
    encoder: bool = True,
    maps: bool = True,
    overwrite: bool = False,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> FitResult:
    """Fit a model file for ``scenes`` from ``labels`` and write it with its report.

    ``minutes`` caps the wall time: stages that would not fit are left out and the report says
    which (the model itself is always written). ``maps=False`` skips the per-scene map and
    confidence rasters. ``encoder=False`` leaves the bundled network's features out (filters only:
    the analysts' baseline, for benchmarks and for imagery too unlike any RGB photo). ``labels``
    is a file, or :class:`~s5geo.fit.labels.Labels` already read. Errors name these parameters;
    nothing is written unless all succeeds.
    """
    start = time.perf_counter()
    out = Path(out)
    if quality not in QUALITIES:
        raise UserError(f"quality must be one of {', '.join(QUALITIES)}, not {quality!r}")
    if quality == "full":
        raise UserError(
            "quality 'full' (semi-supervised training) is not available yet; use quality 'quick'"
        )
    if minutes is not None and minutes <= 0:
        raise UserError(f"minutes must be positive, not {minutes}")
    if out.suffix.lower() != ".onnx":
        raise UserError(f"out must name an .onnx model file, not {out.name}")
    if not scenes:
        raise UserError("name at least one scene")
    deadline = start + 60.0 * minutes if minutes else None
    steps = _Reporter(progress, maps)
    scene_paths = [Path(s) for s in scenes]
    report_path, png_path, map_paths, conf_paths = _outputs(out, scene_paths)
    warnings: list[str] = []
    with atomic_outputs(overwrite) as outputs, ExitStack() as stack:
        for s in scene_paths:
            outputs.protect(s, "scene")
        if not isinstance(labels, Labels):
            outputs.protect(labels, "labels")
        model_tmp = outputs.temp(out)
        report_tmp = outputs.temp(report_path)
        png_tmp = outputs.temp(png_path)
        if maps:  # reserved by the prediction itself; refused now rather than after the work
            for path in (*map_paths, *conf_paths):
                check_writable(path, overwrite)
        lab = (
            labels
            if isinstance(labels, Labels)
            else read_labels(labels, class_field=class_field, layer=layer)
        )
        datasets = [stack.enter_context(open_scene(s)) for s in scene_paths]
        scaling = scene_scaling(datasets, bands)
        # The fitted model is tiled as the bundled one: it contains that network, whose graph
        # takes that tile only, and filters-only models stay interchangeable with it.
        bundled = onnx.load(str(default_model_path()))
        tiling = info_from_metadata(
            {p.key: p.value for p in bundled.metadata_props}, "the bundled model"
        )
        tile = tiling.tile_size
        network = bundled if encoder else None
        spec = FeatureSpec(bands=len(scaling.bands), scaling=scaling, encoder=encoder)
        session = _session(features_model(spec, tile, network))
        samples = collect_samples(
            datasets, lab, session, scaling, tile, seed, lambda d, t: steps("features", d, t)
        )
        del session
        if samples.outside:
            warnings.append(
                f"{samples.outside} of {len(lab.geometries)} label features lie outside every "
                "scene and were not used"
            )
        if samples.partly:
            warnings.append(
                f"{samples.partly} of {len(lab.geometries)} label features cross a scene's edge; "
                "only their pixels inside were used"
            )
        # Forest columns follow the sorted class ids that have pixels (all of them, checked).
        ids = sorted(lab.class_names)
        y = np.searchsorted(ids, samples.y)
        validation = None
        if deadline is None or time.perf_counter() < start + 0.5 * (deadline - start):
            validation = cross_validate(
                samples.x, y, samples.groups, len(ids), seed, lambda d, t: steps("validate", d, t)
            )
            if validation is None:
                warnings.append(
                    "no accuracy estimate: each class needs at least two label features "
                    "(polygons or points) for spatial cross-validation"
                )
        else:
            warnings.append("cross-validation left out to stay within minutes")
        steps("fit", 0, 1)
        forest = make_forest(seed).fit(samples.x, y)
        info = ModelInfo(
            class_names=dict(lab.class_names),
            class_colors=dict(lab.class_colors),
            tile_size=tile,
            overlap_pct=tiling.overlap_pct,
            bands=scaling.bands,
            input_scale=scaling.input_scale,
            mean=(0.0,) * len(scaling.bands),
            std=(1.0,) * len(scaling.bands),
            fill=scaling.mean,
            version=__version__,
            architecture=f"fit:quick:random-forest({'filters+encoder' if encoder else 'filters'})",
            recipe={
                "method": "s5geo fit --quality quick",
                "labels": lab.source,
                "class_field": lab.field,
                "scenes": [s.name for s in scene_paths],
                "pixels": len(y),
                "geometries": len(np.unique(samples.groups)),
                "scaling": scaling.describe(),
                "features": spec.count,
                "cv_miou": None if validation is None else round(validation.miou * 100, 2),
                "cv_confidence": None
                if validation is None
                else round(validation.mean_confidence, 4),
            },
        )
        model = fitted_model(spec, tile, forest_onnx(forest, spec.count), ids, info, network)
        steps("fit", 1, 1)
        info = replace(
            info, reference_confidence=reference_confidence(model, datasets, scaling, tile)
        )
        set_metadata(model, info)
        onnx.save(model, str(model_tmp))
        if validation is not None:
            confusion_png(validation, lab.class_names, lab.class_colors, png_tmp)
        written_maps, written_conf = [], []
        if maps and (deadline is None or time.perf_counter() < deadline):
            fitted = load_model(model_tmp)
            lo, hi = STAGES["map"]
            for i, (s, m, c) in enumerate(zip(scene_paths, map_paths, conf_paths, strict=True)):
                part = (hi - lo) / len(scene_paths)
                span = (lo + i * part, lo + (i + 1) * part)
                predict_into(outputs, s, m, model=fitted, confidence=c, progress=progress,
                             progress_span=span)  # fmt: skip
                written_maps.append(m)
                written_conf.append(c)
        elif maps:
            warnings.append("maps left out to stay within minutes")
        result = FitResult(
            model=out,
            report=report_path,
            confusion_png=png_path if validation is not None else None,
            maps=written_maps,
            confidences=written_conf,
            validation=validation,
            class_names=dict(lab.class_names),
            pixels=len(y),
            geometries=len(np.unique(samples.groups)),
            outside=samples.outside,
            seconds=time.perf_counter() - start,
            warnings=warnings,
            scores=per_class(validation, lab.class_names),
        )
        write_json(report_tmp, _report(result, info))
    return result


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _report(result: FitResult, info: ModelInfo) -> dict[str, Any]:
    v = result.validation
    return {
        "model": str(result.model),
        "quality": "quick",
        "s5geo_version": __version__,
        "seconds": round(result.seconds, 1),
        "labelled_pixels": result.pixels,
        "label_features": result.geometries,
        "features_outside_scenes": result.outside,
        "validation": None
        if v is None
        else {
            "method": f"spatial {v.folds}-fold cross-validation, folds by label feature",
            "accuracy": round(v.accuracy * 100, 2),
            "miou": round(v.miou * 100, 2),
            "mean_confidence": round(v.mean_confidence, 4),
            "confusion": v.confusion.tolist(),
        },
        "classes": result.scores,
        "class_colors": {str(k): info.color(k) for k in sorted(info.class_names)},
        "maps": [str(p) for p in result.maps],
        "confidence": [str(p) for p in result.confidences],
        "warnings": result.warnings,
    }
