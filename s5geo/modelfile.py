"""The model-file contract (docs/architecture.md): an ONNX segmentation model plus JSON metadata.

Reading needs only ONNX Runtime (the deployment install); writing metadata needs the ``onnx``
package (training/export side), which is imported where it is used.

The metadata keys follow the convention of the Deepness QGIS plugin and GeoDeep, so s5geo models
also run there; s5geo's own keys are prefixed ``s5geo.``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.errors import UserError

REQUIRED_KEYS = (
    "model_type",
    "class_names",
    "tiles_size",
    "standardization_mean",
    "standardization_std",
    "s5geo.bands",
    "s5geo.input_scale",
)

# The class value of nodata pixels in every class raster s5geo writes; class ids are 0..254.
NODATA = 255

# Tile overlap (% of the tile) of a model whose metadata names none: files made for other tools
# (Deepness, GeoDeep) may leave ``tiles_overlap`` out, and one value for reading and for a
# ModelInfo built in code keeps such a model tiled the same wherever it is opened.
DEFAULT_OVERLAP_PCT = 15.0

# Colours used when a model names no colours of its own (a qualitative palette, readable on maps).
DEFAULT_PALETTE = (
    "#E6194B", "#3CB44B", "#FFE119", "#4363D8", "#F58231", "#911EB4", "#46F0F0", "#F032E6",
    "#BCF60C", "#FABEBE", "#008080", "#E6BEFF", "#9A6324", "#FFFAC8", "#800000", "#AAFFC3",
)  # fmt: skip


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself: classes, bands, normalisation and tiling.

    ``resolution_cm`` is the ground sample distance the model was trained at (0 when unknown:
    scenes are then used at their native resolution, and the file has no ``resolution`` key:
    Deepness divides by it, so a 0 there fails its processing with a division by zero).
    """

    class_names: dict[int, str]
    tile_size: int
    bands: tuple[int, ...]
    input_scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resolution_cm: float = 0.0
    overlap_pct: float = DEFAULT_OVERLAP_PCT
    class_colors: dict[int, str] = field(default_factory=dict)
    model_type: str = "Segmentor"
    version: str = ""
    architecture: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    # What padding and nodata are fed as, per band, after normalisation: the band mean the network
    # was trained around. None: 0, which is that mean when the metadata standardises; a file with
    # its standardisation in the graph (s5geo.export.standardize) needs the mean itself.
    fill: tuple[float, ...] | None = None
    # Mean highest class probability on imagery of the model's own kind (s5geo.infer.familiarity):
    # a scene far below it gets a warning. None: the file records none, nothing is checked.
    reference_confidence: float | None = None

    def __post_init__(self) -> None:
        n = len(self.bands)
        if self.fill is not None and len(self.fill) != n:
            raise UserError(f"model metadata has {n} bands but {len(self.fill)} s5geo.fill values")
        if n == 0:
            raise UserError("model metadata 's5geo.bands' is empty")
        if any(b < 1 for b in self.bands):
            raise UserError("model metadata 's5geo.bands' must hold 1-based band indices")
        if len(self.mean) != n or len(self.std) != n:
            raise UserError(
                f"model metadata has {n} bands but {len(self.mean)} means and {len(self.std)} stds"
            )
        if any(s <= 0 for s in self.std) or self.input_scale <= 0:
            raise UserError("model metadata: standardization_std and s5geo.input_scale must be > 0")
        if self.tile_size < 16:
            raise UserError(f"model metadata: tiles_size {self.tile_size} is too small")
        if not self.class_names:
            raise UserError("model metadata 'class_names' is empty")
        if max(self.class_names) >= NODATA or min(self.class_names) < 0:
            raise UserError(
                f"model metadata: class ids must lie in 0..{NODATA - 1} ({NODATA} is nodata)"
            )

    @property
    def fill_values(self) -> np.ndarray:
        """:attr:`fill` per band as float32 [C, 1, 1] (zeros when the file names none)."""
        values = self.fill if self.fill is not None else (0.0,) * len(self.bands)
        return np.asarray(values, np.float32)[:, None, None]

    @property
    def num_classes(self) -> int:
        return max(self.class_names) + 1

    def color(self, class_id: int) -> str:
        """The class's colour as ``#RRGGBB`` (from the model, else a fixed palette)."""
        return self.class_colors.get(class_id, DEFAULT_PALETTE[class_id % len(DEFAULT_PALETTE)])

    def to_metadata(self) -> dict[str, str]:
        """The ``metadata_props`` of the contract, each value JSON-encoded."""
        names = {str(k): v for k, v in sorted(self.class_names.items())}
        colors = {str(k): self.color(k) for k in sorted(self.class_names)}
        props: dict[str, Any] = {
            "model_type": self.model_type,
            "class_names": names,
            "tiles_size": self.tile_size,
            "tile_size": self.tile_size,  # the spelling Deepness's code reads
            "tiles_overlap": self.overlap_pct,
            # Deepness and GeoDeep zero probabilities under this threshold (0.5 by default) before
            # their argmax, which turns every pixel the model is less sure of into class 0; s5geo
            # gives each pixel its most probable class, and 0 makes them do the same.
            "seg_thresh": 0.0,
            "standardization_mean": list(self.mean),
            "standardization_std": list(self.std),
            "s5geo.bands": list(self.bands),
            "s5geo.input_scale": self.input_scale,
            "s5geo.class_colors": colors,
            "s5geo.version": self.version,
            "s5geo.architecture": self.architecture,
            "s5geo.recipe": self.recipe,
        }
        if self.fill is not None:
            props["s5geo.fill"] = list(self.fill)
        if self.reference_confidence is not None:
            props["s5geo.reference_confidence"] = round(self.reference_confidence, 4)
        if self.resolution_cm > 0:  # unknown: no key (see the class docstring)
            props["resolution"] = self.resolution_cm
        return {k: json.dumps(v) for k, v in props.items()}

    def _standardization(self) -> str:
        """Where the per-band standardisation happens, with the run's values when in the graph."""
        moved = self.recipe.get("standardization")
        if isinstance(moved, Mapping):
            return f"in the graph: mean {moved.get('mean')}, std {moved.get('std')}"
        return "by the reader, with mean and std above"

    def describe(self) -> dict[str, Any]:
        """A plain, JSON-ready summary (for ``s5geo info`` and the QGIS plugin)."""
        return {
            "model_type": self.model_type,
            "classes": {str(k): v for k, v in sorted(self.class_names.items())},
            "class_colors": {str(k): self.color(k) for k in sorted(self.class_names)},
            "bands": list(self.bands),
            "resolution_cm": self.resolution_cm,
            "tile_size": self.tile_size,
            "overlap_pct": self.overlap_pct,
            "input_scale": self.input_scale,
            "mean": list(self.mean),
            "std": list(self.std),
            "standardization": self._standardization(),
            "version": self.version,
            "architecture": self.architecture,
            "recipe": self.recipe,
            "reference_confidence": self.reference_confidence,
        }


def _decode(key: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        # Some tools write bare strings (e.g. model_type=Segmentor) rather than JSON strings.
        if key in ("model_type", "s5geo.version", "s5geo.architecture"):
            return raw
        raise UserError(f"model metadata {key!r} is not valid JSON: {raw[:60]!r}") from None


def _int_keyed(key: str, value: Any) -> dict[int, str]:
    if not isinstance(value, Mapping):
        raise UserError(f"model metadata {key!r} must be a mapping of class id to value")
    try:
        return {int(k): str(v) for k, v in value.items()}
    except ValueError:
        raise UserError(f"model metadata {key!r} has a class id that is not an integer") from None


def info_from_metadata(meta: Mapping[str, str], source: str = "model") -> ModelInfo:
    """Parse ``metadata_props`` into a :class:`ModelInfo`; refuse a missing key by name."""
    meta = dict(meta)
    if "tiles_size" not in meta and "tile_size" in meta:
        meta["tiles_size"] = meta["tile_size"]
    for key in REQUIRED_KEYS:
        if key not in meta:
            raise UserError(f"{source} lacks the required metadata key {key!r}")
    v = {k: _decode(k, raw) for k, raw in meta.items()}
    try:
        return ModelInfo(
            class_names=_int_keyed("class_names", v["class_names"]),
            class_colors=_int_keyed("s5geo.class_colors", v.get("s5geo.class_colors", {})),
            tile_size=int(v["tiles_size"]),
            overlap_pct=float(v.get("tiles_overlap", DEFAULT_OVERLAP_PCT)),
            bands=tuple(int(b) for b in v["s5geo.bands"]),
            input_scale=float(v["s5geo.input_scale"]),
            mean=tuple(float(m) for m in v["standardization_mean"]),
            std=tuple(float(s) for s in v["standardization_std"]),
            resolution_cm=float(v.get("resolution") or 0.0),
            model_type=str(v["model_type"]),
            version=str(v.get("s5geo.version", "")),
            architecture=str(v.get("s5geo.architecture", "")),
            recipe=dict(v.get("s5geo.recipe") or {}),
            fill=tuple(float(f) for f in v["s5geo.fill"]) if "s5geo.fill" in v else None,
            reference_confidence=(
                float(v["s5geo.reference_confidence"])
                if v.get("s5geo.reference_confidence") is not None
                else None
            ),
        )
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source} has malformed metadata: {exc}") from None


def write_metadata(onnx_path: str | Path, info: ModelInfo) -> None:
    """Store ``info`` as the model's ``metadata_props`` (replacing same-named keys), in place.

    Needs the ``onnx`` package (s5geo's ``train`` or ``dev`` extra).
    """
    import onnx

    model = onnx.load(str(onnx_path))
    props = info.to_metadata()
    kept = [p for p in model.metadata_props if p.key not in props]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(onnx_path))
