"""QGIS layer styles (QML) for class rasters and class polygons, as QGIS 3.22 writes them.

A ``.qml`` file beside a raster, or a row of a GeoPackage's ``layer_styles`` table, makes QGIS open
the layer coloured and labelled by class. The XML follows what QGIS 3.22 (the oldest QGIS the
plugin supports) itself saves:

- rasters: the ``paletted`` renderer on band 1, one ``paletteEntry`` per class, and the nodata value
  listed as fully transparent in ``rasterTransparency`` (QGIS already hides the file's own nodata;
  the entry keeps it hidden when a user turns "use source nodata" off);
- polygons: a ``categorizedSymbol`` renderer (``renderer-v2``) on the class field, one
  ``SimpleFill`` symbol per class with a thin, darker outline. Symbol-layer properties are
  written twice, as an ``<Option type="Map">`` and as legacy ``<prop k v>`` pairs, exactly as
  QGIS 3.22 does, so both older and newer QGIS versions read them.

``styleCategories`` names what the style sets (symbology, and for rasters the nearest-neighbour
resampling), so loading it leaves the layer's other settings alone.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

QGIS_VERSION = "3.22.0-Białowieża"
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
_OUTLINE_DARKEN = 0.6  # outline colour = fill colour times this factor
_OUTLINE_WIDTH_MM = "0.26"
# Colours for classes without one in ``class_colors`` (a qualitative palette, cycled).
_FALLBACK_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_UNIT_SCALE = "3x:0,0,0,0,0,0"


def class_rgb(class_id: int, class_colors: dict[int, str]) -> tuple[int, int, int]:
    """The class's colour as (r, g, b) from a ``#RRGGBB`` string (a fixed palette when missing).

    Raises ValueError for anything but ``#RRGGBB``: eight hex digits are ambiguous (Qt reads them as
    ``#AARRGGBB``, the web as ``#RRGGBBAA``).
    """
    text = class_colors.get(class_id, _FALLBACK_COLORS[class_id % len(_FALLBACK_COLORS)])
    digits = text[1:] if text.startswith("#") else ""
    if len(digits) != 6:
        raise ValueError(f"class {class_id}: colour {text!r} is not #RRGGBB")
    try:
        r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    except ValueError:
        raise ValueError(f"class {class_id}: colour {text!r} is not #RRGGBB") from None
    return r, g, b


def raster_qml(class_names: dict[int, str], class_colors: dict[int, str], nodata: int = 255) -> str:
    """A paletted style for a single-band class raster: class colours and names, nodata hidden."""
    root = _qgis_root("Symbology|Rendering")
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(
        provider,
        "resampling",
        enabled="false",
        zoomedInResamplingMethod="nearestNeighbour",
        zoomedOutResamplingMethod="nearestNeighbour",
        maxOversampling="2",
    )
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="paletted",
        band="1",
        opacity="1",
        alphaBand="-1",
        nodataColor="",
    )
    transparency = ET.SubElement(renderer, "rasterTransparency")
    pixels = ET.SubElement(transparency, "singleValuePixelList")
    ET.SubElement(
        pixels, "pixelListEntry", min=str(nodata), max=str(nodata), percentTransparent="100"
    )
    _min_max_origin(renderer)
    palette = ET.SubElement(renderer, "colorPalette")
    for class_id in sorted(class_names):
        r, g, b = class_rgb(class_id, class_colors)
        ET.SubElement(
            palette,
            "paletteEntry",
            value=str(class_id),
            color=f"#{r:02x}{g:02x}{b:02x}",
            alpha="255",
            label=class_names[class_id],
        )
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(
        pipe,
        "huesaturation",
        colorizeOn="0",
        saturation="0",
        grayscaleMode="0",
        colorizeRed="255",
        colorizeGreen="128",
        colorizeBlue="128",
        colorizeStrength="100",
        invertColors="0",
    )
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"
    ET.SubElement(root, "blendMode").text = "0"
    return _serialize(root)


def vector_qml(
    class_names: dict[int, str],
    class_colors: dict[int, str],
    field: str = "class_id",
    values: dict[int, str] | None = None,
) -> str:
    """A categorized polygon style on ``field``: one fill per class, labelled with its name.

    ``values`` are the field's value for each class id when the field holds something else than
    the ids (e.g. the class names of a labels layer); by default the ids themselves.
    """
    root = _qgis_root("Symbology")
    renderer = ET.SubElement(
        root,
        "renderer-v2",
        type="categorizedSymbol",
        attr=field,
        forceraster="0",
        symbollevels="0",
        enableorderby="0",
        referencescale="-1",
    )
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for index, class_id in enumerate(sorted(class_names)):
        ET.SubElement(
            categories,
            "category",
            render="true",
            symbol=str(index),
            value=values[class_id] if values is not None else str(class_id),
            label=class_names[class_id],
        )
        _fill_symbol(symbols, str(index), class_rgb(class_id, class_colors))
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    # QGIS refuses a style whose geometry type differs from the layer's: 2 = polygon.
    ET.SubElement(root, "layerGeometryType").text = "2"
    return _serialize(root)


def _qgis_root(categories: str) -> ET.Element:
    return ET.Element(
        "qgis",
        version=QGIS_VERSION,
        styleCategories=categories,
        hasScaleBasedVisibilityFlag="0",
        minScale="1e+08",
        maxScale="0",
    )


def _min_max_origin(renderer: ET.Element) -> None:
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(origin, tag).text = text


def _fill_symbol(parent: ET.Element, name: str, rgb: tuple[int, int, int]) -> None:
    """A ``fill`` symbol with one SimpleFill layer, its properties as QGIS 3.22 writes them."""
    r, g, b = rgb
    dark = tuple(round(c * _OUTLINE_DARKEN) for c in rgb)
    props = {
        "border_width_map_unit_scale": _UNIT_SCALE,
        "color": f"{r},{g},{b},255",
        "joinstyle": "bevel",
        "offset": "0,0",
        "offset_map_unit_scale": _UNIT_SCALE,
        "offset_unit": "MM",
        "outline_color": f"{dark[0]},{dark[1]},{dark[2]},255",
        "outline_style": "solid",
        "outline_width": _OUTLINE_WIDTH_MM,
        "outline_width_unit": "MM",
        "style": "solid",
    }
    symbol = ET.SubElement(
        parent, "symbol", type="fill", name=name, alpha="1", force_rhr="0", clip_to_extent="1"
    )
    _empty_data_defined(symbol)
    layer = ET.SubElement(symbol, "layer", attrib={"class": "SimpleFill"})
    layer.set("enabled", "1")
    layer.set("locked", "0")
    layer.set("pass", "0")
    options = ET.SubElement(layer, "Option", type="Map")
    for key, value in props.items():
        ET.SubElement(options, "Option", type="QString", name=key, value=value)
    for key, value in props.items():
        ET.SubElement(layer, "prop", k=key, v=value)
    _empty_data_defined(layer)


def _empty_data_defined(parent: ET.Element) -> None:
    """The empty data-defined property collection QGIS writes for every symbol and layer."""
    element = ET.SubElement(parent, "data_defined_properties")
    options = ET.SubElement(element, "Option", type="Map")
    ET.SubElement(options, "Option", type="QString", name="name", value="")
    ET.SubElement(options, "Option", name="properties")
    ET.SubElement(options, "Option", type="QString", name="type", value="collection")


def _serialize(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    return _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode") + "\n"
