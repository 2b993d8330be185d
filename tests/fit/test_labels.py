"""Reading an analyst's labels: formats, the class field, class ids, colours, refusals."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio.raw
import pytest
import shapely
from fit_helpers import (
    DEMO_CLASSES,
    DEMO_LABELS,
    TOY_CLASSES,
    TOY_GEOMETRIES,
    to_lonlat,
    toy_box,
    write_geoparquet,
    write_labels,
)
from pyproj import CRS

from s5geo.errors import UserError
from s5geo.fit.labels import read_labels, to_crs
from s5geo.io.gpkg import write_default_style
from s5geo.io.qgis_style import vector_qml
from s5geo.modelfile import DEFAULT_PALETTE

UTM = CRS.from_epsg(32633)


def _write(path: Path, crs: str = "EPSG:32633", **fields: Sequence[Any]) -> Path:
    geoms = TOY_GEOMETRIES if crs == "EPSG:32633" else to_lonlat(TOY_GEOMETRIES)
    if path.suffix == ".parquet":
        return write_geoparquet(path, geoms, fields, crs=crs)
    return write_labels(path, geoms, fields, crs=crs)


@pytest.mark.parametrize("name", ["labels.gpkg", "labels.shp", "labels.geojson", "labels.parquet"])
def test_every_format_reads_the_same_labels(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / name, crs="EPSG:4326", fid=[1, 2, 3, 4], klass=TOY_CLASSES)
    labels = read_labels(path)
    assert labels.field == "klass"  # the one repeating text field: fid is unique per feature
    assert labels.crs == CRS.from_epsg(4326)
    assert labels.class_names == {0: "field", 1: "water"}  # alphabetical without a style
    assert labels.class_ids.tolist() == [1, 1, 0, 0]
    assert labels.source == name
    # Reprojected to the scene's CRS, the squares come back where they were drawn.
    back = to_crs(labels, UTM)
    for got, drawn in zip(back, TOY_GEOMETRIES, strict=True):
        assert shapely.hausdorff_distance(got, drawn) < 1e-3
    assert to_crs(labels, None) is labels.geometries  # an ungeoreferenced scene: left as drawn


def test_geoparquet_without_crs_key_is_lon_lat(tmp_path: Path) -> None:
    path = write_geoparquet(tmp_path / "l.parquet", to_lonlat(TOY_GEOMETRIES),
                            {"class": TOY_CLASSES}, crs=None)  # fmt: skip
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(path)
    geo = json.loads(table.schema.metadata[b"geo"])
    assert "crs" not in geo["columns"]["geometry"]  # the spec's default: OGC:CRS84
    labels = read_labels(path)
    assert labels.crs is not None and labels.crs.to_epsg() in (None, 4326)
    assert labels.crs.equals(CRS.from_user_input("OGC:CRS84"))


def test_plain_parquet_is_refused(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"class": ["a", "b"]}), tmp_path / "plain.parquet")
    with pytest.raises(UserError, match="without GeoParquet 'geo' metadata"):
        read_labels(tmp_path / "plain.parquet")


def test_class_field_by_name_among_other_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", name=["a", "b", "c", "d"], area=[1.5, 2.5, 3.5, 4.5],
                  owner=["x", "x", "y", "y"], Class=TOY_CLASSES)  # fmt: skip
    labels = read_labels(path)
    assert labels.field == "Class"  # named like a class, beats 'owner' which also repeats


def test_ambiguous_class_fields_are_listed_in_one_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", label=TOY_CLASSES, type=["x", "x", "y", "y"])
    with pytest.raises(UserError) as err:
        read_labels(path)
    message = str(err.value)
    assert "label" in message and "type" in message and "class_field" in message
    assert "\n" not in message
    assert read_labels(path, class_field="type").class_names == {0: "x", 1: "y"}
    # Without a class-like name: every repeating text or integer field is a candidate.
    path = _write(tmp_path / "m.gpkg", cover=TOY_CLASSES, zone=[3, 3, 4, 4], id=[1, 2, 3, 4])
    with pytest.raises(UserError, match=r"several fields could hold the class \(cover, zone\)"):
        read_labels(path)


def test_explicit_class_field_missing(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", kind=TOY_CLASSES, id=[1, 2, 3, 4])
    with pytest.raises(UserError, match=r"no field 'class' \(fields: kind, id\)"):
        read_labels(path, class_field="class")


def test_no_field_can_hold_the_class(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", area=[1.5, 2.5, 3.5, 4.5], id=[1, 2, 3, 4])
    with pytest.raises(UserError, match="no text or integer field holds the class"):
        read_labels(path)


def test_integer_codes_stay_class_ids(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", class_id=[7, 7, 2, 2])
    labels = read_labels(path)
    assert labels.class_ids.tolist() == [7, 7, 2, 2]
    assert labels.class_names == {2: "2", 7: "7"}
    assert labels.class_colors == {2: DEFAULT_PALETTE[0], 7: DEFAULT_PALETTE[1]}


@pytest.mark.parametrize("codes", [[1, 1, 255, 255], [-1, -1, 3, 3]])
def test_integer_codes_out_of_range(tmp_path: Path, codes: list[int]) -> None:
    with pytest.raises(UserError, match=r"must lie in 0\.\.254"):
        read_labels(_write(tmp_path / "l.gpkg", class_id=codes))


@pytest.mark.parametrize("name", ["l.gpkg", "l.parquet"])
def test_integer_codes_with_a_missing_value(tmp_path: Path, name: str) -> None:
    # An integer column with a null reads back as floats with NaN: still the class field.
    path = tmp_path / name
    if name.endswith(".parquet"):
        write_geoparquet(path, TOY_GEOMETRIES, {"class": [1, None, 2, 2]})
    else:
        pyogrio.raw.write(path, shapely.to_wkb(TOY_GEOMETRIES), [np.array([1, 0, 2, 2])],
                          ["class"], field_mask=[np.array([False, True, False, False])],
                          geometry_type="Polygon", crs="EPSG:32633")  # fmt: skip
    with pytest.raises(
        UserError, match=r"1 feature\(s\) have no value in 'class' \(the first is feature 2\)"
    ):
        read_labels(path)


def test_integer_codes_stored_as_floats(tmp_path: Path) -> None:
    path = write_geoparquet(tmp_path / "l.parquet", TOY_GEOMETRIES, {"class": [4.0, 4.0, 9.0, 9.0]})
    labels = read_labels(path)
    assert labels.class_names == {4: "4", 9: "9"}
    assert labels.class_ids.tolist() == [4, 4, 9, 9]


def test_palette_colours_without_a_style(tmp_path: Path) -> None:
    labels = read_labels(_write(tmp_path / "l.gpkg", cls=["b", "b", "a", "c"]))
    assert labels.class_names == {0: "a", 1: "b", 2: "c"}
    assert labels.class_colors == dict(enumerate(DEFAULT_PALETTE[:3]))


def test_colours_and_order_from_the_saved_qgis_style(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", landcover=TOY_CLASSES)
    names = {0: "water", 1: "field"}  # the analyst's order, not alphabetical
    write_default_style(path, "l", vector_qml(names, {0: "#0000FF", 1: "#FFD700"},
                                              field="landcover", values=names))  # fmt: skip
    labels = read_labels(path)
    assert labels.class_names == {0: "water", 1: "field"}
    assert labels.class_ids.tolist() == [0, 0, 1, 1]
    assert labels.class_colors == {0: "#0000FF", 1: "#FFD700"}


def test_saved_style_of_another_field_is_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", landcover=TOY_CLASSES, id=[1, 2, 3, 4])
    write_default_style(path, "l", vector_qml({1: "one"}, {1: "#123456"}, field="id",
                                              values={1: "1"}))  # fmt: skip
    labels = read_labels(path, class_field="landcover")
    assert labels.class_colors == {0: DEFAULT_PALETTE[0], 1: DEFAULT_PALETTE[1]}


def test_style_with_integer_codes_and_extra_categories(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.gpkg", code=[5, 5, 1, 1])
    names = {1: "crops", 3: "urban", 5: "water"}  # the legend lists a class not drawn yet
    colors = {1: "#FFFF00", 3: "#FF0000", 5: "#0000FF"}
    write_default_style(path, "l", vector_qml(names, colors, field="code"))
    labels = read_labels(path)
    assert labels.class_names == {1: "1", 5: "5"}
    assert labels.class_colors == {1: "#FFFF00", 5: "#0000FF"}


def test_sidecar_qml_beside_a_shapefile(tmp_path: Path) -> None:
    path = _write(tmp_path / "l.shp", lc=["grass", "grass", "soil", "soil"])
    names = {0: "soil", 1: "grass"}
    (tmp_path / "l.qml").write_text(
        vector_qml(names, {0: "#A0522D", 1: "#7CFC00"}, field="lc", values=names)
    )
    labels = read_labels(path)
    assert labels.class_names == {0: "soil", 1: "grass"}
    assert labels.class_colors == {0: "#A0522D", 1: "#7CFC00"}


def test_demo_labels(tmp_path: Path) -> None:
    labels = read_labels(DEMO_LABELS)
    assert len(labels.geometries) == 28 and labels.field == "class"
    assert labels.crs == CRS.from_epsg(26914)
    assert tuple(labels.class_names.values()) == DEMO_CLASSES  # the order of its saved style
    assert set(labels.class_colors.values()).isdisjoint(DEFAULT_PALETTE)


def test_points(tmp_path: Path) -> None:
    points = [g.centroid for g in TOY_GEOMETRIES]
    labels = read_labels(write_labels(tmp_path / "p.gpkg", points, {"class": TOY_CLASSES}))
    assert labels.points and labels.class_ids.tolist() == [1, 1, 0, 0]


def test_layers(tmp_path: Path) -> None:
    path = tmp_path / "l.gpkg"
    write_labels(path, TOY_GEOMETRIES, {"class": TOY_CLASSES}, layer="spring")
    write_labels(path, TOY_GEOMETRIES, {"class": ["a", "b", "a", "b"]}, layer="autumn")
    with pytest.raises(
        UserError, match=r"several layers \(spring, autumn\): choose one with layer"
    ):
        read_labels(path)
    assert read_labels(path, layer="autumn").class_names == {0: "a", 1: "b"}
    with pytest.raises(UserError, match="no layer 'winter'"):
        read_labels(path, layer="winter")


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (["water", None, "field", "field"], "1 feature(s) have no value in 'class' (the first "
                                            "is feature 2)"),
        (["water", "water", "  ", ""], "2 feature(s) have no value in 'class' (the first is "
                                       "feature 3)"),
        (["water", "water", "water", "water"], "holds one class"),
    ],
)  # fmt: skip
def test_bad_class_values(tmp_path: Path, values: list[object], words: str) -> None:
    with pytest.raises(UserError) as err:
        read_labels(write_labels(tmp_path / "l.gpkg", TOY_GEOMETRIES, {"class": values}))
    assert words in str(err.value)


def test_lines_are_refused(tmp_path: Path) -> None:
    lines = [g.exterior for g in TOY_GEOMETRIES]
    lines = [shapely.LineString(line.coords) for line in lines]
    path = write_labels(tmp_path / "l.gpkg", lines, {"class": TOY_CLASSES})
    with pytest.raises(UserError, match="hold LineString geometries: draw polygons or points"):
        read_labels(path)


def test_polygons_and_points_together_are_refused(tmp_path: Path) -> None:
    geoms = [*TOY_GEOMETRIES[:3], TOY_GEOMETRIES[3].centroid]
    path = write_labels(tmp_path / "l.geojson", geoms, {"class": TOY_CLASSES})
    with pytest.raises(UserError, match="Point, Polygon geometries"):
        read_labels(path)


def test_missing_geometry_is_refused(tmp_path: Path) -> None:
    path = write_geoparquet(tmp_path / "l.parquet", [*TOY_GEOMETRIES[:3], None],
                            {"class": TOY_CLASSES})  # fmt: skip
    with pytest.raises(
        UserError, match=r"1 feature\(s\) have no geometry \(the first is feature 4\)"
    ):
        read_labels(path)


def test_overlapping_classes_are_named(tmp_path: Path) -> None:
    geoms = [toy_box(0, 0, 10, 10), toy_box(20, 0, 10, 10), toy_box(5, 5, 10, 10),
             toy_box(40, 0, 10, 10)]  # fmt: skip
    path = write_labels(tmp_path / "l.gpkg", geoms, {"class": ["water", "water", "field", "field"]})
    with pytest.raises(UserError) as err:
        read_labels(path)
    message = str(err.value)
    assert "feature 1 (water) and feature 3 (field) overlap" in message


def test_touching_or_same_class_overlaps_are_fine(tmp_path: Path) -> None:
    geoms = [toy_box(0, 0, 10, 10), toy_box(5, 0, 10, 10), toy_box(15, 0, 10, 10),
             toy_box(30, 0, 10, 10)]  # fmt: skip
    labels = read_labels(write_labels(tmp_path / "l.gpkg", geoms,
                                      {"class": ["a", "a", "b", "b"]}))  # fmt: skip
    assert len(labels.geometries) == 4


def test_self_intersecting_polygon_is_repaired(tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    x0, y0 = 500_000.0, 4_999_900.0
    bowtie = shapely.affinity.translate(bowtie, x0, y0)
    geoms = [bowtie, *TOY_GEOMETRIES[1:]]
    labels = read_labels(write_labels(tmp_path / "l.gpkg", geoms, {"class": TOY_CLASSES}))
    assert shapely.is_valid(labels.geometries).all()
    assert labels.geometries[0].area == pytest.approx(50.0)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        read_labels(tmp_path / "nope.gpkg")
    (tmp_path / "junk.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(UserError, match="cannot be read as vector data"):
        read_labels(tmp_path / "junk.gpkg")
    empty = write_labels(tmp_path / "e.gpkg", [], {"class": []}, geometry_type="Polygon")
    with pytest.raises(UserError, match="hold no features"):
        read_labels(empty)


def test_labels_without_crs(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        path = write_labels(tmp_path / "l.gpkg", TOY_GEOMETRIES, {"cls": TOY_CLASSES}, crs=None)
    labels = read_labels(path)
    assert labels.crs is None
    assert to_crs(labels, UTM) is labels.geometries
    assert np.array_equal(shapely.area(labels.geometries), [256.0] * 4)
