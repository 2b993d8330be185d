"""Model composition: paper parameter counts, output shapes, ViT checkpoint loading."""

import re
from pathlib import Path

import pytest
import torch

from s5geo.config import ModelConfig
from s5geo.errors import UserError
from s5geo.models import build_model, describe_config
from s5geo.models.checkpoint import load_vit_weights
from s5geo.models.vit import ViT

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "s4p"


@pytest.mark.parametrize(
    ("name", "millions"), [("vit_b", 103.2), ("vit_l", 327.4), ("vit_h", 663.4)]
)
def test_paper_configs_match_published_counts(name: str, millions: float) -> None:
    info = describe_config(CONFIGS / f"{name}.yaml", [])
    assert info["model"] == name
    assert info["num_classes"] == 16 and info["img_size"] == 512
    assert round(info["parameters"] / 1e6, 1) == millions


@pytest.mark.parametrize("name", ["vit_tiny", "timm:resnet18"])
def test_logits_have_input_size(name: str) -> None:
    model = build_model(ModelConfig(name=name, num_classes=5, img_size=64, decoder_channels=16))
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 96, 80))  # another size than trained: pos-embed resampled
    assert out.shape == (2, 5, 96, 80)


def test_unknown_model_name_is_a_user_error() -> None:
    with pytest.raises(UserError, match="vit_q"):
        build_model(ModelConfig(name="vit_q"))


def test_loads_timm_vit_checkpoint_with_class_token_and_other_grid(tmp_path: Path) -> None:
    import timm

    source = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    path = tmp_path / "vit_tiny.pth"
    torch.save({"model": source.state_dict()}, path)
    vit = ViT(img_size=64, embed_dim=192, depth=12, num_heads=3)
    load_vit_weights(vit, path)
    assert torch.equal(vit.blocks[5].attn.qkv.weight, source.blocks[5].attn.qkv.weight)
    assert vit.pos_embed.shape == (1, 16, 192)  # 14x14 grid + class token -> 4x4


def test_mismatched_checkpoint_is_refused(tmp_path: Path) -> None:
    import timm

    path = tmp_path / "vit_small.pth"
    torch.save(timm.create_model("vit_small_patch16_224", pretrained=False).state_dict(), path)
    with pytest.raises(UserError, match="does not fit"):
        load_vit_weights(ViT(img_size=64, embed_dim=192, depth=12, num_heads=3), path)
    with pytest.raises(UserError, match="not found"):
        load_vit_weights(ViT(img_size=64, embed_dim=192, depth=12, num_heads=3), tmp_path / "x")


@pytest.mark.parametrize(
    ("name", "smp", "message"),
    [
        ("timm:nonexistent_net", False, "timm has no model 'nonexistent_net'"),
        ("timm:resnet81", False, "did you mean resnet18"),
        ("smp:Unet:resnet18", False, "unknown model 'smp:Unet:resnet18'; known: vit_tiny"),
        ("smp:Linknet:resnet18", True, "smp:<Unet|FPN>:<encoder>"),
        ("smp:Unet:resnet81", True, "unknown smp encoder 'resnet81'"),
        ("smp:FPN:tu-nonexistent_net", True, "timm has no model 'nonexistent_net'"),
    ],
)
def test_unknown_names_are_refused_before_building(name: str, smp: bool, message: str) -> None:
    from s5geo.models import check_model_name

    with pytest.raises(UserError, match=rf"^config key model\.name: .*{re.escape(message)}"):
        check_model_name(name, smp=smp)


def test_known_names_pass() -> None:
    from s5geo.models import check_model_name

    for name in ("vit_tiny", "timm:resnet18", "timm:resnet18.a1_in1k"):
        check_model_name(name)
    for name in ("smp:Unet:resnet18", "smp:FPN:tu-mobilenetv3_small_100"):
        check_model_name(name, smp=True)
