"""``s5geo curate``: seed checkpoint + labelled images + unlabeled pool -> selection and report.

Outputs in ``out_dir``: ``selection.gpkg`` (window footprints, see :mod:`s5geo.curate.manifest`),
``report.json`` (settings, per-cluster labelled counts, quotas and selections, entropy summary) and
``entropy.png`` (histogram of pool and selected entropies). Pool and labelled images may be paths,
folders or globs, or ``split:NAME`` for the images of a split of the seed run's own data config
(image folders or raster scenes), found as training finds them (:mod:`s5geo.datasets.splits`): a
splits-file name, a split spec such as ``split:dir=Train`` or ``split:ids=2_10,2_11``, or
``split:unlabeled``/``train``/``val``/``test`` for the config's splits when it has no splits file.

``strategy="random"`` is the baseline of the curated-vs-random comparison: the same number of
windows drawn uniformly from the same pool windows (those with a valid pixel). It runs no model
(the checkpoint only supplies its data config: bands and split names), so entropy and cluster are
NULL and the report has no cluster or entropy summary, unless ``score`` asks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s5geo.config import Config
from s5geo.errors import UserError

SPLIT_PREFIX = "split:"


STRATEGIES = ("rs4p", "random")


@dataclass(frozen=True)
class CurateOptions:
    """What to select and how: target size B_u, clusters M, window side, ceiling, background.

    ``strategy`` "rs4p" is the curation rule (docs/methods.md); "random" draws ``target`` windows
    uniformly from the same pool windows (the baseline of the curated-vs-random comparison). A
    random draw needs no model: unless ``score`` is set its entropy and cluster fields are NULL;
    with ``score`` the seed model scores the pool and labelled windows as for rs4p and fills them
    (the draw, which depends only on the pool windows, ``target`` and ``seed``, is the same
    either way).
    """

    target: int
    clusters: int = 8
    window: int = 256
    batch: int = 8
    background: int | None = None
    ceiling: float | None = None
    seed: int = 0
    strategy: str = "rs4p"
    score: bool = False  # random only (rs4p always scores)


def checkpoint_config(path: Path) -> Config:
    """The run config stored in an ``s5geo train`` checkpoint, without building the model."""
    from s5geo.config import from_dict
    from s5geo.models.loading import stored_config

    return from_dict(
        Config, stored_config(path, expected="s5geo curate takes a .ckpt of s5geo train")
    )


def resolve_items(items: Sequence[str], cfg: Config) -> list[Path]:
    """Paths/folders/globs, with ``split:NAME`` the images of that split of the seed run's data
    config (:func:`s5geo.datasets.splits.split_items`, as training resolves splits)."""
    from s5geo.curate.pool import expand_paths

    paths: list[str | Path] = []
    for item in items:
        if item.startswith(SPLIT_PREFIX):
            if cfg.data.kind not in ("image_folder", "raster"):
                raise UserError(
                    f"{item}: split names need a seed run on an image folder or raster scenes "
                    f"(its data.kind is {cfg.data.kind!r}); pass paths"
                )
            from s5geo.datasets.splits import split_items

            root = cfg.data.resolved_root()
            if not root.is_dir():
                raise UserError(f"{item}: data root not found: {root} (set S5GEO_DATA)")
            found = split_items(cfg.data, item[len(SPLIT_PREFIX) :], with_masks=False)
            paths += [i.image for i in found]
        else:
            paths.append(item)
    return expand_paths(paths)


def curate(
    checkpoint: Path,
    pool: Sequence[str],
    labeled: Sequence[str],
    out_dir: Path,
    options: CurateOptions,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Score, cluster, select and write (random without scores: draw and write); returns the
    report."""
    from s5geo.curate import select as sel
    from s5geo.curate.manifest import write_report, write_selection
    from s5geo.curate.pool import WindowRef, has_valid_pixels, iter_windows

    if options.strategy not in STRATEGIES:
        raise UserError(
            f"unknown curation strategy {options.strategy!r}; known: {', '.join(STRATEGIES)}"
        )
    if options.target < 1:
        raise UserError("the target size must be at least 1")
    scored = options.strategy == "rs4p" or options.score
    cfg = checkpoint_config(checkpoint)
    pool_files, labeled_files = resolve_items(pool, cfg), resolve_items(labeled, cfg)
    overlap = set(pool_files) & set(labeled_files)
    if overlap:
        raise UserError(f"{len(overlap)} files are in both the pool and the labelled set")
    if scored and not labeled_files:
        raise UserError("the clusters need labelled images: pass --labeled")
    base: dict[str, Any] = {
        "checkpoint": str(checkpoint), "options": asdict(options), "scored": scored,
        "labelled_files": len(labeled_files), "pool_files": len(pool_files),
    }  # fmt: skip

    drawn: list[WindowRef] = []
    if options.strategy == "random":
        bands = list(cfg.data.bands)
        candidates = [
            r for r in iter_windows(pool_files, options.window) if has_valid_pixels(r, bands)
        ]
        if not candidates:
            raise UserError("the pool has no window with valid pixels")
        drawn = [
            candidates[i] for i in sel.random_subset(len(candidates), options.target, options.seed)
        ]
        if not scored:
            out_dir.mkdir(parents=True, exist_ok=True)
            layers = write_selection(out_dir / "selection.gpkg", drawn, None, None)
            (out_dir / "entropy.png").unlink(missing_ok=True)  # none: nothing was scored
            report = {
                **base, "labelled_windows": None, "pool_windows": len(candidates),
                "selected": len(drawn), "layers": layers,
                "georeferenced": sorted({r.crs or "none (pixel coordinates)" for r in candidates}),
                "clusters": None, "entropy": None,
            }  # fmt: skip
            write_report(out_dir / "report.json", report)
            return report
    return _scored_curation(checkpoint, cfg, pool_files, labeled_files, drawn, out_dir, options,
                            base, progress)  # fmt: skip


def _scored_curation(
    checkpoint: Path,
    cfg: Config,
    pool_files: list[Path],
    labeled_files: list[Path],
    drawn: list[Any],
    out_dir: Path,
    options: CurateOptions,
    base: dict[str, Any],
    progress: Callable[[str, int], None] | None,
) -> dict[str, Any]:
    """Seed-model scores of the labelled and pool windows, clusters, then RS4P's selection (or
    the random draw ``drawn``, now with scores); writes selection, histogram and report."""
    import torch

    from s5geo.curate import select as sel
    from s5geo.curate.manifest import plot_entropy, write_report, write_selection
    from s5geo.curate.pool import iter_windows
    from s5geo.curate.score import Scored, score_windows
    from s5geo.models.loading import load_checkpoint_model
    from s5geo.models.segmentor import Segmentor

    net, _ = load_checkpoint_model(checkpoint)
    if not isinstance(net, Segmentor):  # scoring reads the backbone's features
        raise UserError(
            f"{checkpoint} holds a {cfg.model.name} network; curation needs an encoder + decoder "
            "segmentor of s5geo train (a ViT or timm: model)"
        )
    k = cfg.model.num_classes
    if options.background is not None and not 0 <= options.background < k:
        raise UserError(f"background class {options.background} is not one of the {k} classes")

    def score(files: list[Path], stage: str) -> Scored:
        return score_windows(
            net, iter_windows(files, options.window), bands=list(cfg.data.bands),
            input_scale=cfg.data.input_scale, mean=list(cfg.data.mean), std=list(cfg.data.std),
            size=options.window, batch=options.batch, background=options.background,
            progress=None if progress is None else (lambda n: progress(stage, n)),
        )  # fmt: skip

    with torch.inference_mode():
        lab = score(labeled_files, "labelled")
        unl = score(pool_files, "pool")
    if not unl.refs:
        raise UserError("the pool has no window with valid pixels")
    centroids, lab_clusters = sel.kmeans(lab.embedding, options.clusters, seed=options.seed)
    n_l = np.bincount(lab_clusters, minlength=options.clusters)
    clusters = sel.assign(unl.embedding, centroids)
    quota = sel.quotas(n_l, min(options.target, len(unl.refs)))
    if options.strategy == "rs4p":
        chosen = sel.select(unl.entropy, clusters, quota, options.ceiling)
    else:  # the random draw, found among the scored windows (same windows, same order)
        position = {ref: i for i, ref in enumerate(unl.refs)}
        chosen = np.array([position[ref] for ref in drawn], dtype=np.int64)

    out_dir.mkdir(parents=True, exist_ok=True)
    refs = [unl.refs[i] for i in chosen]
    layers = write_selection(
        out_dir / "selection.gpkg", refs, unl.entropy[chosen], clusters[chosen]
    ) if refs else []  # fmt: skip
    plot_entropy(unl.entropy, unl.entropy[chosen], options.ceiling, out_dir / "entropy.png")
    selected = np.bincount(clusters[chosen], minlength=options.clusters)
    pool_counts = np.bincount(clusters, minlength=options.clusters)
    report: dict[str, Any] = {
        **base,
        "labelled_windows": len(lab.refs),
        "pool_windows": len(unl.refs),
        "selected": len(chosen), "layers": layers,
        "georeferenced": sorted({r.crs or "none (pixel coordinates)" for r in unl.refs}),
        "clusters": [
            {"cluster": m, "labelled": int(n_l[m]), "pool": int(pool_counts[m]),
             "quota": int(quota[m]), "selected": int(selected[m])}
            for m in range(options.clusters)
        ],
        "entropy": {
            "pool_mean": float(np.mean(unl.entropy)),
            "pool_quantiles": {str(q): float(np.quantile(unl.entropy, q))
                               for q in (0.0, 0.25, 0.5, 0.75, 1.0)},
            "selected_mean": float(np.mean(unl.entropy[chosen])) if len(chosen) else None,
            "selected_max": float(np.max(unl.entropy[chosen])) if len(chosen) else None,
        },
    }  # fmt: skip
    write_report(out_dir / "report.json", report)
    return report
