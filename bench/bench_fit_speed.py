"""How long `s5geo fit` (quick tier) takes on a 10-megapixel scene, stage by stage.

    python bench/bench_fit_speed.py                 # 10 MP, the demo polygons
    python bench/bench_fit_speed.py --megapixels 25

The scene is a VRT mosaic repeating the real NAIP scene (bench/scenes.py), labelled with the
demo's 28 polygons (they lie in its first repeat): the fit reads the features under them, cross-
validates, fits the forest, writes the model and maps the whole scene with its confidence raster,
as `s5geo fit` does by default. Prints the wall time of each stage and in all.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

from scenes import mosaic_vrt, naip_path

from s5geo.fit import fit_model
from s5geo.infer import Progress

LABELS = Path(__file__).resolve().parents[1] / "demo" / "naip_2020_labels.gpkg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scene = mosaic_vrt(naip_path(), Path(tmp) / "mosaic.vrt", args.megapixels)
        marks: dict[str, float] = {}
        start = time.perf_counter()

        def progress(p: Progress) -> None:
            marks.setdefault(p.stage, time.perf_counter() - start)

        result = fit_model([scene], LABELS, Path(tmp) / "model.onnx", progress=progress)
        total = time.perf_counter() - start
    order = [*sorted(marks.items(), key=lambda kv: kv[1]), ("end", total)]
    print(f"{args.megapixels:g} MP scene, {result.pixels} labelled pixels, {total:.1f} s in all")
    for (stage, t0), (_, t1) in itertools.pairwise(order):
        print(f"  {stage:<9} {t1 - t0:6.1f} s")


if __name__ == "__main__":
    main()
