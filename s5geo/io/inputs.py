"""Turning what users type after ``s5geo predict`` / ``s5geo info`` into scenes GDAL can open.

One argument may stand for several scenes, and a scene may live elsewhere than on a local disk:

- a path, or a glob (``tiles/*.tif``, sorted), or a text file of paths, one a line (``@list.txt``
  or any ``.txt`` argument; ``#`` starts a comment, relative paths are relative to the list);
- a VRT mosaic is one scene: GDAL reads it as one raster;
- a remote raster: ``https://...`` / ``http://...`` become ``/vsicurl/...`` and ``s3://...``
  becomes ``/vsis3/...``; GDAL's ``/vsi...`` names are kept as given. GDAL reads them by range
  requests, block by block (never the whole file), retrying transient errors
  (:func:`remote_env`);
- a STAC Item or ItemCollection (``.json`` file or URL), read with pystac: one scene per Item,
  its asset chosen by ``asset`` or by the model's bands (:func:`choose_asset`).
"""

from __future__ import annotations

import glob
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio

from s5geo.errors import UserError

# GDAL's retries of transient HTTP errors (429, 502, 503, 504, timeouts) for remote scenes: the
# defaults of these config options are no retry, so one hiccup of a server would fail a scene.
REMOTE_DEFAULTS = {
    "GDAL_HTTP_MAX_RETRY": "4",
    "GDAL_HTTP_RETRY_DELAY": "1",
    # Without this GDAL lists the remote "folder" to look for sidecar files (.aux.xml, .ovr):
    # one request per scene that S3 and most web servers answer slowly or not at all.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # Adjacent block requests of one read merged into one range request.
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
}

_GLOB = re.compile(r"[*?\[]")
_STAC_SUFFIXES = (".json", ".geojson")
_RASTER_MEDIA = ("image/tiff", "image/vnd.stac.geotiff", "image/jp2", "application/x-vrt")
_RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2")


@dataclass(frozen=True)
class SceneInput:
    """One scene of a run.

    ``name`` is what GDAL opens (a path or a ``/vsi...`` name), ``label`` what the user gave
    (for messages and the run index), ``stem`` the base name of its outputs, ``item_id`` the
    STAC Item it came from, ``asset`` that Item's asset key.
    """

    name: str
    label: str
    stem: str
    item_id: str | None = None
    asset: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_remote(self) -> bool:
        return self.name.startswith(("/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/", "/vsiswift/"))


def to_gdal_name(arg: str) -> str:
    """The GDAL dataset name for ``arg``: URLs mapped to ``/vsicurl/`` and ``/vsis3/``, every
    other name (paths, ``/vsi...`` names) as given, since ``Path()`` would collapse their ``//``.
    """
    lower = arg.lower()
    if lower.startswith(("http://", "https://")):
        return "/vsicurl/" + arg
    if lower.startswith("s3://"):
        return "/vsis3/" + arg[len("s3://") :]
    if lower.startswith(("gs://", "az://")):
        return ("/vsigs/" if lower.startswith("gs") else "/vsiaz/") + arg[5:]
    return arg


def url_of(name: str) -> str | None:
    """The HTTP(S) URL behind a ``/vsicurl/`` name (None for anything else)."""
    if name.startswith("/vsicurl/"):
        return name[len("/vsicurl/") :]
    return None


@contextmanager
def remote_env(**options: str) -> Iterator[None]:
    """A ``rasterio.Env`` with :data:`REMOTE_DEFAULTS` for reading remote scenes; a setting the
    user made in the environment (``GDAL_HTTP_MAX_RETRY=10``) wins over the default."""
    settings = {k: v for k, v in REMOTE_DEFAULTS.items() if k not in os.environ}
    settings.update(options)
    with rasterio.Env(**settings):
        yield


def check_remote(name: str, timeout: float = 30.0) -> dict[str, Any]:
    """Ask the server about the remote scene ``name`` with one HEAD request, and return its
    identity (``url``, ``size``, ``etag``, ``last_modified``), for resuming runs.

    A 404, a refused connection or an unknown host is a :class:`UserError` of one line naming
    the URL: GDAL's own answer for them ("does not exist in the file system, and is not
    recognized as a supported dataset name") does not say which. Names other than ``/vsicurl/``
    are returned as their identity unchecked (S3 and its kin need GDAL's credentials).
    """
    url = url_of(name)
    if url is None:
        return {"name": name}
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            headers = response.headers
    except urllib.error.HTTPError as exc:
        if exc.code in (405, 501):  # a server without HEAD: GDAL will find out itself
            return {"url": url}
        raise UserError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        raise UserError(f"{url}: cannot be reached ({text})") from None
    except OSError as exc:  # timeouts, resets
        raise UserError(f"{url}: cannot be reached ({exc})") from None
    size = headers.get("Content-Length")
    return {
        "url": url,
        "size": int(size) if size and size.isdigit() else None,
        "etag": headers.get("ETag"),
        "last_modified": headers.get("Last-Modified"),
    }


def input_identity(scene: SceneInput) -> dict[str, Any]:
    """What tells whether ``scene`` changed between two runs: for a local scene, each file GDAL
    reads for it (a VRT's sources too) with size and modification time; for a URL, its size,
    ETag and Last-Modified (:func:`check_remote`)."""
    if scene.name.startswith("/vsi"):
        return check_remote(scene.name)
    from s5geo.io.atomic import dataset_files

    files: list[list[Any]] = []
    for path in dataset_files(scene.name):
        try:
            st = path.stat()
        except OSError:
            files.append([str(path), None, None])
            continue
        files.append([str(path.resolve()), st.st_size, st.st_mtime_ns])
    return {"files": files}


def resolve_inputs(
    args: Sequence[str],
    *,
    asset: str | None = None,
    bands: Sequence[int] | None = None,
) -> list[SceneInput]:
    """The scenes that the command-line arguments ``args`` name (module docstring), in order.

    ``asset`` picks the asset of STAC Items by key; without it, ``bands`` (the model's 1-based
    band indices) pick the asset whose band metadata has enough bands (:func:`choose_asset`).
    Raises :class:`UserError` for a glob matching nothing, an empty list, a missing list file or
    two scenes whose outputs would have the same name.
    """
    scenes: list[SceneInput] = []
    for arg in args:
        scenes.extend(_expand(arg, asset=asset, bands=bands, nested=False))
    if not scenes:
        raise UserError("no scenes given")
    seen: dict[str, SceneInput] = {}
    for scene in scenes:
        other = seen.get(scene.stem)
        if other is not None:
            what = "is given twice" if other.name == scene.name else f"and {other.label} both"
            raise UserError(
                f"{scene.label} {what} would write outputs named {scene.stem}: give each scene "
                "once, with distinct file names"
            )
        seen[scene.stem] = scene
    return scenes


def _expand(
    arg: str, *, asset: str | None, bands: Sequence[int] | None, nested: bool
) -> list[SceneInput]:
    name = to_gdal_name(arg)
    remote = name.startswith("/vsi")
    lower = arg.lower().split("?", 1)[0]
    if lower.endswith(_STAC_SUFFIXES):
        return read_stac(arg, asset=asset, bands=bands)
    if not remote and (arg.startswith("@") or lower.endswith(".txt")):
        if nested:
            raise UserError(f"{arg}: a list of scenes cannot name another list")
        return _read_list(Path(arg[1:] if arg.startswith("@") else arg), asset, bands)
    if not remote and _GLOB.search(arg):
        matches = sorted(glob.glob(arg))
        if not matches:
            raise UserError(f"{arg}: no file matches")
        return [_scene(m, m) for m in matches]
    return [_scene(name, arg)]


def _read_list(path: Path, asset: str | None, bands: Sequence[int] | None) -> list[SceneInput]:
    if not path.is_file():
        raise UserError(f"{path}: no such list of scenes")
    scenes: list[SceneInput] = []
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        if "://" not in entry and not entry.startswith("/vsi") and not Path(entry).is_absolute():
            entry = str(path.parent / entry)
        scenes.extend(_expand(entry, asset=asset, bands=bands, nested=True))
    if not scenes:
        raise UserError(f"{path} lists no scenes")
    return scenes


def _scene(name: str, label: str) -> SceneInput:
    return SceneInput(name=name, label=label, stem=_stem(label))


def _stem(text: str) -> str:
    """A file-name stem for ``text`` (a path, URL or Item ID): its last part without suffix,
    characters other than letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``."""
    last = text.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return _safe(last.rsplit(".", 1)[0] if "." in last else last)


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text) or "scene"


# --- STAC -----------------------------------------------------------------------------------


def read_stac(
    href: str, *, asset: str | None = None, bands: Sequence[int] | None = None
) -> list[SceneInput]:
    """One scene per Item of the STAC Item or ItemCollection at ``href`` (file or URL).

    Relative asset hrefs are resolved against ``href``. Each scene's ``stem`` is its Item ID.
    """
    import pystac

    data = _read_json(href)
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "FeatureCollection":
            items = list(pystac.ItemCollection.from_dict(data, preserve_dict=False))
        elif kind == "Feature":
            items = [pystac.Item.from_dict(data, preserve_dict=False)]
        else:
            raise UserError(
                f"{href} is not a STAC Item or ItemCollection (its type is {kind!r}); give "
                "one of those, or the scene itself"
            )
    except (KeyError, ValueError, TypeError, pystac.STACError) as exc:
        raise UserError(f"{href} is not a valid STAC Item or ItemCollection ({exc})") from None
    if not items:
        raise UserError(f"{href} holds no STAC Items")
    scenes = []
    for item in items:
        key = choose_asset(item, asset=asset, bands=bands, source=href)
        asset_href = _absolute(item.assets[key].href, href)
        scenes.append(
            SceneInput(
                name=to_gdal_name(asset_href),
                label=asset_href,
                stem=_safe(item.id),
                item_id=item.id,
                asset=key,
            )
        )
    return scenes


def _read_json(href: str) -> Any:
    if href.lower().startswith(("http://", "https://")):
        check_remote("/vsicurl/" + href)  # the one-line 404 / refused message
        try:
            with urllib.request.urlopen(href, timeout=60) as response:
                text = response.read().decode("utf-8")
        except (urllib.error.URLError, OSError) as exc:
            raise UserError(f"{href}: cannot be read ({exc})") from None
    else:
        path = Path(href)
        if not path.is_file():
            raise UserError(f"{href}: no such file")
        text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{href} is not JSON ({exc.msg}, line {exc.lineno})") from None


def _absolute(asset_href: str, base: str) -> str:
    """``asset_href`` resolved against the STAC document's location ``base``."""
    if "://" in asset_href or asset_href.startswith("/"):
        return asset_href
    if "://" in base:
        return urllib.parse.urljoin(base, asset_href)
    return str(Path(base).resolve().parent / asset_href)


def _band_count(extra: dict[str, Any]) -> int | None:
    """Bands an asset declares in its metadata: ``eo:bands``, ``raster:bands`` or STAC 1.1's
    ``bands``; None when it declares none."""
    counts = [len(extra[k]) for k in ("bands", "eo:bands", "raster:bands") if k in extra]
    return max(counts) if counts else None


def _is_raster(key: str, media_type: str | None, href: str) -> bool:
    if media_type:
        return media_type.split(";", 1)[0].strip().lower() in _RASTER_MEDIA
    return href.lower().split("?", 1)[0].endswith(_RASTER_SUFFIXES)


def choose_asset(
    item: Any, *, asset: str | None = None, bands: Sequence[int] | None = None, source: str = ""
) -> str:
    """The key of ``item``'s asset to segment.

    ``asset`` when given (it must exist). Otherwise, of the raster assets (GeoTIFF, COG, JPEG2000,
    VRT by media type or suffix), the one whose band metadata (``eo:bands`` / ``raster:bands`` /
    ``bands``) has as many bands as the model reads (``max(bands)``) and the fewest such; or
    the only raster asset. Anything else is ambiguous: the error lists the keys for ``asset``.
    """
    keys = list(item.assets)
    where = f"STAC Item {item.id}" + (f" of {source}" if source else "")
    if asset is not None:
        if asset not in item.assets:
            raise UserError(f"{where} has no asset {asset!r} (its assets: {', '.join(keys)})")
        return asset
    rasters = [
        k for k, a in item.assets.items() if _is_raster(k, a.media_type, a.href) and _data_role(a)
    ]
    if not rasters:
        raise UserError(f"{where} has no GeoTIFF asset (its assets: {', '.join(keys)})")
    need = max(bands) if bands else 1
    counted = [(k, _band_count(item.assets[k].extra_fields)) for k in rasters]
    fitting = sorted((n, k) for k, n in counted if n is not None and n >= need)
    if fitting:
        best = [k for n, k in fitting if n == fitting[0][0]]
        if len(best) == 1:
            return best[0]
        rasters = best
    elif len(rasters) == 1:
        return rasters[0]
    raise UserError(
        f"{where} has several image assets that could hold the model's {need} bands "
        f"({', '.join(rasters)}): choose one with --asset KEY"
    )


def _data_role(asset: Any) -> bool:
    """Thumbnails and overviews are images too, but not the scene."""
    roles = set(asset.roles or ())
    return not roles or "data" in roles or not roles & {"thumbnail", "overview", "visual-preview"}
