"""Benchmarks of `s5geo predict`: overhead against a bare ONNX Runtime loop, and peak memory.

    python bench/bench_predict.py overhead [--megapixels 6.25] [--repeats 3] [--model M.onnx]
                                           [--against CHECKOUT]
    python bench/bench_predict.py memory [--sizes 25,400] [--vector | --vector-only] [--repeats 1]
    python bench/bench_predict.py models FP32.onnx INT8.onnx [--megapixels 6.25] [--bare] [--null]
    python bench/bench_predict.py tiles TEACHER.onnx STUDENT.onnx [--repeats 5] [--threads 0]
    python bench/bench_predict.py ops MODEL.onnx [--threads 1]
    python bench/bench_predict.py phases MODEL.onnx [--megapixels 25] [--repeats 3]

Overhead: the end-to-end command (`s5geo predict SCENE --out X.gpkg`: reading, normalising,
blending, COG, polygons) against the least a tool can do with the same model over the same
windows: read each window, normalise, run ONNX Runtime in the same batches, argmax, discard. Both
run as fresh processes, interleaved, on a VRT mosaic of the real NAIP scene, with a conv net of
realistic cost: by default bench/convnet.py (random weights: realistic arithmetic, but a
fragmented map, so many polygons), or with --model a trained model file (e.g. the exported S4P
teacher, 25.8 GFLOP per tile, whose maps have the polygons of a real one). Reported: median wall
times, the throughput ratio and the number of polygons written. With --against CHECKOUT the two
`s5geo predict` runs (and the bare loop, whose argmax is s5geo's) are also timed with s5geo's
modules taken from that checkout (PYTHONPATH), interleaved with the others: an A/B of two commits
on the same install, scene and model.

Memory: peak resident set size (the process's own maximum, from wait4) of `s5geo predict` over
25- and 400-megapixel VRT mosaics of the real NAIP scene with the bundled model; with --vector
also with polygons (`--out X.gpkg`); with --repeats, medians of interleaved runs.

Models: `s5geo predict` per model file (and with --bare the bare loop per file); tiles: each
network alone in ONNX Runtime, milliseconds per tile (the speed ratio FLOPs promise); ops: one
file's time per operator type (ONNX Runtime's profiler), to see where a network's time goes;
phases: where `s5geo predict` spends the time the bare loop does not, from timers around
ONNX Runtime's `InferenceSession.run` in both programs (when the first inference starts, the
inferences' sum, what follows the last one).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
OUT = BENCH / "out"
# The interpreter whose install is measured (`--python`): this one by default. A deployment
# install (`pip install .`, no torch, no pandas) measures what GIS users run; the development
# install also loads pandas and geopandas, which pyogrio imports whenever they are installed.
PYTHON = sys.executable


# CPU seconds (user + system) of the last command ``timed`` ran: on a machine shared with other
# jobs the wall time depends on their load, the work a command does much less.
LAST_CPU = [0.0]


def s5geo_cmd() -> list[str]:
    return [PYTHON, "-m", "s5geo.cli.main"]


def timed(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, float]:
    """Run ``cmd`` (``env`` added to the environment, in ``cwd``); return (wall s, peak RSS MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    LAST_CPU[0] = usage.ru_utime + usage.ru_stime
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"command failed ({status}): {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024.0


def bare_loop(scene: str, model: str, batch: int, provider: str = "cpu") -> None:
    """The baseline: same windows, same batches, same session options; nothing else.

    ``provider`` is one of s5geo's provider names (``cpu``, ``cuda``, ``tensorrt``); a GPU
    provider's session is s5geo's own (``load_model``: its provider options, the TensorRT engine
    cache included), so that baseline differs from ``s5geo predict`` only in what s5geo does
    around the session.
    """
    import numpy as np
    import onnxruntime as ort
    import rasterio

    from s5geo.infer.blend import class_of_max
    from s5geo.infer.tiling import WindowPlan
    from s5geo.modelfile import info_from_metadata

    def argmax(batch: list[np.ndarray]) -> None:
        # s5geo's argmax, 5.7x faster than numpy's over the class axis: the baseline stays the
        # least a tool can do, so the ratio is not flattered by a slower argmax here.
        for probs in sess.run(None, {"image": np.stack(batch)})[0]:
            class_of_max(probs)

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if provider == "cpu":
        sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    else:
        from s5geo.infer import load_model

        sess = load_model(model, providers=[provider]).session
    info = info_from_metadata(sess.get_modelmeta().custom_metadata_map)
    t = info.tile_size
    mean = np.asarray(info.mean, np.float32)[:, None, None]
    std = np.asarray(info.std, np.float32)[:, None, None]
    with rasterio.open(scene) as ds:
        plan = WindowPlan(ds.height, ds.width, t, round(t * info.overlap_pct / 100))
        buf: list[np.ndarray] = []
        for _, _, win in plan.windows():
            x = ds.read(list(info.bands), window=win, out_dtype="float32")
            buf.append((x / info.input_scale - mean) / std)
            if len(buf) == batch:
                argmax(buf)
                buf = []
        if buf:
            argmax(buf)


def overhead(
    megapixels: float,
    repeats: int,
    batch: int,
    given: str | None = None,
    against: str | None = None,
    this: str | None = None,
) -> str:
    from convnet import build_convnet
    from scenes import mosaic_vrt, naip_path

    OUT.mkdir(exist_ok=True)
    if given is None:
        model = OUT / "convnet.onnx"
        described = f"bench/convnet.py ({build_convnet(model):.1f} GFLOP per 512x512 tile)"
    else:
        model, described = Path(given).resolve(), f"`{Path(given).name}` (given)"
    scene = mosaic_vrt(naip_path(), OUT / f"naip_{megapixels:g}mp.vrt", megapixels)
    common = ["--model", str(model), "--batch-size", str(batch), "--overwrite", "--quiet"]
    predict = [*s5geo_cmd(), "predict", str(scene)]
    arms = {
        "bare": [PYTHON, __file__, "bare", str(scene), str(model), str(batch)],
        "raster": [*predict, "--out", str(OUT / "overhead.tif"), *common],
        "full": [*predict, "--out", str(OUT / "overhead.gpkg"), *common],
    }
    envs: dict[str, dict[str, str]] = {}
    if this:  # s5geo's modules (and cli, as s5geo/cli) from a snapshot of the code measured
        envs = {name: {"PYTHONPATH": str(Path(this).resolve())} for name in arms}
    if against:  # the same commands with s5geo's modules from another checkout (an A/B of commits)
        arms["bare@"] = [*arms["bare"]]  # the bare loop's argmax is s5geo's too
        arms["raster@"] = [*predict, "--out", str(OUT / "overhead_against.tif"), *common]
        arms["full@"] = [*predict, "--out", str(OUT / "overhead_against.gpkg"), *common]
        envs.update(
            {
                name: {"PYTHONPATH": str(Path(against).resolve())}
                for name in ("bare@", "raster@", "full@")
            }
        )
    times: dict[str, list[float]] = {name: [] for name in arms}
    cpu: dict[str, list[float]] = {name: [] for name in arms}
    order = list(arms)
    for i in range(repeats):
        k = i % len(order)
        for name in order[k:] + order[:k]:  # rotate the order between repeats
            # In OUT: `python -m` puts the working directory first on sys.path, which would shadow
            # the other checkout's modules when run from a checkout.
            wall, _ = timed(arms[name], envs.get(name), cwd=OUT)
            times[name].append(wall)
            cpu[name].append(LAST_CPU[0])
            print(f"  {name:6s} run {i + 1}: {wall:7.2f} s, CPU {LAST_CPU[0]:6.2f} s", flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    med_cpu = {name: statistics.median(t) for name, t in cpu.items()}
    polygons = _feature_count(OUT / "overhead.gpkg")
    side = int(megapixels**0.5 * 1000)
    mp = side * side / 1e6
    labels = {
        "bare": "bare ONNX Runtime loop (read, normalise, run, argmax)",
        "raster": "`s5geo predict --out X.tif` (COG)",
        "full": "`s5geo predict --out X.gpkg` (COG + polygons)",
        "bare@": f"bare loop, `class_of_max` of {against}",
        "raster@": f"`--out X.tif`, s5geo of {against}",
        "full@": f"`--out X.gpkg`, s5geo of {against}",
    }
    rows = "".join(
        f"| {labels[n]} | {med[n]:.2f} | {mp / med[n]:.3f} | "
        f"{', '.join(f'{t:.1f}' for t in times[n])} | "
        f"{med['bare@' if n.endswith('@') else 'bare'] / med[n]:.3f} | {med_cpu[n]:.2f} | "
        f"{med_cpu['bare@' if n.endswith('@') else 'bare'] / med_cpu[n]:.3f} |\n"
        for n in arms
    )
    return (
        f"Scene: VRT mosaic of the real NAIP scene, {mp:.2f} MP ({side}x{side}); model: "
        f"{described}, batch {batch}, CPU execution provider; {repeats} interleaved repeats, "
        f"fresh processes; {polygons:,} polygons written.\n\n"
        "| run | median wall (s) | MP/s | runs (s) | throughput vs bare (same commit) |"
        " median CPU (s) | CPU of bare / CPU |\n"
        "|---|---|---|---|---|---|---|\n" + rows + "\nGoal: at least 0.85 of the bare loop.\n"
    )


def _feature_count(gpkg: Path) -> int:
    import pyogrio

    return int(pyogrio.read_info(gpkg, layer=0)["features"])


def memory(sizes: list[float], vector: bool, repeats: int = 1, vector_only: bool = False) -> str:
    """Peak RSS per scene size (and with polygons with ``vector``); medians of ``repeats`` runs.

    With several repeats the runs are interleaved (every size and output once per repeat), so a
    change of load on the shared machine hits all of them alike.
    """
    from scenes import mosaic_vrt, naip_path

    OUT.mkdir(exist_ok=True)
    kinds = [("raster", "mem.tif")] + ([("raster + polygons", "mem.gpkg")] if vector else [])
    if vector_only:
        kinds = [("raster + polygons", "mem.gpkg")]
    scenes = {mp: mosaic_vrt(naip_path(), OUT / f"naip_{mp:g}mp.vrt", mp) for mp in sizes}
    runs: dict[tuple[float, str], list[tuple[float, float]]] = {}
    for i in range(repeats):
        for mp in sizes:
            for kind, name in kinds:
                cmd = [*s5geo_cmd(), "predict", str(scenes[mp]), "--out", str(OUT / name),
                       "--overwrite", "--quiet"]  # fmt: skip
                wall, rss = timed(cmd, cwd=OUT)  # in OUT: see overhead (PYTHONPATH)
                runs.setdefault((mp, kind), []).append((wall, rss))
                print(
                    f"  {mp:g} MP {kind:18s} run {i + 1}: {wall:7.1f} s {rss:6.0f} MiB", flush=True
                )
    rows = ["| scene | output | wall (s) | MP/s | peak RSS (MiB) | runs (MiB) |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    peaks: dict[tuple[float, str], float] = {}
    for (mp, kind), got in runs.items():
        wall = statistics.median(w for w, _ in got)
        rss = peaks[(mp, kind)] = statistics.median(r for _, r in got)
        side = int(mp**0.5 * 1000)
        real_mp = side * side / 1e6
        each = ", ".join(f"{r:.0f}" for _, r in got)
        rows.append(f"| {real_mp:.0f} MP ({side}x{side}) | {kind} | {wall:.1f} | "
                    f"{real_mp / wall:.2f} | {rss:.0f} | {each} |")  # fmt: skip
    text = "\n".join(rows) + "\n"
    if repeats > 1:
        text += f"\nMedians of {repeats} interleaved runs, fresh processes.\n"
    if len(sizes) == 2:
        for kind, _ in kinds:
            ratio = peaks[(sizes[1], kind)] / peaks[(sizes[0], kind)]
            text += f"\nPeak RSS ratio {sizes[1]:g} MP / {sizes[0]:g} MP ({kind}): **{ratio:.2f}**"
        text += " (goal <= 1.2, and under 1024 MiB)\n"
    return text


def models(
    paths: list[str], megapixels: float, repeats: int, bare: bool = False, null: bool = False
) -> str:
    """Throughput of `s5geo predict --out X.tif` per model file, interleaved (FP32 vs INT8).

    With ``bare`` each file also runs the bare ONNX Runtime loop over the same windows (no
    blending, no output), interleaved with the rest: the models' own speed ratio, without
    s5geo's fixed costs (start-up, blending, the COG), which weigh more the faster a model is.
    With ``null`` a network of next to no cost with the first file's bands, classes and tiling
    (bench/convnet.py) runs too: the ceiling of any model's throughput here.
    """
    from scenes import mosaic_vrt, naip_path

    OUT.mkdir(exist_ok=True)
    if null:
        from convnet import build_null_net

        from s5geo.infer import load_model

        build_null_net(OUT / "null_net.onnx", load_model(paths[0]).info)
        paths = [*paths, str(OUT / "null_net.onnx")]
    scene = mosaic_vrt(naip_path(), OUT / f"naip_{megapixels:g}mp.vrt", megapixels)
    arms: dict[tuple[str, str], list[str]] = {}
    for path in paths:
        arms[(path, "predict")] = [*s5geo_cmd(), "predict", str(scene), "--out",
                                   str(OUT / "models.tif"), "--model", path, "--overwrite",
                                   "--quiet"]  # fmt: skip
        if bare:
            arms[(path, "bare")] = [PYTHON, __file__, "bare", str(scene), path, "4"]
    keys = list(arms)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in keys}
    for i in range(repeats):
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
            wall, _ = timed(arms[key])
            times[key].append(wall)
            print(f"  {Path(key[0]).name:28s} {key[1]:7s} run {i + 1}: {wall:7.2f} s", flush=True)
    side = int(megapixels**0.5 * 1000)
    mp = side * side / 1e6
    rows = ""
    for key, t in times.items():
        base = statistics.median(times[(paths[0], key[1])])
        rows += (
            f"| `{Path(key[0]).name}` | {key[1]} | {statistics.median(t):.2f} | "
            f"{mp / statistics.median(t):.3f} | {', '.join(f'{x:.1f}' for x in t)} | "
            f"{base / statistics.median(t):.2f} |\n"
        )
    how = "`s5geo predict --out X.tif`" + (" and the bare ONNX Runtime loop" if bare else "")
    return (
        f"Scene: VRT mosaic of the real NAIP scene, {mp:.2f} MP; {how}, CPU; {repeats} "
        "interleaved repeats.\n\n| model | run | median wall (s) | MP/s | runs (s) | "
        "speed vs first model |\n|---|---|---|---|---|---|\n" + rows
    )


def op_profile(path: str, threads: int = 1, batch: int = 4, runs: int = 3) -> str:
    """Where a model file's time goes: ONNX Runtime's profiler, kernel time summed per op type.

    A batch of ``batch`` random tiles of the model's own size, ``runs`` runs after one warm-up,
    ``threads`` intra-op threads (1 by default: the split per operator does not depend on
    another job's load on the other core as much).
    """
    import collections
    import json
    import tempfile

    import numpy as np
    import onnxruntime as ort

    from s5geo.modelfile import info_from_metadata

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        opts.profile_file_prefix = str(Path(tmp) / "ops")
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        info = info_from_metadata(sess.get_modelmeta().custom_metadata_map)
        t = info.tile_size
        x = {sess.get_inputs()[0].name: np.random.default_rng(0).random(
            (batch, len(info.bands), t, t), dtype=np.float32)}  # fmt: skip
        for _ in range(runs + 1):
            sess.run(None, x)
        events = json.loads(Path(sess.end_profiling()).read_text())
    # The first run is the warm-up (first allocations): only node events after it count.
    first = min((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    warm = first["ts"] + first["dur"]
    micros: collections.Counter[str] = collections.Counter()
    nodes: collections.Counter[str] = collections.Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] > warm:
            micros[e["args"]["op_name"]] += e["dur"]
            nodes[e["args"]["op_name"]] += 1
    total, n = sum(micros.values()), runs
    rows = "".join(
        f"| {op} | {us / n / 1e3:.1f} | {100 * us / total:.1f} | {nodes[op] // n} |\n"
        for op, us in micros.most_common(12)
    )
    return (
        f"`{Path(path).name}`: a batch of {batch} x {t} px tiles, {threads} thread(s), kernel time "
        f"per op type (ONNX Runtime profiler), mean of {n} runs after a warm-up: "
        f"{total / n / 1e3:.0f} ms per batch in all.\n\n"
        "| op type | ms per batch | % | nodes |\n|---|---|---|---|\n" + rows
    )


def tile_speeds(
    paths: list[str], repeats: int, threads: int = 0, batch: int = 4
) -> dict[str, tuple[int, float]]:
    """Each model's network alone: (tile size, median ms per tile) on a fixed batch of its tiles.

    The networks' own speed ratio (what FLOPs promise), without reading, blending or writing:
    one session per file opened by s5geo's ``load_model`` (its options; ``threads`` intra-op
    threads, 0 for ONNX Runtime's default, one per core), a batch of ``batch`` random
    tiles of the model's tile size, one warm-up run, then ``repeats`` rounds in which every model
    runs the batch 3 times, interleaved.
    """
    import numpy as np

    from s5geo.infer import load_model

    sessions = {}
    for path in paths:
        # s5geo's own session, as `s5geo predict` opens it (options, provider, threads).
        m = load_model(path, providers=["cpu"], threads=threads)
        x = np.random.default_rng(0).standard_normal(
            (batch, len(m.info.bands), m.info.tile_size, m.info.tile_size), dtype=np.float32
        )
        m.run(x)
        sessions[path] = (m, x)
    per_tile: dict[str, list[float]] = {p: [] for p in paths}
    for i in range(repeats):
        for path in paths[i % len(paths) :] + paths[: i % len(paths)]:
            m, x = sessions[path]
            for _ in range(3):
                start = time.perf_counter()
                m.run(x)
                per_tile[path].append((time.perf_counter() - start) * 1000 / batch)
        print(f"  tiles round {i + 1} done", flush=True)
    return {p: (sessions[p][0].info.tile_size, statistics.median(t)) for p, t in per_tile.items()}


def megapixels_per_second(tile: int, ms_per_tile: float) -> float:
    """Throughput of a model that takes ``ms_per_tile`` per square tile of ``tile`` pixels."""
    return tile**2 / 1e3 / ms_per_tile


def tile_latency(paths: list[str], repeats: int, threads: int = 0, batch: int = 4) -> str:
    """:func:`tile_speeds` as a table; models are compared by megapixels per second, since their
    tile sizes can differ."""
    speeds = tile_speeds(paths, repeats, threads, batch)
    mp_s = {p: megapixels_per_second(*speeds[p]) for p in paths}
    rows = "".join(
        f"| `{Path(p).name}` | {tile} | {ms:.1f} | {mp_s[p]:.2f} | "
        f"{mp_s[p] / mp_s[paths[0]]:.2f} |\n"
        for p, (tile, ms) in speeds.items()
    )
    return (
        f"The networks alone: ONNX Runtime ({threads or 'default'} intra-op threads) on a batch "
        f"of {batch} random tiles, in one process, {repeats} interleaved rounds of 3 runs, "
        "medians.\n\n| model | tile (px) | ms per tile | MP/s | speed vs first model |\n"
        "|---|---|---|---|---|\n" + rows
    )


def phase_worker(arm: str, scene: str, model: str) -> None:
    """One timed run of ``arm`` (``predict`` or ``bare``) in this fresh process; prints JSON.

    The same timer wraps ``onnxruntime.InferenceSession.run`` in both programs (the clock starts
    here, before either imports numpy, ONNX Runtime or rasterio), so the two runs split alike into
    what comes before the first inference, the inferences, and what comes after the last.
    """
    start = time.perf_counter()
    import onnxruntime as ort

    stamps: list[tuple[float, float]] = []  # (start, end) of every inference
    run = ort.InferenceSession.run

    def timed_run(self: ort.InferenceSession, *args: object, **kwargs: object) -> object:
        t = time.perf_counter()
        out = run(self, *args, **kwargs)
        stamps.append((t - start, time.perf_counter() - start))
        return out

    ort.InferenceSession.run = timed_run  # type: ignore[method-assign]
    if arm == "bare":
        bare_loop(scene, model, 4)
    else:
        from s5geo.cli.main import run as cli

        sys.argv = ["s5geo", "predict", scene, "--model", model, "--out",
                    str(OUT / "phases.tif"), "--overwrite", "--quiet"]  # fmt: skip
        try:
            cli()
        except SystemExit as exc:
            if exc.code:
                raise
    end = time.perf_counter() - start
    print(json.dumps({"first": stamps[0][0], "inference": sum(b - a for a, b in stamps),
                      "after": end - stamps[-1][1], "total": end}))  # fmt: skip


def phases(model: str, megapixels: float, repeats: int) -> str:
    """`s5geo predict --out X.tif` and the bare loop split into phases, fresh processes,
    interleaved: the first inference's start (imports, model load, checks, first read), the sum of
    the inferences (slower in s5geo when its reader and blender share the cores), and what
    follows the last inference (the last blend and the COG copy; in the bare loop its last
    argmax). The rest of each run is work between inferences (reading, normalising and argmax in
    the bare loop; in s5geo these run beside inference)."""
    from scenes import mosaic_vrt, naip_path

    OUT.mkdir(exist_ok=True)
    scene = mosaic_vrt(naip_path(), OUT / f"naip_{megapixels:g}mp.vrt", megapixels)
    runs: dict[str, list[dict[str, float]]] = {"predict": [], "bare": []}
    for i in range(repeats):
        for arm in list(runs)[i % 2 :] + list(runs)[: i % 2]:
            cmd = [PYTHON, __file__, "phase-worker", arm, str(scene), str(Path(model).resolve())]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs[arm].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"  {arm:7s} run {i + 1}: {runs[arm][-1]['total']:6.2f} s", flush=True)
    names = {
        "first": "first inference starts at",
        "inference": "inferences, summed",
        "after": "after the last inference",
        "total": "whole run (from the program's first import)",
    }
    rows = ""
    for key, label in names.items():
        p, b = (statistics.median(r[key] for r in runs[arm]) for arm in ("predict", "bare"))
        rows += f"| {label} | {p:.2f} | {b:.2f} | {p - b:+.2f} |\n"
    return (
        f"`{Path(model).name}` on a {megapixels:g} MP VRT mosaic of the real NAIP scene; medians "
        f"of {repeats} interleaved runs in fresh processes (seconds).\n\n"
        "| phase | `s5geo predict --out X.tif` | bare loop | difference |\n|---|---|---|---|\n"
        + rows
    )


def machine() -> str:
    import onnxruntime

    return (f"Machine: {os.cpu_count()} cores, {platform.machine()}, Python "
            f"{platform.python_version()}, ONNX Runtime {onnxruntime.__version__}.")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "bare":
        bare_loop(sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:6])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "phase-worker":
        phase_worker(*sys.argv[2:5])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--megapixels", type=float, default=6.25)
    o.add_argument("--repeats", type=int, default=3)
    o.add_argument("--batch-size", type=int, default=4)
    o.add_argument("--python", default=sys.executable, help="interpreter of the install to measure")
    o.add_argument("--model", help="a trained model file instead of the random-weight convnet")
    o.add_argument(
        "--this",
        metavar="SNAPSHOT",
        help="time s5geo from this folder (PYTHONPATH; s5geo/ with cli/ as s5geo/cli)",
    )
    o.add_argument(
        "--against",
        metavar="CHECKOUT",
        help="also time s5geo from another checkout (e.g. `git worktree add /tmp/base HEAD~1`)",
    )
    m = sub.add_parser("memory")
    m.add_argument("--sizes", default="25,400")
    m.add_argument("--vector", action="store_true", help="also measure runs with polygons")
    m.add_argument("--vector-only", action="store_true", help="only the runs with polygons")
    m.add_argument("--repeats", type=int, default=1, help="interleaved runs; medians reported")
    m.add_argument("--python", default=sys.executable, help="interpreter of the install to measure")
    c = sub.add_parser("models", help="compare model files (e.g. FP32 vs INT8)")
    c.add_argument("paths", nargs="+")
    c.add_argument("--megapixels", type=float, default=6.25)
    c.add_argument("--repeats", type=int, default=3)
    c.add_argument("--bare", action="store_true", help="also time the bare ONNX Runtime loop")
    c.add_argument("--null", action="store_true", help="also time a network of next to no cost")
    pr = sub.add_parser("ops", help="ONNX Runtime's time per op type of one model file")
    pr.add_argument("path")
    pr.add_argument("--threads", type=int, default=1)
    t = sub.add_parser("tiles", help="time the networks alone, per tile (ONNX Runtime only)")
    t.add_argument("paths", nargs="+")
    t.add_argument("--repeats", type=int, default=5)
    t.add_argument("--threads", type=int, default=0, help="intra-op threads (0: one per core)")
    ph = sub.add_parser("phases", help="where predict's extra time goes, against the bare loop")
    ph.add_argument("model")
    ph.add_argument("--megapixels", type=float, default=25)
    ph.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    global PYTHON
    PYTHON = getattr(args, "python", sys.executable)
    if args.what == "models":
        report = models(args.paths, args.megapixels, args.repeats, args.bare, args.null)
    elif args.what == "ops":
        report = op_profile(args.path, args.threads)
    elif args.what == "tiles":
        report = tile_latency(args.paths, args.repeats, args.threads)
    elif args.what == "phases":
        report = phases(args.model, args.megapixels, args.repeats)
    elif args.what == "overhead":
        report = overhead(
            args.megapixels, args.repeats, args.batch_size, args.model, args.against, args.this
        )
    else:
        sizes = [float(s) for s in args.sizes.split(",")]
        report = memory(sizes, args.vector, args.repeats, args.vector_only)
    report += "\n" + machine() + f" Measured install: {PYTHON}.\n"
    print("\n" + report)
    model = getattr(args, "model", None)
    name = f"predict_{args.what}" + (f"_{Path(model).stem}" if model else "")
    (OUT / f"{name}.md").write_text(report)


if __name__ == "__main__":
    main()
