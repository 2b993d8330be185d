"""`s5geo fit` against what analysts use today, on scenes with dense real ground truth.

    python bench/bench_fit.py                     # all scenes, both label budgets, 3 seeds
    python bench/bench_fit.py --scenes dubai --seeds 0

Protocol (docs/FIT.md): for each scene, simulated analyst labels are K discs of radius R pixels
per class, placed at random inside that class at least R + 2 pixels from its edges (K=4, R=6 and
K=10, R=8; seeds 0-2). Each method is fitted on those discs through `fit_model`, the model file
it writes is run over the whole scene by `predict_scene` (the same streaming prediction as
`s5geo predict`), and the map is scored by mIoU over every other labelled pixel (the discs and
ignore pixels excluded; classes of the scene's ground truth). Methods:

- ``baseline``: a random forest on multi-scale filter features only (Gaussian, Laplacian of
  Gaussian, gradient magnitude of each band, sigma 0.7-10), as ilastik and QGIS plugins do;
- ``quick``: the quick tier (the same filters plus the bundled network's decoder channels);
- ``bundled``: on Dubai, the bundled model as it is (no labels used).

Results go to bench/out/fit.json (resumable: finished runs are kept) and the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely
from scipy import ndimage

from s5geo.fit import fit_model
from s5geo.fit.labels import Labels
from s5geo.infer import predict_scene
from s5geo.io.scene import is_georeferenced
from s5geo.modelfile import DEFAULT_PALETTE

DATA = Path(os.environ.get("S5GEO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
OUT = Path(__file__).resolve().parent / "out" / "fit.json"
BUDGETS = ((4, 6), (10, 8))
DUBAI_CLASSES = {0: "building", 1: "land", 2: "road", 3: "vegetation", 4: "water"}


@dataclass(frozen=True)
class Scene:
    name: str
    image: Path
    truth: np.ndarray  # class ids, 255 ignore
    classes: dict[int, str]
    group: str


def scenes(which: str) -> Iterator[Scene]:
    if which in ("all", "dubai"):
        for k in range(1, 10):
            stem = f"Tile8_image_part_00{k}"
            image = DATA / "dubai" / "images" / f"{stem}.jpg"
            with rasterio.open(DATA / "dubai" / "masks" / f"{stem}.png") as m:
                truth = m.read(1)
            yield Scene(f"dubai/{stem}", image, truth, DUBAI_CLASSES, "dubai")
    if which in ("all", "spacenet"):
        with rasterio.open(DATA / "spacenet" / "sample_fp_mask.tif") as m:
            truth = (m.read(1) > 0).astype(np.uint8)
        yield Scene(
            "spacenet/atlanta",
            DATA / "spacenet" / "sample_geotiff.tif",
            truth,
            {0: "background", 1: "building"},
            "spacenet",
        )
    if which in ("all", "swiss"):
        for image in sorted((DATA / "swiss_trees" / "images").glob("*.tif")):
            with rasterio.open(DATA / "swiss_trees" / "masks" / image.name) as m:
                truth = m.read(1).astype(np.uint8)
            yield Scene(f"swiss/{image.stem}", image, truth, {0: "other", 1: "tree"}, "swiss")


def discs(scene: Scene, k: int, r: int, seed: int) -> tuple[Labels, np.ndarray]:
    """K discs of radius r per class inside that class, r + 2 px from its edges; their mask."""
    rng = np.random.default_rng(seed)
    geoms, ids = [], []
    for cls in scene.classes:
        inside = scene.truth == cls
        if not inside.any():
            continue
        dist = ndimage.distance_transform_edt(np.pad(inside, 1))[1:-1, 1:-1]
        rows, cols = np.nonzero(dist > r + 2)
        if rows.size == 0:  # a class too thin for a disc: its most interior pixels instead
            rows, cols = np.nonzero(dist >= dist.max())
        pick = rng.choice(rows.size, min(k, rows.size), replace=False)
        for i in pick:
            geoms.append(shapely.Point(cols[i] + 0.5, rows[i] + 0.5).buffer(r))
            ids.append(cls)
    names = {c: scene.classes[c] for c in sorted(set(ids))}
    colors = {c: DEFAULT_PALETTE[c] for c in names}
    pixel_geoms = np.array(geoms)
    labelled = rasterio.features.rasterize(
        pixel_geoms, out_shape=scene.truth.shape, transform=rasterio.Affine.identity()
    ).astype(bool)
    with rasterio.open(scene.image) as ds:
        if is_georeferenced(ds):
            t = ds.transform
            pixel_geoms = shapely.transform(
                pixel_geoms, lambda xy: np.column_stack(t * (xy[:, 0], xy[:, 1]))
            )
            crs = ds.crs
        else:
            crs = None
    labels = Labels(pixel_geoms, np.array(ids), names, colors, crs, "class", "discs")
    return labels, labelled


def miou(pred: np.ndarray, scene: Scene, exclude: np.ndarray) -> float:
    scored = (scene.truth != 255) & ~exclude
    ious = []
    for cls in np.unique(scene.truth[scored]):
        t, p = scene.truth[scored] == cls, pred[scored] == cls
        ious.append((t & p).sum() / max((t | p).sum(), 1))
    return float(np.mean(ious) * 100)


def run_fit(scene: Scene, labels: Labels, encoder: bool, tmp: Path) -> tuple[np.ndarray, float]:
    """Fit through fit_model, predict the scene with the written file: the map and the seconds."""
    start = time.perf_counter()
    result = fit_model([scene.image], labels, tmp / "m.onnx", encoder=encoder, maps=False,
                       overwrite=True)  # fmt: skip
    predict_scene(scene.image, tmp / "map.tif", model=result.model, overwrite=True)
    seconds = time.perf_counter() - start
    with rasterio.open(tmp / "map.tif") as m:
        return m.read(1), seconds


def run_bundled(scene: Scene, tmp: Path) -> np.ndarray:
    predict_scene(scene.image, tmp / "bundled.tif", overwrite=True)
    with rasterio.open(tmp / "bundled.tif") as m:
        return m.read(1)


def table(results: dict[str, dict]) -> str:
    """Mean mIoU per scene, method and budget (over seeds), then the mean over scenes."""
    rows: dict[tuple[str, str], dict[str, list[float]]] = {}
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in results.values():
        scene, method, budget = r["scene"], r["method"], r["budget"]
        rows.setdefault((scene, budget), {}).setdefault(method, []).append(r["miou"])
        if method == "quick":
            seconds.setdefault((scene, budget), []).append(r["seconds"])
    methods = ("bundled", "baseline", "quick")
    lines = [
        "| scene | labels | " + " | ".join(methods) + " | quick - baseline | quick, s |",
        "|---" * 7 + "|",
    ]
    per_budget: dict[str, dict[str, list[float]]] = {}
    for (scene, budget), by in sorted(rows.items()):
        means = {m: float(np.mean(by[m])) if m in by else None for m in methods}
        cells = ["-" if means[m] is None else f"{means[m]:.1f}" for m in methods]
        gain = (
            f"{means['quick'] - means['baseline']:+.1f}"
            if means["quick"] is not None and means["baseline"] is not None
            else "-"
        )
        took = seconds.get((scene, budget))
        time_cell = f"{np.median(took):.0f}" if took else "-"
        lines.append(f"| {scene} | {budget} | " + " | ".join(cells) + f" | {gain} | {time_cell} |")
        compared = means["quick"] is not None and means["baseline"] is not None
        for m in methods:  # means over the scenes where both fits ran (or the bundled model)
            if means[m] is not None and (compared or m == "bundled"):
                per_budget.setdefault(budget, {}).setdefault(m, []).append(means[m])
    for budget, by in sorted(per_budget.items()):
        cells = [f"{np.mean(by[m]):.1f}" if m in by else "-" for m in methods]
        both = "quick" in by and "baseline" in by
        gain = f"{np.mean(by['quick']) - np.mean(by['baseline']):+.1f}" if both else "-"
        lines.append(
            f"| **mean, all scenes** | {budget} | " + " | ".join(cells) + f" | **{gain}** | - |"
        )
    # Without Dubai: the bundled network's features were learnt on Dubai (other tiles), so the
    # scenes from other places and sensors say more about imagery it has never seen.
    for budget in sorted(per_budget):
        other = {
            m: [means for (scene, b), by in sorted(rows.items()) if b == budget
                and not scene.startswith("dubai") and "quick" in by and "baseline" in by
                for means in [np.mean(by[m])]]
            for m in ("baseline", "quick")
        }  # fmt: skip
        if other["quick"] and other["baseline"]:
            q, b = np.mean(other["quick"]), np.mean(other["baseline"])
            lines.append(
                f"| **mean, not Dubai** | {budget} | - | {b:.1f} | {q:.1f} | **{q - b:+.1f}** | - |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", default="all", choices=("all", "dubai", "spacenet", "swiss"))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--merge", type=Path, nargs="*", default=[], help="Other result files to add to --out."
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for other in args.merge:
        results.update(json.loads(other.read_text()))
    seeds = [int(s) for s in args.seeds.split(",") if s]  # --seeds "": only the table
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        all_scenes = list(scenes(args.scenes))
        for scene in all_scenes:
            if scene.group == "dubai" and f"{scene.name}|bundled" not in results:
                pred = run_bundled(scene, tmp)
                none = np.zeros_like(scene.truth, bool)
                results[f"{scene.name}|bundled"] = {
                    "scene": scene.name, "method": "bundled", "budget": "none",
                    "miou": miou(pred, scene, none), "seconds": 0.0,
                }  # fmt: skip
        # Seeds outermost: an interrupted run still covers every scene.
        for seed in seeds:
            for scene in all_scenes:
                for k, r in BUDGETS:
                    labels, labelled = discs(scene, k, r, seed)
                    for method, encoder in (("baseline", False), ("quick", True)):
                        key = f"{scene.name}|{method}|K{k}R{r}|{seed}"
                        if key in results:
                            continue
                        pred, seconds = run_fit(scene, labels, encoder, tmp)
                        results[key] = {
                            "scene": scene.name, "method": method, "budget": f"K={k}, R={r}",
                            "seed": seed, "miou": miou(pred, scene, labelled),
                            "seconds": seconds,
                        }  # fmt: skip
                        print(f"{key}: {results[key]['miou']:.1f} mIoU, {seconds:.1f} s",
                              flush=True)  # fmt: skip
                        args.out.write_text(json.dumps(results, indent=1))
    args.out.write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
