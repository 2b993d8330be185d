"""Class colours read from QGIS categorized styles (QML), as QGIS and s5geo write them."""

from __future__ import annotations

from s5geo.fit.qml import category_colors
from s5geo.io.qgis_style import raster_qml, vector_qml


def _style(attr: str, categories: str, symbols: str, renderer: str = "categorizedSymbol") -> str:
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
        '<qgis version="3.34.0-Prizren" styleCategories="Symbology">'
        f'<renderer-v2 type="{renderer}" attr="{attr}" forceraster="0">'
        f"<categories>{categories}</categories><symbols>{symbols}</symbols>"
        "</renderer-v2></qgis>"
    )


def _symbol(name: str, props: str) -> str:
    return (
        f'<symbol type="fill" name="{name}" alpha="1"><layer class="SimpleFill" enabled="1">'
        f"{props}</layer></symbol>"
    )


def _option(key: str, value: str) -> str:
    return f'<Option type="Map"><Option type="QString" name="{key}" value="{value}"/></Option>'


def test_s5geo_vector_style_round_trips_values_and_colours() -> None:
    names = {0: "water", 1: "bare soil", 2: "road"}
    colors = {0: "#1F78B4", 1: "#d9b38c", 2: "#000000"}
    qml = vector_qml(names, colors, field="class", values=names)
    assert category_colors(qml, "class") == {"water": "#1F78B4", "bare soil": "#D9B38C",
                                             "road": "#000000"}  # fmt: skip
    ids = vector_qml(names, colors)  # categorized on class_id, values are the ids
    assert category_colors(ids, "class_id") == {"0": "#1F78B4", "1": "#D9B38C", "2": "#000000"}


def test_categories_keep_the_style_order() -> None:
    categories = "".join(
        f'<category value="{v}" symbol="{i}" label="{v}" render="true"/>'
        for i, v in enumerate(["urban", "forest", "arable"])
    )
    symbols = "".join(
        _symbol(str(i), _option("color", c))
        for i, c in enumerate(["255,0,0,255", "0,128,0,255", "250,220,100,255"])
    )
    colors = category_colors(_style("landuse", categories, symbols), "landuse")
    assert list(colors) == ["urban", "forest", "arable"]
    assert colors == {"urban": "#FF0000", "forest": "#008000", "arable": "#FADC64"}


def test_legacy_prop_colours_and_fill_color_key() -> None:
    categories = (
        '<category value="1" symbol="0" label="a" render="true"/>'
        '<category value="2" symbol="1" label="b" render="true"/>'
    )
    symbols = _symbol("0", '<prop k="color" v="10,20,30,255"/>') + _symbol(
        "1", '<prop k="fill_color" v="200,100,0,255"/>'
    )
    assert category_colors(_style("code", categories, symbols), "code") == {
        "1": "#0A141E",
        "2": "#C86400",
    }


def test_quoted_attribute_and_out_of_range_colour() -> None:
    categories = '<category value="x" symbol="0" label="x" render="true"/>'
    symbols = _symbol("0", _option("color", "300,-5,12.7,255"))
    assert category_colors(_style("&quot;cls&quot;", categories, symbols), "cls") == {
        "x": "#FF000C"
    }


def test_catch_all_category_and_symbol_without_colour_are_skipped() -> None:
    categories = (
        '<category value="a" symbol="0" label="a" render="true"/>'
        '<category value="" symbol="1" label="all other values" render="true"/>'
        '<category value="b" symbol="2" label="b" render="true"/>'
        '<category value="c" symbol="9" label="c" render="true"/>'
    )
    symbols = (
        _symbol("0", _option("color", "1,2,3,255"))
        + _symbol("1", _option("color", "4,5,6,255"))
        + _symbol("2", _option("outline_width", "0.26"))
    )
    assert category_colors(_style("f", categories, symbols), "f") == {"a": "#010203"}


def test_styles_that_do_not_categorize_the_field_give_nothing() -> None:
    categories = '<category value="a" symbol="0" label="a" render="true"/>'
    symbols = _symbol("0", _option("color", "1,2,3,255"))
    assert category_colors(_style("other", categories, symbols), "class") == {}
    single = _style("class", categories, symbols, renderer="singleSymbol")
    assert category_colors(single, "class") == {}
    assert category_colors(raster_qml({0: "a", 1: "b"}, {}), "class") == {}
    assert category_colors("<qgis><renderer-v2", "class") == {}  # not XML
    assert category_colors("", "class") == {}
