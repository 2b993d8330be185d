"""Training labels drawn by an analyst: polygons or points with a class field, in any vector format.

Reads GeoPackage, Shapefile and GeoJSON with pyogrio (GDAL) and GeoParquet with pyarrow (the
GDAL inside pyogrio's wheels has no Parquet driver), works out which field holds the class,
the classes' order, names and colours (from a QGIS categorized style saved with the layer, when
there is one), and refuses labels that cannot train anything with one message that says why.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
from pyproj import CRS

from s5geo.errors import UserError
from s5geo.fit.qml import category_colors
from s5geo.modelfile import DEFAULT_PALETTE

# Field names that say "class" in the tools analysts draw labels with (QGIS SCP's MC_ID / C_ID,
# dzetsaka's "Class", Earth Engine's "landcover", ArcGIS's "Classname"/"Classvalue").
CLASS_NAME_PATTERN = re.compile(
    r"^(class|classes|classname|class_name|classvalue|class_id|classid|label|labels|landcover|"
    r"land_cover|lc|lulc|type|category|cat|mc_id|mc_info|c_id|c_info|macroclass|code)$",
    re.IGNORECASE,
)
MAX_CLASSES = 64
GEOMETRY_TYPES = (
    "Point",
    "LineString",
    "LinearRing",
    "Polygon",
    "MultiPoint",
    "MultiLineString",
    "MultiPolygon",
    "GeometryCollection",
)  # shapely's type ids
POLYGONAL = {"Polygon", "MultiPolygon"}
PUNCTUAL = {"Point", "MultiPoint"}


@dataclass(frozen=True)
class Labels:
    """Label geometries with their class ids, in the CRS ``crs`` (None: not georeferenced)."""

    geometries: np.ndarray  # shapely geometries
    class_ids: np.ndarray  # int per geometry
    class_names: dict[int, str]
    class_colors: dict[int, str]
    crs: CRS | None
    field: str
    source: str

    @property
    def points(self) -> bool:
        return bool(shapely.get_type_id(self.geometries[0]) in (0, 4))


def _read_parquet(path: Path) -> tuple[dict[str, np.ndarray], np.ndarray, CRS | None]:
    """Columns, geometries and CRS of a GeoParquet file (its ``geo`` metadata, spec 1.x)."""
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:  # pragma: no cover - pyarrow is a dependency
        raise UserError("GeoParquet labels need pyarrow: pip install pyarrow") from None
    table = pq.read_table(path)
    geo = json.loads((table.schema.metadata or {}).get(b"geo", b"{}"))
    column = geo.get("primary_column")
    if not column:
        raise UserError(f"labels {path} are Parquet without GeoParquet 'geo' metadata")
    meta = geo["columns"][column]
    if meta.get("encoding", "WKB").upper() != "WKB":
        raise UserError(f"labels {path}: only WKB-encoded GeoParquet geometries are read")
    geoms = shapely.from_wkb(table.column(column).to_numpy(zero_copy_only=False))
    crs_value = meta.get("crs", "OGC:CRS84")
    crs = CRS.from_user_input(crs_value) if crs_value is not None else None
    fields = {
        name: table.column(name).to_numpy(zero_copy_only=False)
        for name in table.column_names
        if name != column
    }
    return fields, geoms, crs


def _choose_layer(path: Path, layer: str | None) -> str | None:
    try:
        layers = pyogrio.list_layers(path)
    except pyogrio.errors.DataSourceError as exc:
        raise UserError(f"labels {path} cannot be read as vector data ({exc})") from None
    spatial = [str(name) for name, gtype in layers if gtype is not None]
    if layer is not None:
        if layer not in [str(name) for name, _ in layers]:
            raise UserError(f"labels {path} have no layer {layer!r} (layers: {', '.join(spatial)})")
        return layer
    if len(spatial) == 1:
        return spatial[0]
    if not spatial:
        raise UserError(f"labels {path} hold no layer with geometries")
    raise UserError(
        f"labels {path} hold several layers ({', '.join(spatial)}): choose one with layer"
    )


def _read_ogr(
    path: Path, layer: str | None
) -> tuple[dict[str, np.ndarray], np.ndarray, CRS | None]:
    try:
        meta, _, wkb, values = pyogrio.raw.read(path, layer=layer)
    except pyogrio.errors.DataSourceError as exc:
        raise UserError(f"labels {path} cannot be read as vector data ({exc})") from None
    geoms = shapely.from_wkb(wkb)
    crs = CRS.from_user_input(meta["crs"]) if meta.get("crs") else None
    return dict(zip(meta["fields"], values, strict=True)), geoms, crs


def _integral_floats(values: np.ndarray) -> bool:
    """Floats that are integer codes: an integer field with empty values reads as floats, NaN
    where a value is missing (GDAL and pyarrow both do), and some formats store codes as reals."""
    if values.dtype.kind != "f":
        return False
    present = values[np.isfinite(values)]
    return present.size > 0 and bool(np.all(present == np.round(present)))


def _codes(values: np.ndarray) -> np.ndarray:
    """Integral floats as integers, missing values as None (what the class table expects)."""
    return np.array([None if np.isnan(v) else int(v) for v in values], dtype=object)


def _is_text_or_int(values: np.ndarray) -> bool:
    if values.dtype.kind in "iu" or _integral_floats(values):
        return True
    if values.dtype.kind != "O":
        return False
    present = [v for v in values if v is not None]
    return all(isinstance(v, str) for v in present) or all(
        isinstance(v, (int, np.integer)) for v in present
    )


def choose_class_field(fields: dict[str, np.ndarray], field: str | None, source: str) -> str:
    """``field``, or the single text/integer field that looks like a class."""
    if field is not None:
        if field not in fields:
            raise UserError(
                f"labels {source} have no field {field!r} (fields: {', '.join(fields) or 'none'})"
            )
        return field
    usable = [name for name, v in fields.items() if _is_text_or_int(v)]
    n = len(next(iter(fields.values()))) if fields else 0

    def repeats(name: str) -> bool:  # an id field has one value per feature; a class field not
        distinct = {v for v in fields[name] if v is not None}
        return 1 <= len(distinct) <= MAX_CLASSES and (len(distinct) < n or n <= 2)

    by_name = [name for name in usable if CLASS_NAME_PATTERN.match(name)]
    for pool in (by_name, [name for name in usable if repeats(name)]):
        if len(pool) == 1:
            return pool[0]
        if len(pool) > 1:
            raise UserError(
                f"labels {source}: several fields could hold the class ({', '.join(pool)}); "
                "choose one with class_field"
            )
    raise UserError(
        f"labels {source}: no text or integer field holds the class "
        f"(fields: {', '.join(fields) or 'none'}); add one and name it with class_field"
    )


def _empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _class_table(
    values: np.ndarray, styled: dict[str, str], source: str, field: str
) -> tuple[np.ndarray, dict[int, str], dict[int, str]]:
    """Class id per feature, with the classes' names and colours.

    Integer values keep their codes as class ids (0-254), so an analyst's legend stays valid;
    names get ids in the order of the saved QGIS style, else alphabetically.
    """
    empty = [i for i, v in enumerate(values) if _empty(v)]
    if empty:
        raise UserError(
            f"labels {source}: {len(empty)} feature(s) have no value in {field!r} "
            f"(the first is feature {empty[0] + 1})"
        )
    integer = all(isinstance(v, (int, np.integer)) for v in values)
    if integer:
        codes = sorted({int(v) for v in values})
        if codes[0] < 0 or codes[-1] > 254:
            raise UserError(f"labels {source}: class codes in {field!r} must lie in 0..254")
        ids = np.array([int(v) for v in values])
        names = {c: str(c) for c in codes}
    else:
        text = [str(v).strip() for v in values]
        order = [v for v in styled if v in set(text)]
        order += sorted(set(text) - set(order))
        lookup = {v: i for i, v in enumerate(order)}
        ids = np.array([lookup[v] for v in text])
        names = dict(enumerate(order))
    if len(names) < 2:
        raise UserError(f"labels {source}: {field!r} holds one class; a map needs at least two")
    if len(names) > MAX_CLASSES:
        raise UserError(f"labels {source}: {field!r} holds {len(names)} classes (at most 64)")
    palette = {k: DEFAULT_PALETTE[i % len(DEFAULT_PALETTE)] for i, k in enumerate(sorted(names))}
    original = {k: (str(k) if integer else names[k]) for k in names}
    colors = {k: styled.get(original[k], palette[k]) for k in names}
    return ids, names, colors


def _saved_style(path: Path, layer: str | None, field: str) -> dict[str, str]:
    """Category value -> colour from the layer's QGIS style (GeoPackage table or ``.qml``)."""
    qml = path.with_suffix(".qml")
    if qml.exists():
        return category_colors(qml.read_text(errors="replace"), field)
    if path.suffix.lower() != ".gpkg":
        return {}
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
            rows = con.execute(
                "SELECT styleQML FROM layer_styles WHERE f_table_name = ? "
                "ORDER BY useAsDefault DESC",
                (layer,),
            ).fetchall()
    except sqlite3.Error:
        return {}
    for (text,) in rows:
        colors = category_colors(text or "", field)
        if colors:
            return colors
    return {}


def read_labels(
    path: str | Path, class_field: str | None = None, layer: str | None = None
) -> Labels:
    """Read and check training labels; errors name the parameter (``class_field``, ``layer``)."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"labels {p}: no such file")
    if p.suffix.lower() in (".parquet", ".geoparquet"):
        fields, geoms, crs = _read_parquet(p)
        chosen_layer = None
    else:
        chosen_layer = _choose_layer(p, layer)
        fields, geoms, crs = _read_ogr(p, chosen_layer)
    source = p.name
    if len(geoms) == 0:
        raise UserError(f"labels {source} hold no features")
    field = choose_class_field(fields, class_field, source)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise UserError(
            f"labels {source}: {int(missing.sum())} feature(s) have no geometry "
            f"(the first is feature {int(np.argmax(missing)) + 1})"
        )
    kinds = {GEOMETRY_TYPES[t] for t in shapely.get_type_id(geoms)}
    if not (kinds <= POLYGONAL or kinds <= PUNCTUAL):
        raise UserError(
            f"labels {source} hold {', '.join(sorted(kinds))} geometries: draw polygons or "
            "points (not both, and no lines)"
        )
    styled = _saved_style(p, chosen_layer, field)
    values = _codes(fields[field]) if _integral_floats(fields[field]) else fields[field]
    ids, names, colors = _class_table(values, styled, source, field)
    geoms = shapely.make_valid(geoms) if kinds <= POLYGONAL else geoms
    labels = Labels(geoms, ids, names, colors, crs, field, source)
    if kinds <= POLYGONAL:
        check_overlaps(labels)
    return labels


def check_overlaps(labels: Labels) -> None:
    """Refuse polygons of different classes that overlap: their shared pixels have no class."""
    tree = shapely.STRtree(labels.geometries)
    left, right = tree.query(labels.geometries, predicate="intersects")
    keep = (left < right) & (labels.class_ids[left] != labels.class_ids[right])
    for a, b in zip(left[keep], right[keep], strict=True):
        shared = shapely.intersection(labels.geometries[a], labels.geometries[b])
        if shapely.area(shared) > 1e-9 * max(shapely.area(labels.geometries[a]), 1e-12):
            name_a = labels.class_names[int(labels.class_ids[a])]
            name_b = labels.class_names[int(labels.class_ids[b])]
            raise UserError(
                f"labels {labels.source}: feature {a + 1} ({name_a}) and feature {b + 1} "
                f"({name_b}) overlap; a pixel can have one class only"
            )


def to_crs(labels: Labels, crs: CRS | None) -> np.ndarray:
    """The label geometries in ``crs`` (unchanged when either CRS is unknown or they match)."""
    if crs is None or labels.crs is None or labels.crs == crs:
        return labels.geometries
    from pyproj import Transformer

    transformer = Transformer.from_crs(labels.crs, crs, always_xy=True)
    return shapely.transform(
        labels.geometries, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
    )
