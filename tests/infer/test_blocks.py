"""Scenes predicted block by block (rows of the window plan): the rows, and the COGs, of the
whole-scene run, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s5geo.infer import (
    PredictOptions,
    default_model_path,
    load_model,
    plan_blocks,
    predict_block,
    predict_scene,
    write_prediction,
)
from s5geo.infer.blend import StreamingBlender
from s5geo.infer.tiling import WindowPlan, blend_weights, row_blocks

Rows = list[tuple[int, np.ndarray, np.ndarray]]


@pytest.mark.parametrize(
    ("height", "size", "overlap", "pixels"),
    [
        (1000, 64, 16, 5000),
        (1000, 64, 32, 3000),
        (300, 64, 0, 1),
        (50, 64, 8, 10),
        (700, 97, 48, 7),
    ],
)
def test_row_blocks_tile_the_region_and_hold_their_windows(
    height: int, size: int, overlap: int, pixels: int
) -> None:
    plan = WindowPlan(height=height, width=10, size=size, overlap=overlap)
    blocks = row_blocks(plan, pixels)
    assert [b.row0 for b in blocks[1:]] == [b.row1 for b in blocks[:-1]]
    assert (blocks[0].row0, blocks[-1].row1) == (0, height)
    ys = plan.ys
    for b in blocks:
        covering = [r for r, y in enumerate(ys) if y < b.row1 and y + size > b.row0]
        assert list(b.window_rows) == covering
        assert (b.read0, b.read1) == (ys[b.first], min(ys[b.last] + size, height))


def test_a_small_region_is_one_block() -> None:
    plan = WindowPlan(height=700, width=900, size=256, overlap=64)
    assert len(row_blocks(plan, 700 * 900)) == 1
    assert len(row_blocks(plan, 700 * 900 // 3)) >= 3


def _blend(plan: WindowPlan, probs: dict, rows: tuple[int, int] | None, windows) -> Rows:
    out: Rows = []
    blender = StreamingBlender(plan, 4, lambda r, c, f: out.append((r, c, f)), rows=rows)
    weight = blend_weights(plan.size)
    for r, c, win in windows:
        h, w = int(win.height), int(win.width)
        blender.add(r, c, probs[r, c], weight[:h, :w])
    assert blender.finished
    return out


def test_blocks_blend_the_rows_of_the_whole_plan_bit_for_bit(rng: np.random.Generator) -> None:
    plan = WindowPlan(height=530, width=170, size=64, overlap=24)
    probs = {
        (r, c): rng.dirichlet(np.ones(4), size=(int(w.height), int(w.width)))
        .transpose(2, 0, 1)
        .astype(np.float32)
        for r, c, w in plan.windows()
    }
    whole = _blend(plan, probs, None, plan.windows())
    blocks = row_blocks(plan, 170 * 90)
    assert len(blocks) >= 5
    parts = [
        row
        for b in blocks
        for row in _blend(plan, probs, (b.row0, b.row1), plan.windows(b.window_rows))
    ]
    assert [r for r, _, _ in parts] == sorted(r for r, _, _ in parts)
    for i in (1, 2):  # classes, confidence
        whole_rows = np.concatenate([row[i] for row in whole])
        np.testing.assert_array_equal(np.concatenate([row[i] for row in parts]), whole_rows)
    with pytest.raises(ValueError, match="cell boundary"):
        StreamingBlender(plan, 4, lambda r, c, f: None, rows=(0, 3))


@pytest.mark.realdata
def test_a_real_scene_in_blocks_gives_the_same_cogs(real_data: Path, tmp_path: Path) -> None:
    scene = real_data / "dubai" / "images" / "Tile7_image_part_001.jpg"  # 1817 x 2061
    model = load_model(default_model_path())
    options = PredictOptions(overlap=200, batch_size=3)
    single = tmp_path / "single.tif"
    predict_scene(scene, single, model=model, options=options, confidence=tmp_path / "single_c.tif")
    blocks = plan_blocks(scene, 1_000_000, model=model, options=options)
    assert len(blocks) >= 3
    rows: Rows = []
    for block in blocks:
        result = predict_block(
            scene, block, lambda r, c, f: rows.append((r, c.copy(), f.copy())),
            model=model, options=options, confidence=True,
        )  # fmt: skip
        assert result.pixels == 1817 * (block.row1 - block.row0)
    assert [r for r, _, _ in rows] == sorted(r for r, _, _ in rows)
    joined = tmp_path / "blocks.tif"
    write_prediction(
        scene, joined, rows, model=model, options=options, confidence=tmp_path / "blocks_c.tif"
    )
    assert joined.read_bytes() == single.read_bytes()
    assert (tmp_path / "blocks_c.tif").read_bytes() == (tmp_path / "single_c.tif").read_bytes()
    assert joined.with_suffix(".qml").read_text() == single.with_suffix(".qml").read_text()
