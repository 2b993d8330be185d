"""The streaming blender against a plain full-scene accumulator."""

import numpy as np
import pytest

from s5geo.infer.blend import NODATA, StreamingBlender, class_of_max
from s5geo.infer.tiling import WindowPlan, blend_weights


def _run(
    plan: WindowPlan,
    k: int,
    rng: np.random.Generator,
    skip: set[tuple[int, int]],
    nodata: np.ndarray | None = None,
):
    rows: list[tuple[int, np.ndarray, np.ndarray]] = []
    blender = StreamingBlender(plan, k, lambda r, c, f: rows.append((r, c, f)))
    full = np.zeros((k, plan.height, plan.width))
    wsum = np.zeros((plan.height, plan.width))
    w = blend_weights(plan.size)
    peak_open = 0
    for r, c, win in plan.windows():
        y, x = int(win.row_off), int(win.col_off)
        h, wd = int(win.height), int(win.width)
        if (r, c) in skip:
            blender.skip(r, c)
            continue
        p = rng.dirichlet(np.ones(k), size=(h, wd)).transpose(2, 0, 1).astype(np.float32)
        ww = w[:h, :wd]
        if nodata is not None:  # scene pixels without data weigh 0 in every window
            ww = np.where(nodata[y : y + h, x : x + wd], 0.0, ww).astype(np.float32)
        blender.add(r, c, p, ww)
        full[:, y : y + h, x : x + wd] += p * ww
        wsum[y : y + h, x : x + wd] += ww
        peak_open = max(peak_open, blender.open_cells)
    assert blender.finished
    starts = [r for r, _, _ in rows]
    assert starts == sorted(starts) and starts[0] == 0
    cls = np.concatenate([c for _, c, _ in rows])
    conf = np.concatenate([f for _, _, f in rows])
    expected = np.where(wsum > 0, np.argmax(full, axis=0), NODATA)
    top = np.rint(full.max(axis=0) / np.where(wsum > 0, wsum, 1.0) * 100.0)
    np.testing.assert_allclose(conf, np.where(wsum > 0, top, NODATA), atol=1)
    return cls, conf, expected, wsum, peak_open


@pytest.mark.parametrize(
    ("h", "w", "size", "overlap"), [(300, 410, 64, 16), (130, 97, 64, 0), (64, 64, 64, 8)]
)
def test_blender_matches_full_scene_accumulation(h, w, size, overlap, rng) -> None:
    plan = WindowPlan(height=h, width=w, size=size, overlap=overlap)
    cls, conf, expected, _, _ = _run(plan, 5, rng, set())
    assert cls.shape == (h, w)
    np.testing.assert_array_equal(cls, expected)
    assert conf.max() <= 100 and conf.min() >= 20  # at least 1/K of the mass


def test_skipped_windows_leave_nodata_only_where_nothing_else_covers(rng) -> None:
    plan = WindowPlan(height=200, width=200, size=64, overlap=16)
    cls, conf, expected, wsum, _ = _run(plan, 3, rng, {(0, 0), (1, 1)})
    np.testing.assert_array_equal(cls, expected)
    assert ((cls == NODATA) == (wsum == 0)).all()
    assert ((conf == NODATA) == (wsum == 0)).all()


def test_nodata_inside_windows_is_nodata_and_the_rest_blends(rng) -> None:
    plan = WindowPlan(height=200, width=230, size=64, overlap=16)
    nodata = np.zeros((200, 230), bool)
    nodata[30:90, 40:170] = True  # across window interiors and overlaps
    cls, _, expected, _, _ = _run(plan, 4, rng, set(), nodata)
    np.testing.assert_array_equal(cls, expected)
    assert ((cls == NODATA) == nodata).all()


def test_open_cells_do_not_grow_with_scene_height(rng) -> None:
    peaks = []
    for h in (300, 1200):
        plan = WindowPlan(height=h, width=300, size=64, overlap=16)
        *_, peak = _run(plan, 2, rng, set())
        peaks.append(peak)
    assert peaks[0] == peaks[1]


@pytest.mark.parametrize("k", [1, 2, 5, 16])
def test_class_of_max_is_argmax_with_first_on_ties(k: int) -> None:
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 4, size=(k, 37, 53)).astype(np.float32)  # many ties
    got = class_of_max(scores)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, np.argmax(scores, axis=0))
