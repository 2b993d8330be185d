"""QGIS styles: QML for paletted class rasters and categorized class polygons."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from s5geo.io.qgis_style import raster_qml, vector_qml

NAMES = {0: "building", 1: "land & <soil>", 4: "water"}
COLORS = {0: "#3C1098", 1: "#8429f6", 4: "#e2a929"}


def parse(qml: str) -> ET.Element:
    assert qml.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>")
    root = ET.fromstring(qml)
    assert root.tag == "qgis"
    assert root.get("version", "").startswith("3.22")
    return root


def test_raster_style_is_a_paletted_renderer_with_every_class() -> None:
    root = parse(raster_qml(NAMES, COLORS))
    (renderer,) = root.iter("rasterrenderer")
    assert (renderer.get("type"), renderer.get("band")) == ("paletted", "1")
    entries = {
        int(e.get("value", "")): (e.get("color"), e.get("alpha"), e.get("label"))
        for e in renderer.iter("paletteEntry")
    }
    assert entries == {
        0: ("#3c1098", "255", "building"),
        1: ("#8429f6", "255", "land & <soil>"),
        4: ("#e2a929", "255", "water"),
    }
    (nodata,) = renderer.iter("pixelListEntry")
    assert (nodata.get("min"), nodata.get("max"), nodata.get("percentTransparent")) == (
        "255",
        "255",
        "100",
    )


def test_vector_style_is_a_categorized_renderer_on_the_class_field() -> None:
    root = parse(vector_qml(NAMES, COLORS))
    (renderer,) = root.iter("renderer-v2")
    assert (renderer.get("type"), renderer.get("attr")) == ("categorizedSymbol", "class_id")
    categories = {c.get("value"): c for c in renderer.iter("category")}
    assert {v: c.get("label") for v, c in categories.items()} == {
        str(k): v for k, v in NAMES.items()
    }
    symbols = {s.get("name"): s for s in renderer.iter("symbol")}
    for value, category in categories.items():
        symbol = symbols[category.get("symbol")]
        assert symbol.get("type") == "fill"
        (layer,) = symbol.iter("layer")
        assert layer.get("class") == "SimpleFill"
        props = {p.get("k"): p.get("v") for p in layer.iter("prop")}
        options = {o.get("name"): o.get("value") for o in layer.find("Option") or []}
        assert options == props  # the same properties in both of QGIS 3.22's encodings
        hex_color = COLORS[int(value)]
        rgb = [int(hex_color[i : i + 2], 16) for i in (1, 3, 5)]
        assert props["color"] == ",".join(map(str, rgb)) + ",255"
        outline = [int(v) for v in props["outline_color"].split(",")[:3]]
        assert all(o <= c for o, c in zip(outline, rgb, strict=True)) and outline != rgb
    assert root.findtext("layerGeometryType") == "2"


def test_another_field_and_missing_colours() -> None:
    root = parse(vector_qml({3: "trees"}, {}, field="cls"))
    (renderer,) = root.iter("renderer-v2")
    assert renderer.get("attr") == "cls"
    assert [c.get("label") for c in renderer.iter("category")] == ["trees"]


@pytest.mark.parametrize("color", ["#12345", "#GG0000", "red", "#11223344"])
def test_rejects_colours_that_are_not_rrggbb(color: str) -> None:
    with pytest.raises(ValueError, match="#RRGGBB"):
        raster_qml({0: "a"}, {0: color})
