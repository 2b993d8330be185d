"""`s5geo predict` on each ONNX Runtime execution provider of this machine: TensorRT, CUDA, CPU.

    python bench/bench_providers.py                      # the bundled model, a 25 MP scene
    python bench/bench_providers.py --model teacher.onnx --model default.onnx --megapixels 100

The check to run once on an NVIDIA GPU machine (docs/BENCHMARKS.md, "GPU providers"). For each
model and each provider available here (``onnxruntime.get_available_providers()``):

- ``s5geo predict SCENE --providers P`` run twice, with an empty TensorRT engine cache before
  the first run: the first builds the engine, the second must find it (files in the cache, and
  the second run much faster);
- the class raster compared with the CPU provider's, pixel for pixel (TensorRT and CUDA run the
  network in other kernels, FP16 where TensorRT picks it: near-identical, not identical);
- a bare ONNX Runtime loop on the same provider (``bench_predict.py``'s, with s5geo's session),
  so that ``s5geo predict``'s throughput is given against the least any tool can do there.

Writes the table to bench/out/providers.md (and prints it) with the GPU's name from nvidia-smi.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort
import rasterio

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_predict import OUT, PYTHON, machine, s5geo_cmd, timed  # noqa: E402
from scenes import mosaic_vrt, naip_path  # noqa: E402

from s5geo.infer.runtime import ALIASES, default_model_path, short_name  # noqa: E402

ORDER = ("tensorrt", "cuda", "cpu")


def available() -> list[str]:
    """The providers of ``ORDER`` this ONNX Runtime install has, in that order."""
    have = set(ort.get_available_providers())
    return [p for p in ORDER if ALIASES[p] in have]


def gpu_name() -> str:
    """The GPU as nvidia-smi names it, or why there is none."""
    if shutil.which("nvidia-smi") is None:
        return "no NVIDIA GPU (nvidia-smi not found)"
    out = subprocess.run(
        ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout.strip() or out.stderr.strip()


def agreement(a: Path, b: Path) -> float:
    """Share of valid pixels on which two class rasters agree, in %."""
    with rasterio.open(a) as x, rasterio.open(b) as y:
        ca, cb = x.read(1), y.read(1)
    valid = (ca != 255) | (cb != 255)
    return float((ca[valid] == cb[valid]).mean() * 100) if valid.any() else 100.0


def run_model(model: Path, scene: Path, providers: list[str], batch: int, cache: Path) -> list[str]:
    """Table rows for one model: each provider's first and second run, bare loop, agreement."""
    rows = []
    rasters: dict[str, Path] = {}
    megapixels = _megapixels(scene)
    for provider in providers:
        out = OUT / f"providers_{model.stem}_{provider}.tif"
        cmd = [
            *s5geo_cmd(), "predict", str(scene), "--model", str(model), "--out", str(out),
            "--providers", provider, "--batch-size", str(batch), "--overwrite", "--quiet",
        ]  # fmt: skip
        env = {"S5GEO_CACHE": str(cache)}
        shutil.rmtree(cache / "trt", ignore_errors=True)
        first, _ = timed(cmd, env)
        engines = len(list((cache / "trt").glob("*"))) if (cache / "trt").exists() else 0
        second, _ = timed(cmd, env)
        bare, _ = timed(
            [PYTHON, str(BENCH / "bench_predict.py"), "bare", str(scene), str(model), str(batch),
             provider], env,
        )  # fmt: skip
        rasters[provider] = out
        rows.append((model.name, provider, first, second, engines, bare, megapixels / second))
    reference = rasters.get("cpu")
    lines = []
    for name, provider, first, second, engines, bare, mps in rows:
        agree = (
            f"{agreement(rasters[provider], reference):.3f}"
            if reference is not None and provider != "cpu"
            else "-"
        )
        cache_cell = str(engines) if provider == "tensorrt" else "-"
        lines.append(
            f"| {name} | {provider} | {first:.2f} | {second:.2f} | {cache_cell} | {bare:.2f} | "
            f"{bare / second:.2f} | {mps:.1f} | {agree} |"
        )
    return lines


def _megapixels(scene: Path) -> float:
    with rasterio.open(scene) as ds:
        return ds.width * ds.height / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", action="append", type=Path, help="model file(s); default: bundled")
    ap.add_argument("--megapixels", type=float, default=25.0)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    models = args.model or [default_model_path()]
    OUT.mkdir(exist_ok=True)
    scene = mosaic_vrt(naip_path(), OUT / f"naip_{args.megapixels:g}mp.vrt", args.megapixels)
    providers = available()
    with tempfile.TemporaryDirectory() as tmp:
        lines = [
            "| model | provider | first run (s) | second run (s) | engines cached | bare loop (s) "
            "| predict / bare | MP/s | agreement with CPU (%) |",
            "|---" * 9 + "|",
        ]
        for model in models:
            lines += run_model(model.resolve(), scene, providers, args.batch_size, Path(tmp))
    report = "\n".join(
        [
            f"`s5geo predict` on {', '.join(providers)}; {scene.name} ({_megapixels(scene):.1f} "
            f"MP), batch {args.batch_size}; GPU: {gpu_name()}; ONNX Runtime {ort.__version__} "
            f"({', '.join(short_name(p) for p in ort.get_available_providers())}).",
            "",
            *lines,
            "",
            machine(),
        ]
    )
    print(report)
    (OUT / "providers.md").write_text(report + "\n")


if __name__ == "__main__":
    main()
