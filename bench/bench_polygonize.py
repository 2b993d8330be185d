"""Benchmark: class raster to GeoPackage polygons, s5geo against two peers.

    nice -n 10 .venv/bin/python bench/bench_polygonize.py --out bench/out --sizes 25 --repeats 3
    .venv/bin/python bench/bench_polygonize.py --out bench/out --profile predicted --repeats 5

Methods, each run in its own process (wall time, and peak RSS from the kernel via wait4):

- ``s5geo``: ``s5geo.vector.polygonize_raster`` with its defaults (strips of at most 1024 rows and
  1 MP, streaming, seam-free; regions crossing strips spilled to a temporary file until they end);
- ``rasterio``: the whole class raster read into memory, ``rasterio.features.shapes`` over it,
  shapely polygons, areas, one ``pyogrio.raw.write`` of the same GeoPackage layer (GPKG 1.2,
  spatial index) and the same QGIS style;
- ``gdal``: Debian's ``gdal_polygonize.py`` (``apt-get install gdal-bin python3-gdal``) run with
  ``/usr/bin/python3``, writing a GeoPackage with a class_id field (no names, areas or style).

The land-cover raster is built from the real NAIP scene ($S5GEO_DATA/naip, default
/work/shared/data): pixels classified by spectral rules into five classes (water, built, bare,
grass, trees) from NDVI, brightness and NIR, then the scene's classes are tiled, mirrored so
regions run on across tile edges, to about 25 or 100 megapixels in ``--out``. Methods run
interleaved (the order rotates each repeat); the table gives medians and ratios to s5geo, plus
polygon counts, invalid geometries and total area of each output.

``--profile RASTER`` (``predicted``: the bundled model's class map of the 25 MP VRT mosaic of the
NAIP scene, made once with ``s5geo predict``; ``landcover``: the 25 MP raster above) times, in
one process, each stage of ``polygonize_raster`` (reading, tracing, conversion to geometries,
merging across strips, simplification, areas, writing; timers wrapped around the functions that
do each) and, interleaved with it, the physical limits on the same raster: reading it whole,
labelling its 4-connected regions with ``scipy.ndimage.label`` (one pass per class), GDAL's
polygonizer through ``rasterio.features.shapes`` over the whole raster (the iterator consumed),
and Debian's ``gdal_polygonize.py`` to a GeoPackage (a subprocess). Medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NAIP = "naip/m_4709963_se_14_1_20200831.tif"
CLASS_NAMES = {0: "water", 1: "built", 2: "bare", 3: "grass", 4: "trees"}
CLASS_COLORS = {0: "#1f78b4", 1: "#e31a1c", 2: "#fdbf6f", 3: "#b2df8a", 4: "#33a02c"}
TILES = {1: 1, 25: 6, 100: 12}  # k x k NAIP scenes (934 x 723 px): 0.7, 24.3 and 97.2 MP
GDAL_POLYGONIZE = ("/usr/bin/python3", "/usr/bin/gdal_polygonize.py")
METHODS = ("s5geo", "rasterio", "gdal")


def classify_naip(data_root: Path) -> tuple[np.ndarray, dict]:
    """Five land-cover classes of the NAIP scene by spectral rules; nodata (255) where it has none.

    Returns the classes and a rasterio profile (CRS, transform) for them.
    """
    import rasterio

    with rasterio.open(data_root / NAIP) as src:
        r, g, b, nir = src.read().astype(np.float32)
        valid = src.read_masks(1) > 0
        profile = {"crs": src.crs, "transform": src.transform}
    ndvi = (nir - r) / np.maximum(nir + r, 1.0)
    brightness = (r + g + b) / 3
    classes = np.full(r.shape, 2, dtype=np.uint8)  # bare soil, cropland
    classes[ndvi > 0.15] = 3  # grass
    classes[ndvi > 0.35] = 4  # trees
    classes[(brightness > 150) & (ndvi < 0.1)] = 1  # built, bright bare
    classes[(nir < 50) & (ndvi < 0.05)] = 0  # water
    classes[~valid] = 255
    return classes, profile


def build_raster(out: Path, size: int, data_root: Path) -> Path:
    """The ~``size`` MP land-cover raster (tiled GeoTIFF, 512-px tiles, DEFLATE), built once."""
    path = out / f"landcover_{size}mp.tif"
    if path.exists():
        return path
    import rasterio

    classes, profile = classify_naip(data_root)
    k = TILES[size]
    row = np.concatenate([classes if j % 2 == 0 else classes[:, ::-1] for j in range(k)], axis=1)
    mosaic = np.concatenate([row if i % 2 == 0 else row[::-1] for i in range(k)], axis=0)
    profile.update(
        driver="GTiff",
        width=mosaic.shape[1],
        height=mosaic.shape[0],
        count=1,
        dtype="uint8",
        nodata=255,
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
    )
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(mosaic, 1)
    tmp.rename(path)
    return path


def run_s5geo(raster: Path, out: Path) -> None:
    from s5geo.vector import polygonize_raster

    polygonize_raster(raster, out, class_names=CLASS_NAMES, class_colors=CLASS_COLORS)


def run_rasterio(raster: Path, out: Path) -> None:
    """The in-memory way: the whole raster, all polygons, one write (same layer and style)."""
    import pyogrio.raw
    import rasterio
    import rasterio.features
    import shapely
    import shapely.geometry

    from s5geo.io.gpkg import write_default_style
    from s5geo.io.qgis_style import vector_qml

    with rasterio.open(raster) as src:
        classes = src.read(1)
        crs, transform = src.crs, src.transform
    _, unit = crs.linear_units_factor
    shapes = rasterio.features.shapes(classes, mask=classes != 255, transform=transform)
    geoms, values = [], []
    for geom, value in shapes:
        geoms.append(shapely.geometry.shape(geom))
        values.append(int(value))
    polygons = np.array(geoms, dtype=object)
    class_id = np.array(values, dtype=np.int32)
    names = np.array([CLASS_NAMES[v] for v in values], dtype=object)
    area = shapely.area(polygons) * unit**2
    fields = [class_id, names, area]
    pyogrio.raw.write(
        out,
        shapely.to_wkb(polygons),
        fields,
        ["class_id", "class_name", "area_m2"],
        layer="landcover",
        driver="GPKG",
        geometry_type="Polygon",
        crs=crs.to_wkt(),
        dataset_options={"VERSION": "1.2"},
        layer_options={"SPATIAL_INDEX": "YES"},
    )
    write_default_style(out, "landcover", vector_qml(CLASS_NAMES, CLASS_COLORS))


def command(method: str, raster: Path, out: Path) -> list[str]:
    if method == "gdal":
        return [
            *GDAL_POLYGONIZE,
            "-q",
            str(raster),
            "-f",
            "GPKG",
            str(out),
            "landcover",
            "class_id",
        ]
    return [sys.executable, __file__, "--run", method, str(raster), str(out)]


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (MiB) of one process run to completion.

    The peak is the kernel's (``ru_maxrss`` from wait4). Linux counts in it the memory the forked
    child shared with this process before exec, so this process stays small: outputs are
    inspected in a subprocess too.
    """
    start = time.perf_counter()
    pid = subprocess.Popen(cmd).pid
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if code := os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{cmd} exited with {code}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def inspect(path: Path) -> dict[str, float]:
    """Polygon count, invalid geometries and total planar area of an output layer (in chunks)."""
    import pyogrio
    import pyogrio.raw
    import shapely

    total = pyogrio.read_info(path, layer="landcover")["features"]
    invalid, area = 0, 0.0
    for start in range(0, total, 500_000):
        _, _, wkb, _ = pyogrio.raw.read(
            path, layer="landcover", skip_features=start, max_features=500_000, columns=[]
        )
        geoms = shapely.from_wkb(wkb)
        invalid += int((~shapely.is_valid(geoms)).sum())
        area += float(shapely.area(geoms).sum())
    return {"polygons": total, "invalid": invalid, "area_m2": area}


def benchmark(args: argparse.Namespace) -> None:
    import psutil

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(os.environ.get("S5GEO_DATA", "/work/shared/data"))
    methods = [m for m in args.methods.split(",") if m]
    if "gdal" in methods and not Path(GDAL_POLYGONIZE[1]).exists():
        print(
            "gdal_polygonize.py not found: install it with `apt-get install gdal-bin"
            " python3-gdal` (Debian); benchmarking without it"
        )
        methods.remove("gdal")
    results_path = out / "polygonize_results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for size in (int(s) for s in args.sizes.split(",")):
        raster = build_raster(out, size, data_root)
        runs: dict[str, list[tuple[float, float]]] = {m: [] for m in methods}
        checks: dict[str, dict[str, float]] = {}
        for repeat in range(args.repeats):
            order = methods[repeat % len(methods) :] + methods[: repeat % len(methods)]
            for method in order:
                target = out / f"{method}_{size}mp.gpkg"
                target.unlink(missing_ok=True)
                own = psutil.Process().memory_info().rss / 2**20  # a floor for the child's peak
                seconds, mib = measure(command(method, raster, target))
                runs[method].append((seconds, mib))
                print(
                    f"{size} MP  repeat {repeat + 1}  {method:9s} {seconds:8.1f} s {mib:8.0f} MiB"
                    f"  (bench process {own:.0f} MiB at the start)",
                    flush=True,
                )
                if method not in checks:
                    inspected = subprocess.run(
                        [sys.executable, __file__, "--inspect", str(target)],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    checks[method] = json.loads(inspected.stdout)
        results[str(size)] = {
            "raster": str(raster),
            "megapixels": round(_megapixels(raster), 1),
            "runs": runs,
            "checks": checks,
        }
        results_path.write_text(json.dumps(results, indent=1))
        print(table(results[str(size)], methods))
    _record_machine(out)


def table(result: dict, methods: list[str]) -> str:
    """A markdown table: medians, ratios to s5geo, and the outputs' checks."""
    med = {m: [statistics.median(v) for v in zip(*result["runs"][m], strict=True)] for m in methods}
    base_s, base_mib = med.get("s5geo", (float("nan"), float("nan")))
    lines = [
        f"{result['megapixels']} MP, {len(result['runs'][methods[0]])} repeat(s), medians:",
        "",
        "| method | wall s | peak RSS MiB | time / s5geo | RSS / s5geo | polygons | invalid |"
        " total area km² |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in methods:
        seconds, mib = med[m]
        check = result["checks"][m]
        lines.append(
            f"| {m} | {seconds:.1f} | {mib:.0f} | {seconds / base_s:.2f} | {mib / base_mib:.2f} |"
            f" {check['polygons']:,} | {check['invalid']} | {check['area_m2'] / 1e6:.3f} |"
        )
    return "\n".join(lines)


def _megapixels(raster: Path) -> float:
    import rasterio

    with rasterio.open(raster) as src:
        return src.width * src.height / 1e6


def _record_machine(out: Path) -> None:
    import platform

    import psutil

    text = (
        f"{platform.platform()}, {psutil.cpu_count()} CPUs,"
        f" {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, Python {platform.python_version()},"
        f" load average at the end {os.getloadavg()[0]:.1f}"
    )
    (out / "polygonize_machine.txt").write_text(text + "\n")
    print(text)


def _timed_generator(gen_fn, seconds: list[float]):  # type: ignore[no-untyped-def]
    """``gen_fn`` whose generators add the time spent inside them to ``seconds[0]``."""

    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        it = gen_fn(*args, **kwargs)
        while True:
            start = time.perf_counter()
            try:
                item = next(it)
            except StopIteration:
                seconds[0] += time.perf_counter() - start
                return
            seconds[0] += time.perf_counter() - start
            yield item

    return wrapper


def _timed(fn, seconds: list[float]):  # type: ignore[no-untyped-def]
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[0] += time.perf_counter() - start

    return wrapper


STAGES = ("reading", "tracing", "conversion to geometries", "merging across strips",
          "simplification", "areas", "writing")  # fmt: skip


def profile_stages(raster: Path, out: Path) -> dict[str, float]:
    """One ``polygonize_raster`` of ``raster`` with a timer around each stage's functions."""
    import rasterio.features

    import s5geo.io.gpkg as gpkg
    import s5geo.vector.area as area
    import s5geo.vector.merge as merge
    import s5geo.vector.polygonize as polygonize
    import s5geo.vector.shapes as shapes

    clocks = {stage: [0.0] for stage in STAGES}
    patches = [
        (polygonize, "read_strip", _timed(polygonize.read_strip, clocks["reading"])),
        (rasterio.features, "shapes",
         _timed_generator(rasterio.features.shapes, clocks["tracing"])),
        (shapes, "_to_shapely", _timed(shapes._to_shapely, clocks["conversion to geometries"])),
        (polygonize, "to_world", _timed(polygonize.to_world, clocks["conversion to geometries"])),
        (merge.SeamMerger, "add", _timed(merge.SeamMerger.add, clocks["merging across strips"])),
        (merge.SeamMerger, "end_strip",
         _timed_generator(merge.SeamMerger.end_strip, clocks["merging across strips"])),
        (polygonize, "simplify_coverage",
         _timed(polygonize.simplify_coverage, clocks["simplification"])),
        (polygonize, "split_at_pixel_corners",
         _timed(polygonize.split_at_pixel_corners, clocks["simplification"])),
        (area.GroundMetrics, "areas_m2", _timed(area.GroundMetrics.areas_m2, clocks["areas"])),
        (area.GroundMetrics, "large_area_m2",
         _timed(area.GroundMetrics.large_area_m2, clocks["areas"])),
        (gpkg._LayerWriter, "write", _timed(gpkg._LayerWriter.write, clocks["writing"])),
        (gpkg._LayerWriter, "finish", _timed(gpkg._LayerWriter.finish, clocks["writing"])),
        (polygonize, "write_default_style",
         _timed(polygonize.write_default_style, clocks["writing"])),
    ]  # fmt: skip
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, wrapped in patches:
        setattr(owner, name, wrapped)
    try:
        out.unlink(missing_ok=True)
        start = time.perf_counter()
        polygonize.polygonize_raster(
            raster, out, class_names=CLASS_NAMES, class_colors=CLASS_COLORS
        )
        total = time.perf_counter() - start
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    times = {stage: clock[0] for stage, clock in clocks.items()}
    times["other"] = total - sum(times.values())
    times["total"] = total
    return times


def limits(raster: Path, out: Path) -> dict[str, float]:
    """The physical limits on ``raster`` (module docstring), seconds each."""
    import rasterio
    import rasterio.features
    from scipy import ndimage

    times = {}
    start = time.perf_counter()
    with rasterio.open(raster) as src:
        classes = src.read(1)
        nodata = 255 if src.nodata is None else int(src.nodata)
    times["reading the raster whole"] = time.perf_counter() - start
    start = time.perf_counter()
    structure = ndimage.generate_binary_structure(2, 1)  # 4-connected
    regions = 0
    for value in np.unique(classes).tolist():
        if value != nodata:
            regions += ndimage.label(classes == value, structure=structure)[1]
    times["scipy.ndimage.label, one pass per class"] = time.perf_counter() - start
    start = time.perf_counter()
    count = sum(1 for _ in rasterio.features.shapes(classes, mask=classes != nodata))
    times["rasterio.features.shapes, whole raster"] = time.perf_counter() - start
    if count != regions:
        raise RuntimeError(f"{count} polygons but {regions} labelled regions")
    del classes
    if Path(GDAL_POLYGONIZE[1]).exists():
        target = out.with_name("profile_gdal.gpkg")
        target.unlink(missing_ok=True)
        times["gdal_polygonize.py to GeoPackage (process)"] = measure(
            command("gdal", raster, target)
        )[0]
    times["regions"] = regions
    return times


def predicted_raster(out: Path) -> Path:
    """The bundled model's class map of the 25 MP VRT mosaic of the NAIP scene, made once."""
    path = out / "predicted_25mp.tif"
    if not path.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from scenes import mosaic_vrt, naip_path

        scene = mosaic_vrt(naip_path(), out / "naip_25mp.vrt", 25)
        subprocess.run(
            [sys.executable, "-m", "s5geo.cli.main", "predict", str(scene), "--out", str(path),
             "--quiet"], check=True,
        )  # fmt: skip
    return path


def profile(args: argparse.Namespace) -> None:
    """Stage shares of ``polygonize_raster`` and the physical limits, interleaved."""
    args.out.mkdir(parents=True, exist_ok=True)
    if args.profile == "predicted":
        raster = predicted_raster(args.out)
    elif args.profile == "landcover":
        data_root = Path(os.environ.get("S5GEO_DATA", "/work/shared/data"))
        raster = build_raster(args.out, 25, data_root)
    else:
        raster = Path(args.profile)
    target = args.out / "profile_s5geo.gpkg"
    stages: list[dict[str, float]] = []
    bounds: list[dict[str, float]] = []
    for repeat in range(args.repeats):
        runs = [lambda: stages.append(profile_stages(raster, target)),
                lambda: bounds.append(limits(raster, target))]  # fmt: skip
        for run in runs[repeat % 2 :] + runs[: repeat % 2]:
            run()
        print(f"repeat {repeat + 1}: polygonize_raster {stages[-1]['total']:.2f} s", flush=True)
    total = statistics.median(s["total"] for s in stages)
    lines = [
        f"`{raster.name}`: {_megapixels(raster):.1f} MP, {int(bounds[0]['regions']):,} regions;"
        f" medians of {args.repeats} interleaved repeats in one process.",
        "",
        "| what | seconds | share of polygonize_raster |",
        "|---|---:|---:|",
    ]
    for stage in (*STAGES, "other"):
        seconds = statistics.median(s[stage] for s in stages)
        lines.append(f"| {stage} | {seconds:.2f} | {seconds / total:.0%} |")
    lines.append(f"| **polygonize_raster, all stages** | **{total:.2f}** | 100% |")
    for what in bounds[0]:
        if what != "regions":
            seconds = statistics.median(b[what] for b in bounds)
            lines.append(f"| {what} | {seconds:.2f} | {seconds / total:.0%} |")
    report = "\n".join(lines)
    print(report)
    (args.out / f"polygonize_profile_{raster.stem}.md").write_text(report + "\n")
    _record_machine(args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--sizes", default="25,100", help="megapixels: 1 (a quick check), 25, 100")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--run", nargs=3, metavar=("METHOD", "RASTER", "OUT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--inspect", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", metavar="RASTER", help="stage shares: predicted, landcover or a path"
    )
    args = parser.parse_args()
    if args.profile:
        profile(args)
        return
    if args.inspect:
        print(json.dumps(inspect(args.inspect)))
        return
    if args.run:
        method, raster, target = args.run
        {"s5geo": run_s5geo, "rasterio": run_rasterio}[method](Path(raster), Path(target))
        return
    benchmark(args)


if __name__ == "__main__":
    main()
