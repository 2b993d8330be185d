"""Prediction options: how a scene is tiled, run and polygonized, with their valid ranges.

:class:`PredictOptions` is the one set of options that :func:`s5geo.infer.predict_scene`,
:func:`s5geo.segment.segment_scene`, ``s5geo predict`` and the QGIS algorithm share. Its ranges are
data (:attr:`PredictOptions.LIMITS`), so the command line and the QGIS fields state the same bounds
as the library checks, and its errors (:class:`s5geo.errors.ParameterError`) name the library's
parameters in a form each front end rewords with its own flag or field names.

Imports only the standard library and :mod:`s5geo.errors`: the QGIS plugin reads the ranges when it
lists its fields, without loading the inference stack (ONNX Runtime, GDAL).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from s5geo.errors import ParameterError


@dataclass(frozen=True)
class Range:
    """The valid values of a numeric option: at least ``low`` (in ``unit``). The options have
    no fixed upper bounds: the overlap's depends on the tile, and the memory check before a run
    refuses tiles and batches too large for the machine."""

    low: float
    unit: str = ""

    def check(self, name: str, value: float) -> None:
        """Raise :class:`ParameterError` naming ``name`` when ``value`` lies outside the range."""
        field = "{" + name + "}"  # the parameter, as ParameterError words it
        unit = f" {self.unit}" if self.unit else ""
        if not value >= self.low:  # also refuses NaN
            raise ParameterError(
                field + " must be at least {low:g}" + unit + ", not {value:g}",
                low=self.low, value=value,
            )  # fmt: skip


# The largest overlap as a share of the tile: beyond half, a pixel would lie in three windows
# along an axis, running the network on it three times for no better blend.
OVERLAP_MAX_SHARE = 0.5


@dataclass(frozen=True)
class PredictOptions:
    """How a scene is predicted and polygonized; every field has a default that works.

    Checked when made: a value outside :attr:`LIMITS` raises :class:`ParameterError`. The
    overlap's upper bound depends on the tile, so it is checked here only when ``tile_size`` is
    given, and against the model's tile when prediction starts otherwise.
    """

    tile_size: int | None = None
    """Side of the square tile the network runs on, in model pixels; None takes the model's
    ``tiles_size``."""
    overlap: int | None = None
    """Pixels shared by neighbouring tiles, blended smoothly; None takes the model's
    ``tiles_overlap`` percentage of the tile. At most half the tile."""
    # A few tiles per inference call amortise its overhead and stay within a laptop's memory.
    batch_size: int = 4
    """Tiles per inference call: larger batches keep a GPU busier, smaller ones use less
    memory."""
    providers: tuple[str, ...] | None = None
    """ONNX Runtime execution providers to try in order (``"cuda"``,
    ``"CPUExecutionProvider"``...); None picks the best available. Used when the model is given
    as a path."""
    resample: bool = True
    """Read the scene at the model's ground sample distance when the two differ by more than
    :data:`s5geo.infer.planning.GSD_TOLERANCE`; the outputs stay on the scene's grid."""
    min_area_m2: float = 0.0
    """Minimum mapping unit of the polygons in m²: smaller regions merge into their neighbours.
    Used where polygons are made."""
    simplify_m: float = 0.0
    """Simplification tolerance of the polygon outlines in metres (shared edges stay shared).
    Used where polygons are made."""

    # The valid range of each numeric option; the overlap's upper bound is OVERLAP_MAX_SHARE of
    # the tile. 16 px is the smallest tile whose features at the 1/16 scale of common encoders
    # still hold a pixel.
    LIMITS: ClassVar[Mapping[str, Range]] = MappingProxyType(
        {
            "tile_size": Range(16, unit="px"),
            "overlap": Range(0, unit="px"),
            "batch_size": Range(1),
            "min_area_m2": Range(0.0, unit="m²"),
            "simplify_m": Range(0.0, unit="m"),
        }
    )

    def __post_init__(self) -> None:
        if self.providers is not None:
            # Any sequence of names is taken; kept as a tuple so the options stay hashable.
            object.__setattr__(self, "providers", tuple(self.providers))
        for name, limits in self.LIMITS.items():
            value = getattr(self, name)
            if value is not None:
                limits.check(name, value)
        if self.tile_size is not None and self.overlap is not None:
            check_overlap(self.overlap, self.tile_size)


def check_overlap(overlap: int, tile: int) -> None:
    """Refuse an overlap outside 0..``OVERLAP_MAX_SHARE`` of a ``tile``-px tile."""
    high = int(tile * OVERLAP_MAX_SHARE)
    if not 0 <= overlap <= high:
        raise ParameterError(
            "{overlap} must lie in 0..{high} px for {tile}-px tiles, not {value}",
            high=high, tile=tile, value=overlap,
        )  # fmt: skip


__all__ = ["OVERLAP_MAX_SHARE", "PredictOptions", "Range", "check_overlap"]
