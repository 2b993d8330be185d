"""Large areas through the CLI: several scenes into a run folder, resume, --keep-going, Dask,
remote scenes over HTTP range requests and STAC ItemCollections (issue 33, phase 1)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from helpers import build_perpixel_model

from s5geo.errors import UserError
from s5geo.io.inputs import choose_asset, resolve_inputs, to_gdal_name

S5GEO = [sys.executable, "-m", "s5geo.cli.main"]
YEARS = ("m_4709963_se_14_1_20090818", "m_4709963_se_14_1_20150926")


def s5geo(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*S5GEO, *map(str, args)], capture_output=True, text=True, timeout=300)


def one_error_line(run: subprocess.CompletedProcess[str], words: str) -> None:
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    assert words in lines[0], lines[0]


def classes(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read(1)


def index_rows(run_dir: Path) -> dict[str, dict[str, object]]:
    df = pyogrio.read_dataframe(run_dir / "run_index.gpkg", layer="scenes")
    return {row["scene"]: row for row in df.to_dict("records")}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return build_perpixel_model(tmp_path / "m.onnx", tile=256)


@pytest.fixture
def naip(real_data: Path, tmp_path: Path) -> list[Path]:
    """Two NAIP years, copied so that a test may break or list them."""
    folder = tmp_path / "scenes"
    folder.mkdir()
    return [
        Path(shutil.copy(real_data / "naip" / f"{name}.tif", folder / f"{name}.tif"))
        for name in YEARS
    ]


# --- inputs, without processes ----------------------------------------------------------------


def test_arguments_resolve_to_gdal_names(tmp_path: Path) -> None:
    assert to_gdal_name("https://h/a.tif") == "/vsicurl/https://h/a.tif"
    assert to_gdal_name("s3://bucket/k/a.tif") == "/vsis3/bucket/k/a.tif"
    assert to_gdal_name("/vsizip//abs/x.zip/a.tif") == "/vsizip//abs/x.zip/a.tif"
    for name in ("a.tif", "b.tif", "c.vrt"):
        (tmp_path / name).write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text("# scenes\nb.tif\n\nhttps://h/x/c.tif?sig=1  # remote\n")
    got = resolve_inputs([str(tmp_path / "*.tif"), str(tmp_path / "c.vrt")])
    assert [s.stem for s in got] == ["a", "b", "c"]
    with pytest.raises(UserError, match="given twice"):
        resolve_inputs([str(tmp_path / "*.tif"), f"@{listing}"])
    got = resolve_inputs([str(tmp_path / "a.tif"), str(listing)])
    assert got[2].name == "/vsicurl/https://h/x/c.tif?sig=1" and got[2].stem == "c"
    with pytest.raises(UserError, match="no file matches"):
        resolve_inputs([str(tmp_path / "*.jp2")])


def test_stac_asset_is_chosen_by_key_or_bands() -> None:
    import pystac

    item = pystac.Item("it", None, None, "2020-01-01T00:00:00Z", {})
    item.add_asset("thumbnail", pystac.Asset("t.png", media_type="image/png", roles=["thumbnail"]))
    rgb = pystac.Asset("rgb.tif", media_type="image/tiff; application=geotiff")
    rgb.extra_fields["eo:bands"] = [{"name": n} for n in "rgb"]
    nir = pystac.Asset("nir.tif", media_type="image/tiff; application=geotiff")
    nir.extra_fields["raster:bands"] = [{}]
    item.add_asset("rgb", rgb)
    item.add_asset("nir", nir)
    assert choose_asset(item, bands=(1, 2, 3)) == "rgb"
    assert choose_asset(item, asset="nir") == "nir"
    with pytest.raises(UserError, match="no asset 'x'"):
        choose_asset(item, asset="x")
    item.assets["nir"].extra_fields["raster:bands"] = [{}, {}, {}]
    with pytest.raises(UserError, match="--asset KEY"):
        choose_asset(item, bands=(1, 2, 3))


# --- several local scenes ---------------------------------------------------------------------


@pytest.mark.realdata
def test_several_scenes_resume_and_restart(naip: list[Path], model: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    listing = tmp_path / "list.txt"
    listing.write_text(f"scenes/{naip[1].name}\n")
    args = ("predict", naip[0], f"@{listing}", "--out-dir", run_dir, "--model", model)
    first = s5geo(*args, "--polygons")
    assert first.returncode == 0, first.stderr
    assert f"mosaic: {run_dir / 'mosaic.vrt'}" in first.stdout
    for scene in naip:  # each scene's COG equals a single-scene run's
        single = tmp_path / f"single_{scene.stem}.tif"
        assert s5geo("predict", scene, "--out", single, "--model", model, "-q").returncode == 0
        assert (classes(run_dir / f"{scene.stem}.tif") == classes(single)).all()
        assert pyogrio.read_info(run_dir / f"{scene.stem}.gpkg", layer="landcover")["features"]
    rows = index_rows(run_dir)
    assert {r["status"] for r in rows.values()} == {"done"} and len(rows) == 2
    manifest = json.loads((run_dir / "s5geo-run.json").read_text())
    assert {r["model_sha256"] for r in rows.values()} == {manifest["model_sha256"]}
    with rasterio.open(run_dir / "mosaic.vrt") as vrt, rasterio.open(naip[0]) as src:
        assert vrt.crs == src.crs and vrt.colormap(1)[0][:3] == (0, 0, 255)
        assert (vrt.read(1) != 255).any()

    # One scene's outputs lost (a crash before it finished): only that scene runs again.
    kept = run_dir / f"{naip[0].stem}.tif"
    lost = run_dir / f"{naip[1].stem}.tif"
    kept_stat, before = kept.stat(), lost.read_bytes()
    lost.unlink()
    second = s5geo(*args, "--polygons")
    assert second.returncode == 0, second.stderr
    assert "resuming: 1 of 2 scenes already done" in second.stderr
    assert lost.read_bytes() == before
    assert kept.stat().st_mtime_ns == kept_stat.st_mtime_ns
    assert {r["status"] for r in index_rows(run_dir).values()} == {"done", "skipped"}

    # A changed option: every scene again, saying why.
    third = s5geo(*args, "--polygons", "--overlap", "32")
    assert third.returncode == 0, third.stderr
    assert re.search(r"starting afresh: options changed \(overlap None → 32\)", third.stderr)
    assert {r["status"] for r in index_rows(run_dir).values()} == {"done"}


@pytest.mark.realdata
def test_block_mp_runs_a_scene_in_blocks(naip: list[Path], model: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run = s5geo("predict", naip[0], "--out-dir", run_dir, "--model", model, "--block-mp", "0.2")
    assert run.returncode == 0, run.stderr
    assert re.search(r"block (\d+)/\1 done \([\d.]+ s\); blocks \1/\1; run [\d.]+ MP/s", run.stderr)
    single = tmp_path / "single.tif"
    assert s5geo("predict", naip[0], "--out", single, "--model", model, "-q").returncode == 0
    assert (run_dir / f"{naip[0].stem}.tif").read_bytes() == single.read_bytes()
    zero = s5geo("predict", naip[0], "--out-dir", run_dir, "--model", model, "--block-mp", "0")
    one_error_line(zero, "--block-mp")


@pytest.mark.realdata
def test_keep_going_records_a_broken_scene(naip: list[Path], model: Path, tmp_path: Path) -> None:
    broken = naip[1].with_name("broken.tif")
    broken.write_bytes(naip[1].read_bytes()[:40_000])  # truncated: its header opens
    run_dir = tmp_path / "run"
    stopped = s5geo("predict", naip[0], broken, "--out-dir", run_dir, "--model", model, "-q")
    one_error_line(stopped, "broken.tif")
    run = s5geo("predict", naip[0], broken, "--out-dir", run_dir, "--model", model,
                "--keep-going", "-q")  # fmt: skip
    assert run.returncode == 3, run.stderr
    assert "failed: " in run.stderr and "broken.tif" in run.stderr
    rows = index_rows(run_dir)
    assert rows["broken"]["status"] == "failed" and rows["broken"]["error"]
    assert rows[naip[0].stem]["status"] in ("done", "skipped")
    assert (run_dir / "mosaic.vrt").exists()


# --- Dask -------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_dask_output_equals_single_process(naip: list[Path], model: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    local = s5geo("predict", *naip, "--out-dir", tmp_path / "local", "--model", model, "-q")
    assert local.returncode == 0, local.stderr
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:  # fmt: skip
        remote = s5geo("predict", *naip, "--out-dir", tmp_path / "dask", "--model", model,
                       "--scheduler", cluster.scheduler_address, "--with-confidence")  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert "[2/2]" in remote.stderr and "MP/s" in remote.stderr
    own = s5geo("predict", *naip, "--out-dir", tmp_path / "own", "--model", model,
                "--workers", "2", "-q")  # fmt: skip
    assert own.returncode == 0, own.stderr
    for scene in naip:
        expected = classes(tmp_path / "local" / f"{scene.stem}.tif")
        assert (classes(tmp_path / "dask" / f"{scene.stem}.tif") == expected).all()
        assert (classes(tmp_path / "own" / f"{scene.stem}.tif") == expected).all()
        assert (tmp_path / "dask" / f"{scene.stem}_confidence.tif").exists()


# --- remote scenes and STAC -------------------------------------------------------------------


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single byte-range requests (206), counting the body bytes sent."""

    sent = 0
    lock = threading.Lock()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        wanted = self.headers.get("Range")
        if not path.is_file() or not wanted:
            return super().send_head()
        size = path.stat().st_size
        start_text, _, end_text = wanted.removeprefix("bytes=").partition("-")
        start = int(start_text)
        end = min(int(end_text) if end_text else size - 1, size - 1)
        self.send_response(206)
        self.send_header("Content-Type", "image/tiff")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        f = path.open("rb")
        f.seek(start)
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        remaining = getattr(self, "_remaining", None)
        data = source.read() if remaining is None else source.read(remaining)
        with RangeHandler.lock:
            RangeHandler.sent += len(data)
        outputfile.write(data)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **k: RangeHandler(*a, directory=str(root), **k)  # noqa: E731
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.sent = 0
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.realdata
def test_remote_scene_is_read_by_ranges(
    naip: list[Path], model: Path, tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, root = server
    served = Path(shutil.copy(naip[0], root / naip[0].name))
    size = served.stat().st_size
    info = s5geo("info", f"{url}/{served.name}", "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["width"] == 934
    # The header and the first and last blocks (of four, in this small scene) that the
    # readability check reads.
    assert 0 < RangeHandler.sent < size / 2
    out = tmp_path / "remote.tif"
    RangeHandler.sent = 0
    run = s5geo("predict", f"{url}/{served.name}", "--out", out, "--model", model, "-q")
    assert run.returncode == 0, run.stderr
    assert RangeHandler.sent < size  # never the whole file (its overview is never read)
    local = tmp_path / "local.tif"
    assert s5geo("predict", naip[0], "--out", local, "--model", model, "-q").returncode == 0
    assert (classes(out) == classes(local)).all()

    one_error_line(s5geo("predict", f"{url}/missing.tif", "--out", tmp_path / "x.tif"), "404")
    refused = f"http://127.0.0.1:{closed_port()}/a.tif"
    one_error_line(s5geo("predict", refused, "--out", tmp_path / "y.tif"), "cannot be reached")
    one_error_line(s5geo("info", f"{url}/missing.tif"), "404")


@pytest.mark.realdata
def test_stac_item_collection(
    naip: list[Path], model: Path, tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, root = server
    shutil.copy(naip[1], root / naip[1].name)

    def item(item_id: str, href: str) -> dict[str, object]:
        return {
            "type": "Feature", "stac_version": "1.0.0", "id": item_id,
            "geometry": None, "properties": {"datetime": "2020-08-31T00:00:00Z"}, "links": [],
            "assets": {
                "thumbnail": {"href": "t.png", "type": "image/png", "roles": ["thumbnail"]},
                "image": {"href": href, "type": "image/tiff; application=geotiff",
                          "roles": ["data"], "eo:bands": [{"name": b} for b in "rgbn"]},
            },
        }  # fmt: skip

    collection = tmp_path / "items.json"
    collection.write_text(json.dumps({"type": "FeatureCollection", "features": [
        item("naip-2009", f"scenes/{naip[0].name}"),  # relative to the JSON file
        item("naip-2015", f"{url}/{naip[1].name}"),
    ]}))  # fmt: skip
    run_dir = tmp_path / "run"
    run = s5geo("predict", collection, "--out-dir", run_dir, "--model", model, "-q")
    assert run.returncode == 0, run.stderr
    rows = index_rows(run_dir)
    assert set(rows) == {"naip-2009", "naip-2015"}
    assert {r["item_id"] for r in rows.values()} == {"naip-2009", "naip-2015"}
    assert {r["asset"] for r in rows.values()} == {"image"}
    assert rows["naip-2015"]["input"] == f"{url}/{naip[1].name}"
    assert (classes(run_dir / "naip-2015.tif") != 255).any()
    described = s5geo("info", collection, "--json")
    assert described.returncode == 0, described.stderr
    assert [d["item_id"] for d in json.loads(described.stdout)] == ["naip-2009", "naip-2015"]
