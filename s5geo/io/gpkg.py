"""Streaming GeoPackage writing: a polygon layer from a stream of batches, and a QGIS default style.

``write_polygon_layer`` hands GDAL's GPKG driver (through ``pyogrio.raw.write_arrow``) a stream of
batches that are produced while GDAL writes, so memory holds one batch at a time, and the whole
layer is written in one GDAL session. One session matters: GDAL builds the R-tree spatial index
in bulk (in a background thread) only for a layer it created in the same session; appending batch
after batch in separate sessions (``pyogrio.raw.write(append=True)``) inserts every feature into
SQLite's R-tree one by one, measured at 2-3 times the time of the whole write. The file is a
GeoPackage 1.2 (QGIS 3.22 warns about newer versions).

A feature too large to hold in memory (one region of a land cover can have millions of vertices)
comes as a ``StreamedGeometry`` instead of a shapely geometry: GDAL writes its row with a NULL
geometry, in its place among the others, and ``_write_streamed`` then fills it in with Python's
``sqlite3``: ``zeroblob`` reserves the blob, incremental blob I/O (``Connection.blobopen``)
writes the GeoPackage geometry header and the WKB a few megabytes at a time, and the R-tree row
and the layer's extent are added by hand. Neither GDAL (an OGR geometry, its WKB and SQLite's
record, each whole) nor shapely ever holds it. SQLite keeps a ``zeroblob`` unexpanded only as
the last value of its row (else it builds the whole record in memory: measured 392 MiB for a
198 MB blob, against 15 MiB), while GDAL puts the geometry column right after the fid, so the
table is first rebuilt with the geometry column last (``_geometry_last``: the rows are copied a
few thousand at a time, about 4 s for 550,000 features; nothing changes for readers, which
name their columns). The R-tree triggers call GDAL's ``ST_*`` SQL functions, which plain
SQLite lacks; they are dropped for the while and re-created as they were, all in one
transaction.

``write_default_style`` stores a QML style the way QGIS stores one ("Save as default" in a
layer's style menu): a row of the ``layer_styles`` attributes table, with the columns, types and
``gpkg_contents`` registration that QGIS's OGR provider creates, and ``useAsDefault`` set, so
QGIS opens the layer with it.
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import sqlite3
import struct
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int64, c_void_p
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyogrio
import pyogrio.raw
import shapely

GPKG_VERSION = "1.2"

# The table QGIS's OGR provider creates through GDAL (QgsOgrProviderMetadata::saveStyle): its OGR
# field definitions (string widths, a boolean, a timestamp defaulting to now) become exactly this
# SQL in GDAL's GPKG driver.
_LAYER_STYLES_DDL = (
    'CREATE TABLE "layer_styles" ('
    ' "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,'
    ' "f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" TEXT(256),'
    ' "f_geometry_column" TEXT(256), "styleName" TEXT(30), "styleQML" TEXT, "styleSLD" TEXT,'
    ' "useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" TEXT(30),'
    " \"update_time\" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
)
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"


class StreamedGeometry(Protocol):
    """A polygon whose WKB is produced a part at a time (for features too large to hold)."""

    @property
    def wkb_size(self) -> int:
        """Bytes of its WKB."""
        ...

    def write_wkb(self, write: Callable[[bytes], object]) -> tuple[float, float, float, float]:
        """Write its WKB through ``write``, in order; return its (xmin, ymin, xmax, ymax)."""
        ...


@dataclass(frozen=True)
class PolygonBatch:
    """Polygons (in the layer's CRS) with their attributes, all of one length.

    ``geometries`` holds shapely polygons, or ``StreamedGeometry`` objects for features written
    part by part after the others (module docstring).
    """

    geometries: np.ndarray
    class_id: np.ndarray
    class_name: np.ndarray
    area_m2: np.ndarray


def write_polygon_layer(
    path: str | Path, layer: str, crs_wkt: str | None, batches: Iterable[PolygonBatch]
) -> None:
    """Create GeoPackage ``path`` with polygon layer ``layer`` holding every batch, indexed.

    Fields: class_id (integer), class_name (text), area_m2 (real). ``batches`` is consumed while
    GDAL writes; an exception it raises (a cancellation, say) propagates unchanged, leaving a
    partial file behind for the caller to remove.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists")
    stream = _BatchStream(batches)
    try:
        pyogrio.raw.write_arrow(
            stream,
            path,
            layer=layer,
            driver="GPKG",
            geometry_name=_GEOMETRY,
            geometry_type="Polygon",
            crs=crs_wkt,
            dataset_options={"VERSION": GPKG_VERSION},
            layer_options={"SPATIAL_INDEX": "YES"},
        )
    except Exception:
        if stream.error is not None:
            raise stream.error from None
        raise
    if stream.error is not None:  # raised while GDAL was finishing: it may not have noticed
        raise stream.error
    if stream.streamed:
        _write_streamed(path, layer, stream.streamed)


def write_default_style(path: str | Path, layer: str, qml: str, description: str = "") -> None:
    """Store ``qml`` as the default QGIS style of ``layer``, named after the layer."""
    geometry_column = pyogrio.read_info(path, layer=layer)["geometry_name"]
    with closing(sqlite3.connect(path)) as con, con:
        exists = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'layer_styles'"
        ).fetchone()
        if not exists:
            con.execute(_LAYER_STYLES_DDL)
            # Registered as GDAL registers an aspatial table, so GDAL and QGIS list it.
            con.execute(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, description,"
                f" last_change, srs_id) VALUES ('layer_styles', 'attributes', 'layer_styles',"
                f" '', {_NOW}, 0)"
            )
            con.execute(
                "INSERT INTO gpkg_ogr_contents (table_name, feature_count)"
                " VALUES ('layer_styles', NULL)"
            )
        # As QGIS does: a style of the same name is replaced, other defaults are unset.
        where = "f_table_schema = '' AND f_table_name = ? AND f_geometry_column = ?"
        key = (layer, geometry_column)
        con.execute(f"DELETE FROM layer_styles WHERE {where} AND styleName = ?", (*key, layer))
        con.execute(f"UPDATE layer_styles SET useAsDefault = 0 WHERE {where}", key)
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name,"
            " f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description,"
            " owner) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '')",
            (layer, geometry_column, layer, qml, description),
        )


# --- Features too large to hold, written into their blobs part by part ------------------------

GPKG_HEADER_BYTES = 40  # "GP", version, flags, srs_id, envelope [minx, maxx, miny, maxy]
BLOB_WRITE_BYTES = 4 * 2**20
COPY_ROWS = 20_000  # rows copied at a time when the table is rebuilt


def _write_streamed(path: Path, layer: str, geometries: list[StreamedGeometry]) -> None:
    """Fill in the NULL geometries of ``layer`` (written in order) with ``geometries``.

    In one transaction: a failure leaves the GeoPackage as GDAL wrote it.
    """
    with closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("BEGIN IMMEDIATE")
        try:
            _fill_streamed(con, layer, geometries)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def _fill_streamed(con: sqlite3.Connection, layer: str, geometries: list[StreamedGeometry]) -> None:
    column, srs_id = con.execute(
        "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
    ).fetchone()
    columns = con.execute(f"PRAGMA table_info({_quote(layer)})").fetchall()
    (fid,) = [name for _, name, _, _, _, pk in columns if pk]
    fids = [
        row[0]
        for row in con.execute(
            f"SELECT {_quote(fid)} FROM {_quote(layer)} WHERE {_quote(column)} IS NULL"
            f" ORDER BY {_quote(fid)}"
        )
    ]
    if len(fids) != len(geometries):
        raise RuntimeError(f"{len(fids)} null geometries in {layer}, {len(geometries)} to write")
    triggers = con.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?", (layer,)
    ).fetchall()
    for name, _ in triggers:
        con.execute(f"DROP TRIGGER {_quote(name)}")
    _geometry_last(con, layer, column, columns)
    rtree = f"rtree_{layer}_{column}"
    indexed = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (rtree,)
    ).fetchone()
    limit = con.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    extent = [np.inf, np.inf, -np.inf, -np.inf]
    for row, geometry in zip(fids, geometries, strict=True):
        size = GPKG_HEADER_BYTES + geometry.wkb_size
        if size > limit:
            raise RuntimeError(f"a polygon of {size} bytes is over SQLite's limit of {limit}")
        con.execute(
            f"UPDATE {_quote(layer)} SET {_quote(column)} = zeroblob(?) WHERE {_quote(fid)} = ?",
            (size, row),
        )
        with con.blobopen(layer, column, row) as blob:
            writer = _BlobWriter(blob, GPKG_HEADER_BYTES)
            xmin, ymin, xmax, ymax = geometry.write_wkb(writer.write)
            writer.flush()
            if writer.position != size:
                raise RuntimeError(f"wrote {writer.position} bytes of a {size}-byte geometry")
            blob.seek(0)
            blob.write(struct.pack("<2sBBi4d", b"GP", 0, 0b011, srs_id, xmin, xmax, ymin, ymax))
        if indexed:  # SQLite's R-tree rounds bounds outwards to 32-bit floats, as GDAL does
            con.execute(f"INSERT INTO {_quote(rtree)} VALUES (?, ?, ?, ?, ?)",
                        (row, xmin, xmax, ymin, ymax))  # fmt: skip
        extent = [min(extent[0], xmin), min(extent[1], ymin),
                  max(extent[2], xmax), max(extent[3], ymax)]  # fmt: skip
    con.execute(
        "UPDATE gpkg_contents SET min_x = min(coalesce(min_x, ?1), ?1),"
        " min_y = min(coalesce(min_y, ?2), ?2), max_x = max(coalesce(max_x, ?3), ?3),"
        " max_y = max(coalesce(max_y, ?4), ?4) WHERE table_name = ?5",
        (*extent, layer),
    )
    for _, sql in triggers:
        con.execute(sql)


def _geometry_last(
    con: sqlite3.Connection, table: str, column: str, columns: list[tuple[Any, ...]]
) -> None:
    """Rebuild ``table`` with its geometry ``column`` last (same rows, fids and types).

    A ``zeroblob`` stays unexpanded only at the end of a row (module docstring). The rows are
    moved a few thousand at a time, each batch deleted from the old table as it is copied, so
    the file grows by about one batch, not by the table.
    """
    if columns[-1][1] == column:
        return
    (create,) = con.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    ordered = [c for c in columns if c[1] != column] + [c for c in columns if c[1] == column]
    definitions = []
    for _, name, kind, not_null, default, pk in ordered:
        if pk:
            autoincrement = " AUTOINCREMENT" if "AUTOINCREMENT" in create.upper() else ""
            definitions.append(f"{_quote(name)} INTEGER PRIMARY KEY{autoincrement} NOT NULL")
        else:
            definitions.append(
                f"{_quote(name)} {kind}"
                + (" NOT NULL" if not_null else "")
                + (f" DEFAULT {default}" if default is not None else "")
            )
    (fid,) = [c[1] for c in columns if c[5]]
    names = ", ".join(_quote(c[1]) for c in ordered)
    old = f"{table}_s5geo_rebuilt"
    # Legacy renaming leaves the rest of the schema alone (other triggers may call ST_*).
    con.execute("PRAGMA legacy_alter_table = ON")
    con.execute(f"ALTER TABLE {_quote(table)} RENAME TO {_quote(old)}")
    con.execute("PRAGMA legacy_alter_table = OFF")
    con.execute(f"CREATE TABLE {_quote(table)} ({', '.join(definitions)})")
    low, high = con.execute(
        f"SELECT min({_quote(fid)}), max({_quote(fid)}) FROM {_quote(old)}"
    ).fetchone()
    for start in range(low - 1, high, COPY_ROWS) if low is not None else ():
        where = f"WHERE {_quote(fid)} > ? AND {_quote(fid)} <= ?"
        span = (start, start + COPY_ROWS)
        con.execute(
            f"INSERT INTO {_quote(table)} ({names}) SELECT {names} FROM {_quote(old)} {where}", span
        )
        con.execute(f"DELETE FROM {_quote(old)} {where}", span)
    con.execute(f"DROP TABLE {_quote(old)}")


class _BlobWriter:
    """Buffered sequential writes into an SQLite blob from byte ``position``."""

    def __init__(self, blob: sqlite3.Blob, position: int) -> None:
        self.blob = blob
        self.position = position
        self._parts: list[bytes] = []
        self._held = 0
        blob.seek(position)

    def write(self, data: bytes) -> None:
        self._parts.append(data)
        self._held += len(data)
        if self._held >= BLOB_WRITE_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            data = b"".join(self._parts)
            self.blob.write(data)
            self.position += len(data)
            self._parts, self._held = [], 0


def _quote(name: str) -> str:
    """An SQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


# --- A lazy Arrow C stream of PolygonBatch ------------------------------------------------------
# pyogrio streams into GDAL only from objects implementing the Arrow PyCapsule protocol, which
# normally come from pyarrow, not a deployment dependency. The Arrow C data interface is a small,
# stable C ABI (arrow.apache.org/docs/format/CDataInterface.html), so the few structures needed for
# one struct-of-columns batch are written here with ctypes: the schema is
# struct<geometry: binary (WKB, geoarrow.wkb), class_id: int32, class_name: utf8, area_m2: float64>
# and each batch's buffers are numpy arrays kept alive until GDAL releases the batch.

_GEOMETRY = "geometry"
_COLUMNS = ((b"z", b"geometry"), (b"i", b"class_id"), (b"u", b"class_name"), (b"g", b"area_m2"))


class _ArrowSchema(Structure):
    pass


class _ArrowArray(Structure):
    pass


class _ArrowArrayStream(Structure):
    pass


_ReleaseSchema = CFUNCTYPE(None, POINTER(_ArrowSchema))
_ReleaseArray = CFUNCTYPE(None, POINTER(_ArrowArray))
_ReleaseStream = CFUNCTYPE(None, POINTER(_ArrowArrayStream))
_GetSchema = CFUNCTYPE(c_int, POINTER(_ArrowArrayStream), POINTER(_ArrowSchema))
_GetNext = CFUNCTYPE(c_int, POINTER(_ArrowArrayStream), POINTER(_ArrowArray))
_GetLastError = CFUNCTYPE(c_void_p, POINTER(_ArrowArrayStream))

_ArrowSchema._fields_ = [
    ("format", c_char_p),
    ("name", c_char_p),
    ("metadata", c_void_p),
    ("flags", c_int64),
    ("n_children", c_int64),
    ("children", POINTER(POINTER(_ArrowSchema))),
    ("dictionary", POINTER(_ArrowSchema)),
    ("release", _ReleaseSchema),
    ("private_data", c_void_p),
]
_ArrowArray._fields_ = [
    ("length", c_int64),
    ("null_count", c_int64),
    ("offset", c_int64),
    ("n_buffers", c_int64),
    ("n_children", c_int64),
    ("buffers", POINTER(c_void_p)),
    ("children", POINTER(POINTER(_ArrowArray))),
    ("dictionary", POINTER(_ArrowArray)),
    ("release", _ReleaseArray),
    ("private_data", c_void_p),
]
_ArrowArrayStream._fields_ = [
    ("get_schema", _GetSchema),
    ("get_next", _GetNext),
    ("get_last_error", _GetLastError),
    ("release", _ReleaseStream),
    ("private_data", c_void_p),
]

# Memory behind exported structures, by key (a structure's private_data), with the number of
# structures (parent and children) not yet released: a consumer may move a child out and release
# it after its parent, so the memory goes when the last of them is released.
_EXPORTED: dict[int, list[Any]] = {}
_KEYS = itertools.count(1)


def _metadata(pairs: tuple[tuple[bytes, bytes], ...]) -> bytes:
    """Arrow's binary key-value metadata: int32 count, then int32-length-prefixed keys/values."""
    parts = [np.int32(len(pairs)).tobytes()]
    for key, value in pairs:
        parts += [np.int32(len(key)).tobytes(), key, np.int32(len(value)).tobytes(), value]
    return b"".join(parts)


_GEOMETRY_METADATA = ctypes.create_string_buffer(
    _metadata(((b"ARROW:extension:name", b"geoarrow.wkb"),))
)


def _unref(key: int) -> None:
    entry = _EXPORTED[key]
    entry[1] -= 1
    if entry[1] == 0:
        del _EXPORTED[key]


@_ReleaseSchema
def _release_schema(schema: Any) -> None:
    node = schema.contents
    for i in range(node.n_children):
        child = node.children[i].contents
        if child.release:
            child.release(node.children[i])
    _unref(node.private_data)
    node.release = _ReleaseSchema()


@_ReleaseArray
def _release_array(array: Any) -> None:
    node = array.contents
    for i in range(node.n_children):
        child = node.children[i].contents
        if child.release:
            child.release(node.children[i])
    _unref(node.private_data)
    node.release = _ReleaseArray()


def _export_schema(out: Any) -> None:
    key = next(_KEYS)
    children = [
        _ArrowSchema(format=fmt, name=name, flags=0, n_children=0, release=_release_schema)
        for fmt, name in _COLUMNS
    ]
    children[0].metadata = ctypes.cast(_GEOMETRY_METADATA, c_void_p)
    for child in children:
        child.private_data = key
    pointers = (POINTER(_ArrowSchema) * len(children))(*map(ctypes.pointer, children))
    _EXPORTED[key] = [(children, pointers), 1 + len(children)]
    node = out.contents
    node.format, node.name, node.metadata, node.flags = b"+s", b"", None, 0
    node.n_children = len(children)
    node.children = ctypes.cast(pointers, POINTER(POINTER(_ArrowSchema)))
    node.dictionary = None
    node.release, node.private_data = _release_schema, key


def _variable_size(items: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Arrow binary/utf8 buffers: int32 offsets and the concatenated bytes."""
    sizes = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    offsets = np.zeros(len(items) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    return offsets, np.frombuffer(b"".join(items) or b"\0", dtype=np.uint8)


def _export_batch(batch: PolygonBatch, out: Any, streamed: list[StreamedGeometry]) -> None:
    """Export ``batch`` into ``out``; streamed geometries become nulls, appended to ``streamed``."""
    key = next(_KEYS)
    length = len(batch.geometries)
    geometries = np.asarray(batch.geometries, dtype=object)
    present = shapely.is_geometry(geometries)
    validity = None  # a validity bitmap for the geometry column when some are null
    if not present.all():
        streamed += geometries[~present].tolist()
        geometries = geometries.copy()
        geometries[~present] = None
        validity = np.packbits(present, bitorder="little")
    wkb_items = [item or b"" for item in shapely.to_wkb(geometries).tolist()]
    wkb_offsets, wkb = _variable_size(wkb_items)
    name_offsets, names = _variable_size([str(s).encode() for s in batch.class_name])
    class_id = np.ascontiguousarray(batch.class_id, dtype=np.int32)
    area = np.ascontiguousarray(batch.area_m2, dtype=np.float64)
    column_buffers = ([wkb_offsets, wkb], [class_id], [name_offsets, names], [area])
    keep: list[Any] = [wkb_offsets, wkb, class_id, name_offsets, names, area, validity]
    children = []
    for column, buffers in enumerate(column_buffers):  # each: validity bitmap or none, data
        bitmap = validity.ctypes.data if column == 0 and validity is not None else None
        addresses = (c_void_p * (1 + len(buffers)))(bitmap, *(b.ctypes.data for b in buffers))
        keep.append(addresses)
        child = _ArrowArray(length=length, n_buffers=1 + len(buffers), release=_release_array)
        if bitmap is not None:
            child.null_count = int(length - present.sum())
        child.buffers = ctypes.cast(addresses, POINTER(c_void_p))
        child.private_data = key
        children.append(child)
    pointers = (POINTER(_ArrowArray) * len(children))(*map(ctypes.pointer, children))
    struct_buffers = (c_void_p * 1)(None)
    _EXPORTED[key] = [(keep, children, pointers, struct_buffers), 1 + len(children)]
    node = out.contents
    node.length, node.null_count, node.offset = length, 0, 0
    node.n_buffers, node.buffers = 1, ctypes.cast(struct_buffers, POINTER(c_void_p))
    node.n_children = len(children)
    node.children = ctypes.cast(pointers, POINTER(POINTER(_ArrowArray)))
    node.dictionary = None
    node.release, node.private_data = _release_array, key


class _BatchStream:
    """An ``__arrow_c_stream__`` over PolygonBatch items, pulled by GDAL one batch at a time.

    An exception raised while producing a batch is kept in ``error`` (the C interface can only
    report an error code) for the caller to re-raise once pyogrio returns.
    """

    def __init__(self, batches: Iterable[PolygonBatch]) -> None:
        self.error: BaseException | None = None
        self.streamed: list[StreamedGeometry] = []  # written as nulls, in order, to fill in
        self._batches: Iterator[PolygonBatch] = iter(batches)
        self._message = ctypes.create_string_buffer(b"")
        # The callbacks close over self; they and the structure live as long as this object.
        self._callbacks = (
            _GetSchema(self._get_schema),
            _GetNext(self._get_next),
            _GetLastError(self._get_last_error),
            _ReleaseStream(self._release),
        )
        self._struct = _ArrowArrayStream(*self._callbacks, None)

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return _capsule_new(ctypes.addressof(self._struct), _CAPSULE_NAME, None)

    def _get_schema(self, _stream: Any, out: Any) -> int:
        return self._guard(lambda: _export_schema(out))

    def _get_next(self, _stream: Any, out: Any) -> int:
        def produce() -> None:
            batch = next(self._batches, None)
            if batch is None:
                out.contents.release = _ReleaseArray()  # a released array marks the end
            else:
                _export_batch(batch, out, self.streamed)

        return self._guard(produce)

    def _get_last_error(self, _stream: Any) -> int | None:
        return ctypes.addressof(self._message) if self.error is not None else None

    def _release(self, stream: Any) -> None:
        stream.contents.release = _ReleaseStream()

    def _guard(self, produce: Callable[[], None]) -> int:
        try:
            produce()
        except BaseException as error:  # reported to C as an error code, re-raised in Python
            self.error = error
            self._message = ctypes.create_string_buffer(repr(error).encode())
            return errno.EIO
        return 0


_CAPSULE_NAME = b"arrow_array_stream"  # the capsule keeps a pointer to it: a module constant
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [c_void_p, c_char_p, c_void_p]
