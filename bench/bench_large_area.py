"""Benchmarks of large-area runs (`s5geo predict ... --out-dir`, docs/LARGE_AREAS.md).

    python bench/bench_large_area.py workers [--scenes 4] [--megapixels 2.5] [--repeats 3]
    python bench/bench_large_area.py blocks [--megapixels 8] [--block-mp 2] [--repeats 3]
    python bench/bench_large_area.py remote [--megapixels 6.25] [--repeats 3]
    python bench/bench_large_area.py estimate --mp-per-s 3.0 [--workers 1,8,32] [--price 1.0]

workers: the same run folder's work (SCENES scenes, VRT mosaics of the real NAIP scenes of about
MEGAPIXELS each, with the bundled model) in one process, on a Dask LocalCluster of 1 worker and
of 2 workers (`--workers N`); each arm a fresh `s5geo predict` process into a fresh folder,
interleaved (A, B, C, A, B, C, ...), medians of wall times and the ratios to the single-process
arm. The 2-worker arm gives each ONNX Runtime session half the cores (s5geo's rule).

blocks: one scene of MEGAPIXELS (a VRT mosaic of the NAIP scene) as one task in one process, as
blocks of BLOCK_MP in one process (the cost of blocks: the window rows two blocks share, run
twice, and the pass that assembles the class COG), and as blocks on a LocalCluster of 2 workers
(one scene spread over workers); interleaved, medians, ratios to the one-task arm.

remote: `s5geo predict` of one COG (made from a VRT mosaic of the NAIP scene) read from the local
disk and over HTTP from a server on 127.0.0.1 that this script starts (single byte ranges, as
object stores serve them), interleaved; medians, the ratio, and the bytes the server sent.

estimate: time and cost to map an area from a measured per-worker throughput (no measuring):
pixels = area / GSD², hours = pixels / (workers x MP/s x 1e6) / 3600, cost = workers x hours x
price per worker-hour.

The machine may be shared with other jobs: only interleaved arms are compared, and the report
says so.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from scenes import data_root, mosaic_vrt  # noqa: E402

NAIP_YEARS = ("20090818", "20150926", "20200831")
S5GEO = [sys.executable, "-m", "s5geo.cli.main"]


def naip_scenes(folder: Path, count: int, megapixels: float) -> list[Path]:
    """``count`` VRT mosaics of about ``megapixels`` each, cycling through the NAIP years."""
    out = []
    for i in range(count):
        year = NAIP_YEARS[i % len(NAIP_YEARS)]
        source = data_root() / "naip" / f"m_4709963_se_14_1_{year}.tif"
        out.append(mosaic_vrt(source, folder / f"scene{i}_{year}.vrt", megapixels))
    return out


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{run.stderr}")
    return time.perf_counter() - start


def interleaved(
    arms: dict[str, list[str]], count: int, megapixels: float, repeats: int, title: str
) -> str:
    """Run `s5geo predict --out-dir` of ``count`` NAIP mosaics with each arm's flags, the arms
    interleaved ``repeats`` times; a table of medians against the first arm."""
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    with tempfile.TemporaryDirectory() as tmp:
        scenes = naip_scenes(Path(tmp), count, megapixels)
        for r in range(repeats):
            for arm, flags in arms.items():
                folder = Path(tmp) / f"run_{r}_{len(times[arm])}_{arm.replace(' ', '_')}"
                cmd = [*S5GEO, "predict", *map(str, scenes), "--out-dir", str(folder), "-q"]
                times[arm].append(wall(cmd + flags))
                shutil.rmtree(folder)
    total = count * megapixels
    first = next(iter(arms))
    base = statistics.median(times[first])
    lines = [
        f"{title} ({total:g} MP), bundled model, {repeats} interleaved repeats, medians:",
        "",
        f"| arm | wall (s) | MP/s | speed vs {first} |",
        "|---|---|---|---|",
    ]
    for arm, values in times.items():
        med = statistics.median(values)
        lines.append(f"| {arm} | {med:.2f} | {total / med:.2f} | {base / med:.2f} |")
    return "\n".join(lines)


def workers(count: int, megapixels: float, repeats: int) -> str:
    arms = {"one process": [], "Dask, 1 worker": ["--workers", "1"],
            "Dask, 2 workers": ["--workers", "2"]}  # fmt: skip
    return interleaved(arms, count, megapixels, repeats, f"{count} scenes of {megapixels:g} MP")


def blocks(megapixels: float, block_mp: float, repeats: int) -> str:
    size = ["--block-mp", f"{block_mp:g}"]
    arms = {
        "one task": ["--block-mp", f"{2 * megapixels:g}"],
        f"blocks of {block_mp:g} MP, one process": size,
        f"blocks of {block_mp:g} MP, Dask, 2 workers": [*size, "--workers", "2"],
    }
    return interleaved(arms, 1, megapixels, repeats, f"one scene of {megapixels:g} MP")


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single byte ranges (206), counting the body bytes sent."""

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
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last) if last else size - 1, size - 1)
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


def remote(megapixels: float, repeats: int) -> str:
    import rasterio.shutil

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "www"
        root.mkdir()
        vrt = naip_scenes(Path(tmp), 1, megapixels)[0]
        cog = root / "scene.tif"
        rasterio.shutil.copy(vrt, cog, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE="512")

        def handler(*a, **k):  # type: ignore[no-untyped-def]
            return RangeHandler(*a, directory=str(root), **k)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/scene.tif"
        arms = {"local file": str(cog), "HTTP, loopback": url}
        times: dict[str, list[float]] = {arm: [] for arm in arms}
        sent = []
        try:
            for r in range(repeats):
                for arm, name in arms.items():
                    out = Path(tmp) / f"out_{r}_{len(times[arm])}"  # the COG and side files
                    out.mkdir()
                    RangeHandler.sent = 0
                    cmd = [*S5GEO, "predict", name, "--out", str(out / "map.tif"), "-q"]
                    times[arm].append(wall(cmd))
                    if name == url:
                        sent.append(RangeHandler.sent)
                    shutil.rmtree(out)
        finally:
            httpd.shutdown()
            httpd.server_close()
        size = cog.stat().st_size
    base = statistics.median(times["local file"])
    lines = [
        f"One COG of {megapixels:g} MP ({size / 1e6:.1f} MB, DEFLATE, 512-px tiles), bundled "
        f"model, {repeats} interleaved repeats, medians; the server sent "
        f"{statistics.median(sent) / size:.2f} x the file's size per run:",
        "",
        "| input | wall (s) | vs local |",
        "|---|---|---|",
    ]
    for arm, values in times.items():
        med = statistics.median(values)
        lines.append(f"| {arm} | {med:.2f} | {med / base:.2f} |")
    return "\n".join(lines)


def estimate(
    mp_per_s: float, counts: list[int], area_km2: float, gsd_m: float, price: float
) -> str:
    megapixels = area_km2 * 1e6 / gsd_m**2 / 1e6
    lines = [
        f"{area_km2:g} km² at {gsd_m:g} m = {megapixels:,.0f} MP; {mp_per_s:g} MP/s per worker "
        f"(given), {price:g} per worker-hour (given):",
        "",
        "| workers | hours | cost |",
        "|---|---|---|",
    ]
    for n in counts:
        hours = megapixels / (n * mp_per_s) / 3600
        lines.append(f"| {n} | {hours:.2f} | {n * hours * price:.2f} |")
    return "\n".join(lines)


def machine() -> str:
    import onnxruntime

    return (
        f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, ONNX Runtime {onnxruntime.__version__}; "
        f"{datetime.date.today().isoformat()}. Shared with other jobs: compare arms of one table."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("workers")
    w.add_argument("--scenes", type=int, default=4)
    w.add_argument("--megapixels", type=float, default=2.5)
    w.add_argument("--repeats", type=int, default=3)
    b = sub.add_parser("blocks")
    b.add_argument("--megapixels", type=float, default=8.0)
    b.add_argument("--block-mp", type=float, default=2.0)
    b.add_argument("--repeats", type=int, default=3)
    r = sub.add_parser("remote")
    r.add_argument("--megapixels", type=float, default=6.25)
    r.add_argument("--repeats", type=int, default=3)
    e = sub.add_parser("estimate")
    e.add_argument("--mp-per-s", type=float, required=True)
    e.add_argument("--workers", default="1,8,32")
    e.add_argument("--area-km2", type=float, default=10_000)
    e.add_argument("--gsd", type=float, default=0.5)
    e.add_argument("--price", type=float, default=1.0)
    args = parser.parse_args()
    if args.what == "workers":
        report = workers(args.scenes, args.megapixels, args.repeats)
    elif args.what == "blocks":
        report = blocks(args.megapixels, args.block_mp, args.repeats)
    elif args.what == "remote":
        report = remote(args.megapixels, args.repeats)
    else:
        counts = [int(n) for n in args.workers.split(",")]
        report = estimate(args.mp_per_s, counts, args.area_km2, args.gsd, args.price)
        print(report)
        return
    print(report + "\n\n" + machine())


if __name__ == "__main__":
    main()
