"""Class maps of the land-cover benchmarks s5geo users bring, plus the Dubai set.

A :class:`ClassMap` holds class names and colours, the ignore index, and how raw label files encode
classes: ``raw_values`` maps a stored label value to a class index, ``raw_colors`` maps an RGB
label colour to one (ISPRS and iSAID labels are colour-coded). Raw values or colours that are not
listed become the ignore index (e.g. ISPRS clutter and eroded boundaries, LoveDA no-data).

Decisions, checked against the official definitions (docs/DATA.md has the details):

- ISPRS Potsdam/Vaihingen ship six colours; clutter/background (#FF0000) is ignored, giving the
  five classes S5 counts (docs/methods.md: Vaihingen 5, Potsdam 5); scores are means over those
  five, the convention of the RVSA/MTP results S5 compares with.
  mmsegmentation's ISPRS datasets keep clutter as a sixth, learned and scored class; here it is
  neither. Black boundary pixels of the ``noBoundary``/eroded labels and any other off-palette
  colour (e.g. those known in tile 4_12's label) are ignored too.
- LoveDA stores 0 = no-data (ignored) and 1..7 = classes, shifted to 0..6.
- OpenEarthMap stores 0 = unknown and 1..8 = classes. Unknown is ignored, as the benchmark does;
  its index 0 is kept so class ids equal the stored values and the classifier has the 9 outputs
  S5 uses (docs/methods.md). Class 0 has no reference pixels, so it is left out of mIoU unless a
  model predicts it, which training against ignored pixels gives it no reason to do.
- iSAID: 15 object classes + background (class 0, learned and scored, as in mmsegmentation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from s5geo.errors import UserError


@dataclass(frozen=True)
class ClassMap:
    """Names, colours and label encoding of one dataset's classes."""

    names: tuple[str, ...]
    colors: tuple[str, ...]
    ignore_index: int = 255
    raw_values: dict[int, int] | None = None  # stored value -> class index; None: identity
    raw_colors: dict[str, int] = field(default_factory=dict)  # "#RRGGBB" -> class index

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def encode(self, raw: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
        """Raw label array (``[H, W]`` values or ``[H, W, 3]`` colours) -> class indices."""
        if raw.ndim == 3:
            if not self.raw_colors:
                raise UserError("colour-coded labels need a class map with raw_colors")
            key = (raw[..., 0].astype(np.int32) << 16) | (raw[..., 1].astype(np.int32) << 8)
            key |= raw[..., 2].astype(np.int32)
            out = np.full(raw.shape[:2], self.ignore_index, dtype=np.uint8)
            for color, index in self.raw_colors.items():
                out[key == int(color[1:], 16)] = index
            return out
        lut = np.full(256, self.ignore_index, dtype=np.uint8)
        mapping = self.raw_values or {i: i for i in range(self.num_classes)}
        for value, index in mapping.items():
            lut[value] = index
        if raw.dtype == np.uint8:
            return lut[raw]
        inside = (raw >= 0) & (raw <= 255)  # wider label types: values beyond a byte are ignored
        out = lut[np.where(inside, raw, 0).astype(np.uint8)]
        out[~inside] = self.ignore_index
        return out


def _colour_coded(names: tuple[str, ...], colors: tuple[str, ...]) -> dict[str, int]:
    return {c: i for i, c in enumerate(colors)}


_ISPRS_NAMES = ("impervious_surface", "building", "low_vegetation", "tree", "car")
_ISPRS_COLORS = ("#FFFFFF", "#0000FF", "#00FFFF", "#00FF00", "#FFFF00")
_ISAID_NAMES = (
    "background", "ship", "storage_tank", "baseball_diamond", "tennis_court", "basketball_court",
    "ground_track_field", "bridge", "large_vehicle", "small_vehicle", "helicopter",
    "swimming_pool", "roundabout", "soccer_ball_field", "plane", "harbor",
)  # fmt: skip
_ISAID_COLORS = (
    "#000000", "#00003F", "#003F3F", "#003F00", "#003F7F", "#003FBF", "#003FFF", "#007F3F",
    "#007F7F", "#00007F", "#0000BF", "#0000FF", "#00BF7F", "#007FBF", "#007FFF", "#00649B",
)  # fmt: skip

_OEM_NAMES = (
    "unknown", "bareland", "rangeland", "developed_space", "road", "tree", "water", "agriculture",
    "building",
)  # fmt: skip
_OEM_COLORS = (
    "#000000", "#800000", "#00FF24", "#949494", "#FFFFFF", "#226126", "#0045FF", "#4BB549",
    "#DE1F07",
)  # fmt: skip

CLASS_MAPS: dict[str, ClassMap] = {
    # ISPRS 2D semantic labelling; clutter (#FF0000) and boundaries (#000000) are ignored.
    "potsdam": ClassMap(
        _ISPRS_NAMES, _ISPRS_COLORS, raw_colors=_colour_coded(_ISPRS_NAMES, _ISPRS_COLORS)
    ),
    "vaihingen": ClassMap(
        _ISPRS_NAMES, _ISPRS_COLORS, raw_colors=_colour_coded(_ISPRS_NAMES, _ISPRS_COLORS)
    ),
    # LoveDA stores 0 = no-data, 1..7 = classes.
    "loveda": ClassMap(
        ("background", "building", "road", "water", "barren", "forest", "agriculture"),
        ("#FFFFFF", "#FF0000", "#FFFF00", "#0000FF", "#9F81B7", "#00FF00", "#FFC380"),
        raw_values={v: v - 1 for v in range(1, 8)},
    ),
    # OpenEarthMap: 0 = unknown, ignored; index 0 kept so ids equal the stored values (9 outputs,
    # as counted in docs/methods.md).
    "openearthmap": ClassMap(_OEM_NAMES, _OEM_COLORS, raw_values={v: v for v in range(1, 9)}),
    "isaid": ClassMap(
        _ISAID_NAMES, _ISAID_COLORS, raw_colors=_colour_coded(_ISAID_NAMES, _ISAID_COLORS)
    ),
    # Dubai (Humans in the Loop / MBRSC): single-band masks 0..4, 255 unlabeled.
    "dubai": ClassMap(
        ("building", "land", "road", "vegetation", "water"),
        ("#3C1098", "#8429F6", "#6EC1E4", "#FEDD3A", "#E2A929"),
    ),
}


def get_class_map(name: str) -> ClassMap:
    """The class map called ``name``; UserError listing the known ones otherwise."""
    try:
        return CLASS_MAPS[name]
    except KeyError:
        raise UserError(f"unknown class map {name!r}; known: {', '.join(CLASS_MAPS)}") from None


# The pixel-aligned scenes of :mod:`s5geo.data.aligned` (SpaceNet-4 Atlanta, swisstopo crops).
ALIGNED_CLASS_MAPS: dict[str, ClassMap] = {
    "spacenet_buildings": ClassMap(
        ("background", "building"), ("#D9D9D9", "#E31A1C"), raw_values={0: 0, 255: 1}
    ),
    "swiss_trees": ClassMap(("non_tree", "tree"), ("#F0E6C8", "#1B7837")),
}


def class_map_for(name: str) -> ClassMap:
    """A class map of :data:`CLASS_MAPS` or :data:`ALIGNED_CLASS_MAPS`; UserError otherwise."""
    maps = {**CLASS_MAPS, **ALIGNED_CLASS_MAPS}
    if name not in maps:
        raise UserError(f"unknown class map {name!r}; known: {', '.join(maps)}")
    return maps[name]
