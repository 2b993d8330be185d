"""GeoPackage writing with Python's sqlite3: a polygon layer from a stream of batches, and a QGIS
default style.

A GeoPackage is an SQLite database with a fixed schema (OGC 12-128r18, version 1.2 here: QGIS 3.22
warns about newer ones), so ``write_polygon_layer`` writes it with the standard library's
``sqlite3`` rather than through GDAL. Measured on the 24 MP benchmark raster
(docs/benchmarks/polygonize.md), writing through pyogrio cost more memory than polygonizing:
importing it loads its own copy of GDAL (51 MiB resident, next to rasterio's) and, through its
``_compat`` module, pandas, geopandas and pyproj whenever they are installed (62 MiB more), and
GDAL held the layer's R-tree in memory until the end. Here memory holds one batch; the features'
boxes (16 bytes each) are the only thing that grows with the layer.

The file is what GDAL's GPKG driver writes for the same layer (the same tables and rows, the
same geometry blobs byte for byte, the same triggers), with two differences that readers do not
see: the geometry column comes last in the feature table, so that a feature too large to hold
can be reserved with ``zeroblob`` (SQLite keeps a ``zeroblob`` unexpanded only as the last value
of a row: measured 392 MiB to reserve a 198 MB blob elsewhere in the row, 15 MiB last) and
written through incremental blob I/O (``Connection.blobopen``); and the tile-matrix tables,
which a features-only GeoPackage does not need, are left out.

The R-tree spatial index (the GeoPackage extension ``gpkg_rtree_index``) is bulk loaded at the
end: inserting the features one by one into SQLite's R-tree module costs about 30 µs each
(24 s for 813,400 boxes, measured), as much as the whole polygonization, so the tree is packed
(sort-tile-recursive) in numpy and its nodes are written straight into the module's shadow
tables, in the format SQLite documents at the top of ``ext/rtree/rtree.c``; GDAL does the same
(``sqlite_rtree_bulk_load``). SQLite's ``rtreecheck`` verifies such a tree (tests). The triggers
that keep the index up to date (GDAL's, calling ``ST_*`` functions that GDAL, SpatiaLite and
QGIS provide) are created after the rows, so later edits in GDAL or QGIS maintain it.

``write_default_style`` stores a QML style the way QGIS stores one ("Save as default" in a
layer's style menu): a row of the ``layer_styles`` attributes table, with the columns, types and
``gpkg_contents`` registration that QGIS's OGR provider creates, and ``useAsDefault`` set, so
QGIS opens the layer with it.
"""

from __future__ import annotations

import re
import sqlite3
import struct
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.errors import CRSError

GPKG_USER_VERSION = 10200  # GeoPackage 1.2
GPKG_APPLICATION_ID = 0x47504B47  # "GPKG"
GEOMETRY_COLUMN = "geom"  # GDAL's default name
GPKG_HEADER_BYTES = 40  # "GP", version, flags, srs_id, envelope [minx, maxx, miny, maxy]
BLOB_WRITE_BYTES = 4 * 2**20
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

# The GeoPackage's own tables, as GDAL's GPKG driver creates them (gpkg_ogr_contents, GDAL's
# feature count cache, included: GDAL and QGIS read counts from it).
_SCHEMA = (
    "CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL,srs_id INTEGER NOT NULL PRIMARY"
    " KEY,organization TEXT NOT NULL,organization_coordsys_id INTEGER NOT NULL,definition  TEXT"
    " NOT NULL,description TEXT)",
    "CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY,data_type TEXT NOT NULL,"
    "identifier TEXT UNIQUE,description TEXT DEFAULT '',last_change DATETIME NOT NULL DEFAULT"
    " (strftime('%Y-%m-%dT%H:%M:%fZ','now')),min_x DOUBLE, min_y DOUBLE,max_x DOUBLE, max_y"
    " DOUBLE,srs_id INTEGER,CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES"
    " gpkg_spatial_ref_sys(srs_id))",
    "CREATE TABLE gpkg_ogr_contents(table_name TEXT NOT NULL PRIMARY KEY,feature_count INTEGER"
    " DEFAULT NULL)",
    "CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL,column_name TEXT NOT NULL,"
    "geometry_type_name TEXT NOT NULL,srs_id INTEGER NOT NULL,z TINYINT NOT NULL,m TINYINT NOT"
    " NULL,CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name),CONSTRAINT"
    " uk_gc_table_name UNIQUE (table_name),CONSTRAINT fk_gc_tn FOREIGN KEY (table_name)"
    " REFERENCES gpkg_contents(table_name),CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES"
    " gpkg_spatial_ref_sys (srs_id))",
    "CREATE TABLE gpkg_extensions (table_name TEXT,column_name TEXT,extension_name TEXT NOT NULL,"
    "definition TEXT NOT NULL,scope TEXT NOT NULL,CONSTRAINT ge_tce UNIQUE (table_name,"
    " column_name, extension_name))",
)
# The three reference systems every GeoPackage defines, with GDAL's definitions.
_DEFAULT_SRS = (
    ("Undefined Cartesian SRS", -1, "NONE", -1, "undefined",
     "undefined Cartesian coordinate reference system"),
    ("Undefined geographic SRS", 0, "NONE", 0, "undefined",
     "undefined geographic coordinate reference system"),
    ("WGS 84 geodetic", 4326, "EPSG", 4326,
     'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG",'
     '"7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT['
     '"degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS['
     '"Longitude",EAST],AUTHORITY["EPSG","4326"]]',
     "longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid"),
)  # fmt: skip
_FIRST_CUSTOM_SRS = 100000  # GDAL's first srs_id for a CRS without an EPSG code
_RTREE_EXTENSION = "http://www.geopackage.org/spec120/#extension_rtree"
# The GeoPackage geometry header of a little-endian geometry with an xy envelope.
_HEADER = np.dtype(
    [("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs_id", "<i4"), ("envelope", "<f8", 4)]
)


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
    """Polygons (in the layer's CRS, none empty) with their attributes, all of one length.

    ``geometries`` holds shapely polygons, or ``StreamedGeometry`` objects for features too large
    to hold, whose WKB goes into their blob part by part (module docstring).
    """

    geometries: np.ndarray
    class_id: np.ndarray
    class_name: np.ndarray
    area_m2: np.ndarray


def write_polygon_layer(
    path: str | Path, layer: str, crs_wkt: str | None, batches: Iterable[PolygonBatch]
) -> None:
    """Create GeoPackage ``path`` with polygon layer ``layer`` holding every batch, indexed.

    Fields: class_id (integer), class_name (text), area_m2 (real); fids count from 1 in the
    order written. ``batches`` is consumed while writing, in one transaction; an exception it
    raises (a cancellation, say) propagates unchanged, leaving a partial file behind for the
    caller to remove.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists")
    with closing(sqlite3.connect(path, isolation_level=None)) as con:
        con.execute("BEGIN")
        writer = _LayerWriter(con, layer, crs_wkt)
        for batch in batches:
            writer.write(batch)
        writer.finish()
        con.execute("COMMIT")


def write_default_style(path: str | Path, layer: str, qml: str, description: str = "") -> None:
    """Store ``qml`` as the default QGIS style of ``layer``, named after the layer."""
    with closing(sqlite3.connect(path)) as con, con:
        (geometry_column,) = con.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (layer,)
        ).fetchone()
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


class _LayerWriter:
    """Creates a GeoPackage's schema and one polygon layer in ``con`` and appends batches to it."""

    def __init__(self, con: sqlite3.Connection, layer: str, crs_wkt: str | None) -> None:
        self.con = con
        self.layer = layer
        self.rtree = f"rtree_{layer}_{GEOMETRY_COLUMN}"
        con.execute(f"PRAGMA application_id = {GPKG_APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {GPKG_USER_VERSION}")
        for sql in _SCHEMA:
            con.execute(sql)
        con.executemany("INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, ?)", _DEFAULT_SRS)
        self.srs_id = _add_srs(con, crs_wkt)
        table, geom = _quote(layer), _quote(GEOMETRY_COLUMN)
        con.execute(
            f'CREATE TABLE {table} ( "fid" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,'
            f' "class_id" MEDIUMINT NOT NULL, "class_name" TEXT NOT NULL,'
            f' "area_m2" REAL NOT NULL, {geom} POLYGON)'
        )
        con.execute(
            "INSERT INTO gpkg_contents (table_name, data_type, identifier, description,"
            f" last_change, srs_id) VALUES (?, 'features', ?, '', {_NOW}, ?)",
            (layer, layer, self.srs_id),
        )
        con.execute(
            "INSERT INTO gpkg_geometry_columns VALUES (?, ?, 'POLYGON', ?, 0, 0)",
            (layer, GEOMETRY_COLUMN, self.srs_id),
        )
        con.execute("INSERT INTO gpkg_ogr_contents VALUES (?, 0)", (layer,))
        con.execute(
            f"CREATE VIRTUAL TABLE {_quote(self.rtree)} USING rtree(id, minx, maxx, miny, maxy)"
        )
        con.execute(
            "INSERT INTO gpkg_extensions VALUES (?, ?, 'gpkg_rtree_index', ?, 'write-only')",
            (layer, GEOMETRY_COLUMN, _RTREE_EXTENSION),
        )
        self._insert = (
            f'INSERT INTO {table} ("fid", "class_id", "class_name", "area_m2", {geom})'
            " VALUES (?, ?, ?, ?, ?)"
        )
        self._index = _RTreeLoader(con, self.rtree)
        self._count = 0
        self._extent = np.array([np.inf, np.inf, -np.inf, -np.inf])

    def write(self, batch: PolygonBatch) -> None:
        """Append ``batch``: runs of shapely polygons at once, streamed geometries one by one."""
        geometries = np.asarray(batch.geometries, dtype=object)
        streamed = np.flatnonzero(~shapely.is_geometry(geometries)).tolist()
        rows = list(zip(batch.class_id.tolist(), map(str, batch.class_name),
                        batch.area_m2.tolist(), strict=True))  # fmt: skip
        bounds = np.empty((len(geometries), 4))  # xmin, ymin, xmax, ymax
        start = 0
        for stop in [*streamed, len(geometries)]:
            if stop > start:
                bounds[start:stop] = self._write_polygons(geometries[start:stop], rows[start:stop])
            if stop < len(geometries):
                bounds[stop] = self._write_streamed(geometries[stop], rows[stop])
            start = stop + 1
        if len(bounds):
            self._extent[:2] = np.minimum(self._extent[:2], bounds[:, :2].min(axis=0))
            self._extent[2:] = np.maximum(self._extent[2:], bounds[:, 2:].max(axis=0))
            self._index.add(self._count - len(bounds) + 1, _rtree_boxes(bounds))

    def finish(self) -> None:
        """Index the features, record the extent and count, and create GDAL's triggers."""
        con = self.con
        self._index.finish()
        if self._count:
            con.execute(
                "UPDATE gpkg_contents SET min_x = ?, min_y = ?, max_x = ?, max_y = ?"
                " WHERE table_name = ?",
                (*self._extent.tolist(), self.layer),
            )
        con.execute(
            "UPDATE gpkg_ogr_contents SET feature_count = ? WHERE table_name = ?",
            (self._count, self.layer),
        )
        for sql in _triggers(self.layer, GEOMETRY_COLUMN, self.rtree):
            con.execute(sql)

    def _fids(self, count: int) -> range:
        """The next ``count`` fids (counted from 1 in the order written), reserved."""
        first = self._count + 1
        self._count += count
        return range(first, first + count)

    def _write_polygons(
        self, polygons: np.ndarray, rows: list[tuple[int, str, float]]
    ) -> np.ndarray:
        """Insert shapely polygons (GeoPackage header + little-endian WKB, as GDAL writes them)."""
        bounds = shapely.bounds(polygons)
        headers = np.zeros(len(polygons), dtype=_HEADER)
        headers["magic"], headers["flags"], headers["srs_id"] = b"GP", 0b011, self.srs_id
        headers["envelope"] = bounds[:, [0, 2, 1, 3]]
        raw, size = headers.tobytes(), _HEADER.itemsize
        blobs = (
            raw[i * size : (i + 1) * size] + wkb
            for i, wkb in enumerate(shapely.to_wkb(polygons, byte_order=1, flavor="iso").tolist())
        )
        fids = self._fids(len(polygons))
        self.con.executemany(
            self._insert,
            ((fid, *row, blob) for fid, row, blob in zip(fids, rows, blobs, strict=True)),
        )
        return bounds

    def _write_streamed(
        self, geometry: StreamedGeometry, row: tuple[int, str, float]
    ) -> tuple[float, float, float, float]:
        """Insert a feature whose geometry is written into its blob a few megabytes at a time."""
        size = GPKG_HEADER_BYTES + geometry.wkb_size
        limit = self.con.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
        if size > limit:
            raise RuntimeError(f"a polygon of {size} bytes is over SQLite's limit of {limit}")
        (fid,) = self._fids(1)
        self.con.execute(self._insert.replace("?)", "zeroblob(?))"), (fid, *row, size))
        with self.con.blobopen(self.layer, GEOMETRY_COLUMN, fid) as blob:
            writer = _BlobWriter(blob, GPKG_HEADER_BYTES)
            xmin, ymin, xmax, ymax = geometry.write_wkb(writer.write)
            writer.flush()
            if writer.position != size:
                raise RuntimeError(f"wrote {writer.position} bytes of a {size}-byte geometry")
            blob.seek(0)
            blob.write(
                struct.pack("<2sBBi4d", b"GP", 0, 0b011, self.srs_id, xmin, xmax, ymin, ymax)
            )
        return xmin, ymin, xmax, ymax


def _add_srs(con: sqlite3.Connection, crs_wkt: str | None) -> int:
    """The srs_id of ``crs_wkt``, added to gpkg_spatial_ref_sys as GDAL adds it.

    GDAL's choice: the EPSG code when the CRS is an EPSG one, else the first custom id; the
    definition is the WKT (WKT1, as rasterio gives it); no CRS is the undefined Cartesian one.
    """
    if not crs_wkt:
        return -1
    try:
        authority = CRS.from_wkt(crs_wkt).to_authority(confidence_threshold=100)
    except CRSError:
        authority = None
    if authority is not None and authority[0].upper() == "EPSG" and authority[1].isdigit():
        srs_id, organization = int(authority[1]), "EPSG"
        if srs_id == 4326:
            return srs_id
    else:
        srs_id, organization = _FIRST_CUSTOM_SRS, "NONE"
    name = re.match(r'\s*\w+\s*\[\s*"((?:[^"]|"")*)"', crs_wkt)
    con.execute(
        "INSERT INTO gpkg_spatial_ref_sys VALUES (?, ?, ?, ?, ?, NULL)",
        (name.group(1) if name else "Unknown", srs_id, organization, srs_id, crs_wkt),
    )
    return srs_id


def _triggers(layer: str, column: str, rtree: str) -> list[str]:
    """GDAL's triggers keeping the R-tree index and the feature count up to date."""
    t, g, r = _quote(layer), _quote(column), _quote(rtree)
    box = f'(NEW."fid",ST_MinX(NEW.{g}), ST_MaxX(NEW.{g}),ST_MinY(NEW.{g}), ST_MaxY(NEW.{g}))'
    literal = "'" + layer.replace("'", "''") + "'"
    count = "UPDATE gpkg_ogr_contents SET feature_count = feature_count {} 1 WHERE"
    return [
        f"CREATE TRIGGER {_quote(rtree + '_insert')} AFTER INSERT ON {t} WHEN (new.{g} NOT NULL"
        f" AND NOT ST_IsEmpty(NEW.{g})) BEGIN INSERT OR REPLACE INTO {r} VALUES {box}; END",
        f"CREATE TRIGGER {_quote(rtree + '_update1')} AFTER UPDATE OF {g} ON {t} WHEN"
        f' OLD."fid" = NEW."fid" AND (NEW.{g} NOTNULL AND NOT ST_IsEmpty(NEW.{g})) BEGIN INSERT'
        f" OR REPLACE INTO {r} VALUES {box}; END",
        f"CREATE TRIGGER {_quote(rtree + '_update2')} AFTER UPDATE OF {g} ON {t} WHEN"
        f' OLD."fid" = NEW."fid" AND (NEW.{g} ISNULL OR ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM'
        f' {r} WHERE id = OLD."fid"; END',
        f"CREATE TRIGGER {_quote(rtree + '_update3')} AFTER UPDATE ON {t} WHEN"
        f' OLD."fid" != NEW."fid" AND (NEW.{g} NOTNULL AND NOT ST_IsEmpty(NEW.{g})) BEGIN DELETE'
        f' FROM {r} WHERE id = OLD."fid"; INSERT OR REPLACE INTO {r} VALUES {box}; END',
        f"CREATE TRIGGER {_quote(rtree + '_update4')} AFTER UPDATE ON {t} WHEN"
        f' OLD."fid" != NEW."fid" AND (NEW.{g} ISNULL OR ST_IsEmpty(NEW.{g})) BEGIN DELETE FROM'
        f' {r} WHERE id IN (OLD."fid", NEW."fid"); END',
        f"CREATE TRIGGER {_quote(rtree + '_delete')} AFTER DELETE ON {t} WHEN old.{g} NOT NULL"
        f' BEGIN DELETE FROM {r} WHERE id = OLD."fid"; END',
        f"CREATE TRIGGER {_quote('trigger_insert_feature_count_' + layer)} AFTER INSERT ON {t}"
        f" BEGIN {count.format('+')} lower(table_name) = lower({literal}); END",
        f"CREATE TRIGGER {_quote('trigger_delete_feature_count_' + layer)} AFTER DELETE ON {t}"
        f" BEGIN {count.format('-')} lower(table_name) = lower({literal}); END",
    ]


# --- The R-tree, bulk loaded ------------------------------------------------------------------
# SQLite's R-tree module stores 32-bit floats, rounding a box outwards (rtreeValueDown/Up in
# rtree.c) with these factors; the same rounding here gives the same index as inserting.
_ROUND_TOWARDS = 1.0 - 1.0 / 8388608.0
_ROUND_AWAY = 1.0 + 1.0 / 8388608.0
# A cell of an R-tree node: a rowid (leaves) or child node number, then minx, maxx, miny, maxy;
# big-endian, as is the node's header: the tree's depth (root only) and the number of cells.
_CELL = np.dtype([("id", ">i8"), ("box", ">f4", 4)])


def _rtree_boxes(bounds: np.ndarray) -> np.ndarray:
    """(xmin, ymin, xmax, ymax) float64 boxes as SQLite's R-tree stores them: float32 (minx,
    maxx, miny, maxy), the minima rounded down and the maxima up as SQLite rounds them."""
    low, high = bounds[:, :2], bounds[:, 2:]
    low32, high32 = low.astype(np.float32), high.astype(np.float32)
    down = low32 > low
    low32[down] = (low * np.where(low < 0, _ROUND_AWAY, _ROUND_TOWARDS))[down]
    up = high32 < high
    high32[up] = (high * np.where(high < 0, _ROUND_TOWARDS, _ROUND_AWAY))[up]
    return np.stack([low32[:, 0], high32[:, 0], low32[:, 1], high32[:, 1]], axis=1)


class _RTreeLoader:
    """Bulk loads the empty R-tree ``rtree`` while its features are written (fids 1, 2, ...).

    Leaves are packed as boxes arrive: the boxes waiting (a batch or so, whose polygons were
    finished together and lie close together) are put in sort-tile-recursive order
    (``_str_order``) and cut into full leaves, written at once; the few left over wait for the
    next batch. So memory holds one batch of boxes and 24 bytes per leaf, not the layer's boxes.
    At the end the leaves' boxes are packed the same way, level by level, until they fit in the
    root (node 1, created with the table, whose size fixes the cells per node).
    """

    def __init__(self, con: sqlite3.Connection, rtree: str) -> None:
        self.con = con
        self.rtree = rtree
        (self.node_bytes,) = con.execute(
            f"SELECT length(data) FROM {_quote(rtree + '_node')} WHERE nodeno = 1"
        ).fetchone()
        self.per_node = (self.node_bytes - 4) // _CELL.itemsize
        self._ids = np.empty(0, dtype=np.int64)  # entries waiting for a leaf
        self._boxes = np.empty((0, 4), dtype=np.float32)
        self._next_node = 2
        self._leaves: list[tuple[np.ndarray, np.ndarray]] = []  # node numbers and boxes

    def add(self, first_fid: int, boxes: np.ndarray) -> None:
        """Index ``boxes`` (``_rtree_boxes``) of fids ``first_fid``, ``first_fid + 1``, ..."""
        ids = np.arange(first_fid, first_fid + len(boxes), dtype=np.int64)
        self._ids = np.concatenate((self._ids, ids))
        self._boxes = np.concatenate((self._boxes, boxes))
        if len(self._ids) > self.per_node:
            order = _str_order(self._boxes, self.per_node)
            ids, boxes = self._ids[order], self._boxes[order]
            full = len(ids) - len(ids) % self.per_node
            self._leaves.append(self._write_level(ids[:full], boxes[:full], 0))
            self._ids, self._boxes = ids[full:], boxes[full:]

    def finish(self) -> None:
        """Write the last leaf and the levels above, up to the root."""
        if self._leaves and len(self._ids):
            self._leaves.append(self._write_level(self._ids, self._boxes, 0))
        if self._leaves:
            ids = np.concatenate([nodes for nodes, _ in self._leaves])
            boxes = np.concatenate([boxes for _, boxes in self._leaves])
        else:  # few enough for the root alone
            ids, boxes = self._ids, self._boxes
        depth = 1 if self._leaves else 0
        while len(ids) > self.per_node:
            order = _str_order(boxes, self.per_node)
            ids, boxes = self._write_level(ids[order], boxes[order], depth)
            depth += 1
        (root,) = _node_blobs(ids, boxes, self.per_node, self.node_bytes, depth=depth)
        self.con.execute(
            f"UPDATE {_quote(self.rtree + '_node')} SET data = ? WHERE nodeno = 1", (bytes(root),)
        )
        self._link(depth, ids, np.ones(len(ids), dtype=np.int64))

    def _write_level(
        self, ids: np.ndarray, boxes: np.ndarray, depth: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Write nodes of ``per_node`` consecutive entries (the last one may hold fewer) whose
        entries are ``depth`` levels above the features; return their numbers and boxes."""
        starts = np.arange(0, len(ids), self.per_node)
        nodes = np.arange(self._next_node, self._next_node + len(starts), dtype=np.int64)
        self._next_node += len(nodes)
        blobs = _node_blobs(ids, boxes, self.per_node, self.node_bytes, depth=0)
        self.con.executemany(
            f"INSERT INTO {_quote(self.rtree + '_node')} VALUES (?, ?)",
            zip(nodes.tolist(), map(bytes, blobs), strict=True),
        )
        self._link(depth, ids, np.repeat(nodes, self.per_node)[: len(ids)])
        reduced = [
            np.minimum.reduceat(boxes[:, 0], starts), np.maximum.reduceat(boxes[:, 1], starts),
            np.minimum.reduceat(boxes[:, 2], starts), np.maximum.reduceat(boxes[:, 3], starts),
        ]  # fmt: skip
        return nodes, np.stack(reduced, axis=1)

    def _link(self, depth: int, ids: np.ndarray, nodes: np.ndarray) -> None:
        """Record which node holds each entry: features' rowids in ``%_rowid``, nodes in
        ``%_parent``."""
        if depth == 0:
            table, columns = self.rtree + "_rowid", "(rowid, nodeno)"
        else:
            table, columns = self.rtree + "_parent", "(nodeno, parentnode)"
        self.con.executemany(
            f"INSERT INTO {_quote(table)} {columns} VALUES (?, ?)",
            zip(ids.tolist(), nodes.tolist(), strict=True),
        )


def _str_order(boxes: np.ndarray, per_node: int) -> np.ndarray:
    """Sort-tile-recursive order of ``boxes``: vertical slices of about sqrt(nodes) nodes each by
    the boxes' x centres, each slice by y centre, so consecutive runs of ``per_node`` boxes make
    compact nodes."""
    nodes = -(-len(boxes) // per_node)
    per_slice = per_node * int(np.ceil(np.sqrt(nodes)))
    by_x = np.argsort(boxes[:, 0] + boxes[:, 1], kind="stable")
    y_centre = boxes[:, 2] + boxes[:, 3]
    for start in range(0, len(by_x), per_slice):
        part = by_x[start : start + per_slice]
        by_x[start : start + per_slice] = part[np.argsort(y_centre[part], kind="stable")]
    return by_x


def _node_blobs(
    ids: np.ndarray, boxes: np.ndarray, per_node: int, node_bytes: int, depth: int
) -> np.ndarray:
    """R-tree nodes of ``per_node`` consecutive cells each (the last one may hold fewer), one
    row of ``node_bytes`` bytes per node."""
    count = -(-len(ids) // per_node) or 1  # an empty tree still has its root
    cells = np.zeros(count * per_node, dtype=_CELL)
    cells["id"][: len(ids)], cells["box"][: len(ids)] = ids, boxes
    header = np.zeros((count, 2), dtype=">u2")
    header[:, 0] = depth
    header[:, 1] = per_node
    header[-1, 1] = len(ids) - (count - 1) * per_node
    blobs = np.zeros((count, node_bytes), dtype=np.uint8)
    blobs[:, :4] = header.view(np.uint8).reshape(count, 4)
    blobs[:, 4 : 4 + per_node * _CELL.itemsize] = cells.view(np.uint8).reshape(count, -1)
    return blobs


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
