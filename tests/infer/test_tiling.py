import numpy as np
import pytest

from s5geo.infer.tiling import WindowPlan, axis_starts, blend_weights


@pytest.mark.parametrize("length", [1, 63, 64, 65, 100, 513, 1000])
@pytest.mark.parametrize(("size", "overlap"), [(64, 0), (64, 16), (64, 32)])
def test_windows_cover_every_pixel_and_end_at_the_edge(
    length: int, size: int, overlap: int
) -> None:
    starts = axis_starts(length, size, size - overlap)
    covered = np.zeros(length, bool)
    for s in starts:
        assert s >= 0
        covered[s : s + size] = True
    assert covered.all()
    assert min(starts[-1] + size, length) == length
    if length >= size:
        assert starts[-1] + size == length  # last window aligned to the edge, never padded
    assert starts == sorted(set(starts))
    steps = np.diff(starts)
    if len(steps):
        assert steps.max() <= size - overlap  # at least the asked overlap everywhere
        assert steps.max() - steps.min() <= 1  # spread evenly: no wide last overlap


def test_windows_are_as_few_as_a_regular_grid_needs() -> None:
    # 20000 px, 512-px windows, 51 px overlap: a regular grid needs 44 windows, the last one
    # overlapping its neighbour by 386 px; evenly spread, every overlap is 58 or 59 px.
    starts = axis_starts(20000, 512, 461)
    assert len(starts) == 44
    assert set(512 - np.diff(starts)) <= {58, 59}


def test_plan_windows_are_row_major_and_offset_by_the_extent() -> None:
    plan = WindowPlan(height=100, width=150, size=64, overlap=16, row_off=10, col_off=20)
    wins = list(plan.windows())
    assert len(wins) == len(plan) == len(plan.ys) * len(plan.xs)
    assert [(r, c) for r, c, _ in wins] == sorted((r, c) for r, c, _ in wins)
    first = wins[0][2]
    assert (first.row_off, first.col_off) == (10, 20)
    last = wins[-1][2]
    assert last.row_off + last.height == 110 and last.col_off + last.width == 170


def test_blend_weights_are_positive_and_peak_in_the_middle() -> None:
    w = blend_weights(64, floor=0.05)
    assert w.shape == (64, 64) and (w > 0).all()
    assert w.min() == pytest.approx(0.05**2, rel=1e-3)
    assert w[32, 32] == w.max()
