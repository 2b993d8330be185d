"""YAML configs: includes, dotted overrides, type checks, unknown keys named."""

from pathlib import Path

import pytest

from s5geo.config import load_config
from s5geo.errors import UserError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_include_and_overrides(tmp_path: Path) -> None:
    write(tmp_path / "data.yaml", "data:\n  crop_size: 128\n  class_map: dubai\n")
    cfg_path = write(
        tmp_path / "run.yaml",
        "defaults: [data.yaml]\nmodel:\n  name: vit_tiny\ndata:\n  crop_size: 64\n"
        "train:\n  lr: 5e-5\n",
    )
    cfg = load_config(cfg_path, ["train.steps=7", "model.taps=[1, 2, 3, 4]", "train.tau=1"])
    assert cfg.model.name == "vit_tiny"
    assert cfg.data.crop_size == 64  # file beats include
    assert cfg.data.class_map == "dubai"
    assert cfg.train.steps == 7
    assert cfg.train.lr == pytest.approx(5e-5)
    assert cfg.train.tau == 1.0 and isinstance(cfg.train.tau, float)
    assert cfg.model.taps == [1, 2, 3, 4]


def test_unknown_key_is_named(tmp_path: Path) -> None:
    cfg_path = write(tmp_path / "run.yaml", "train:\n  stepz: 3\n")
    with pytest.raises(UserError, match="train.stepz"):
        load_config(cfg_path)
    with pytest.raises(UserError, match="model.depth"):
        load_config(write(tmp_path / "ok.yaml", "{}"), ["model.depth=3"])


def test_wrong_type_and_missing_file(tmp_path: Path) -> None:
    cfg_path = write(tmp_path / "run.yaml", "train:\n  steps: many\n")
    with pytest.raises(UserError, match="train.steps"):
        load_config(cfg_path)
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(UserError, match="key=value"):
        load_config(write(tmp_path / "ok.yaml", "{}"), ["train.steps"])


@pytest.mark.parametrize(
    ("override", "allowed"),
    [
        ("train.steps=-5", "> 0"),
        ("train.batch_size=0", "> 0"),
        ("train.devices=0", "> 0"),
        ("train.lr=-1", "> 0"),
        ("train.tau=1.5", r"in \(0, 1\]"),
        ("train.tau=0", r"in \(0, 1\]"),
        ("train.cutmix_p=2", r"in \[0, 1\]"),
        ("train.cutmix_area=[0.5, 0.1]", "low <= high <= 1"),
        ("train.precision=fp16", "one of 32-true"),
        ("train.seed=-1", "2\\*\\*32"),
        ("train.max_minutes=0", "> 0"),
        ("model.dropout=1", r"in \[0, 1\)"),
        ("data.kind=folders", "one of image_folder, raster, aligned"),
        ("data.std=[0.2, 0, 0.2]", "numbers > 0"),
        ("data.bands=[0, 1, 2]", "band numbers >= 1"),
        ("train.method=foo", "one of supervised, s4p"),
    ],
)
def test_values_outside_their_domain_name_key_and_allowed_values(
    tmp_path: Path, override: str, allowed: str
) -> None:
    key = override.split("=")[0]
    with pytest.raises(UserError, match=rf"^config key {key}: .* it must be .*{allowed}"):
        load_config(write(tmp_path / "ok.yaml", "{}"), [override])


def test_values_on_the_edge_of_their_domain_are_accepted(tmp_path: Path) -> None:
    edges = ["train.tau=1", "train.cutmix_p=0", "train.weight_decay=0", "train.num_workers=0",
             "model.dropout=0", "train.max_minutes=null", "train.method=supervised"]  # fmt: skip
    cfg = load_config(write(tmp_path / "ok.yaml", "{}"), edges)
    assert cfg.train.tau == 1.0 and cfg.train.max_minutes is None


def test_every_bundled_recipe_is_valid() -> None:
    """The domains refuse nothing the project's own configs use, archived recipes included (their
    includes reach back into the current folders, so a move or a rename there would break them)."""
    from s5geo.distill.config import load_distill_config

    configs = Path(__file__).resolve().parents[1] / "configs"
    for path in [*(configs / "s4p").glob("*.yaml"), *(configs / "data").glob("*.yaml")]:
        load_config(path)
    archived = sorted((configs / "archive" / "distill").glob("*.yaml"))
    assert archived  # a moved archive would otherwise pass unchecked
    for path in [*(configs / "distill").glob("*.yaml"), *archived]:
        load_distill_config(path)


def test_invalid_yaml_is_one_line_with_its_position(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.yaml", "model: [unclosed\n")
    with pytest.raises(UserError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid YAML at line 1, column 8: ")
    assert "\n" not in message
    binary = tmp_path / "scene.yaml"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not text")
    with pytest.raises(UserError, match="not a YAML text file"):
        load_config(binary)
