"""Class colours from a QGIS categorized style (QML), so a fitted model keeps the analyst's legend.

QGIS stores a layer's style as QML: a ``categorizedSymbol`` renderer names its attribute, lists
``<category value=... symbol=...>`` entries, and describes each symbol's fill colour either as
``<prop k="color" v="r,g,b,a"/>`` (QGIS < 3.26) or ``<Option name="color" value="r,g,b,a"/>``.
Only the parts needed for colours are read; anything else in the style is ignored.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET


def _hex(rgba: str) -> str | None:
    parts = rgba.split(",")[:3]
    try:
        r, g, b = (max(0, min(255, int(float(p)))) for p in parts)
    except ValueError:
        return None
    return f"#{r:02X}{g:02X}{b:02X}"


def _symbol_color(symbol: ET.Element) -> str | None:
    """The first symbol layer's fill colour (``color``, or ``fill_color`` in some layers)."""
    for layer in symbol.iter("layer"):
        for tag, key, value in (("prop", "k", "v"), ("Option", "name", "value")):
            for item in layer.iter(tag):
                if item.get(key) in ("color", "fill_color") and item.get(value):
                    color = _hex(item.get(value, ""))
                    if color:
                        return color
    return None


def category_colors(qml: str, field: str) -> dict[str, str]:
    """Category value -> ``#RRGGBB`` when ``qml`` categorizes by ``field``, else empty.

    The categories keep the style's order (dicts are ordered): it becomes the classes' order.
    """
    try:
        root = ET.fromstring(qml)
    except ET.ParseError:
        return {}
    renderer = root.find(".//renderer-v2")
    if renderer is None or renderer.get("type") != "categorizedSymbol":
        return {}
    if (renderer.get("attr") or "").strip('"') != field:
        return {}
    symbols = {s.get("name"): s for s in renderer.iter("symbol")}
    out: dict[str, str] = {}
    for category in renderer.iter("category"):
        value, symbol = category.get("value"), symbols.get(category.get("symbol"))
        if value is None or value == "" or symbol is None:
            continue
        color = _symbol_color(symbol)
        if color:
            out[value] = color
    return out
