"""The Dubai protocol on the real files (skipped when the shared data is absent)."""

import re

import pytest

from s5geo.config import DataConfig
from s5geo.data.module import build_source

pytestmark = pytest.mark.realdata
CFG = DataConfig()


@pytest.fixture(autouse=True)
def needs_data() -> None:
    if not (CFG.resolved_root() / "splits.json").is_file():
        pytest.skip(f"Dubai data not found under {CFG.resolved_root()} (set S5GEO_DATA)")


def tiles(names: list[str]) -> set[str]:
    return {re.match(r"(Tile\d+)_", n).group(1) for n in names}  # type: ignore[union-attr]


def test_splits_follow_the_protocol() -> None:
    sources = {s: build_source(CFG, s) for s in ("train_labeled", "val", "test")}
    unlabeled = build_source(CFG, "train_unlabeled", with_masks=False)
    assert [len(sources["train_labeled"]), len(unlabeled)] == [12, 42]
    assert tiles(sources["val"].names) == {"Tile2"}  # type: ignore[attr-defined]
    assert tiles(sources["test"].names) == {"Tile8"}  # type: ignore[attr-defined]
    assert not set(sources["train_labeled"].names) & set(unlabeled.names)  # type: ignore[attr-defined]
    assert unlabeled.georeferenced is False  # type: ignore[attr-defined]
    assert "mask" not in unlabeled[0]


def test_samples_are_aligned_uint8_images_with_class_masks() -> None:
    sample = build_source(CFG, "val")[0]
    assert sample["image"].dtype.is_floating_point is False
    assert sample["image"].shape[1:] == sample["mask"].shape
    values = set(sample["mask"].unique().tolist())
    assert values <= {0, 1, 2, 3, 4, 255}
