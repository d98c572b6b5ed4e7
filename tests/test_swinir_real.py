"""Table 2's public real-world models beyond Real-ESRGAN: RealSwinIR (SwinIR's nearest+conv upsampler, in the layout
of 003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth) and BSRGAN (KAIR's BSRGAN.pth, a bare ESRGAN-named RRDBNet)."""
import pytest
import torch
import torch.nn.functional as F

from pipeline.archs.rrdbnet import RRDBNet, basicsr_to_esrgan
from pipeline.archs.swinir import SwinIR, swinir_config_from_state
from pipeline.checkpoint import CheckpointError
from pipeline.sr import build_generator

TINY = dict(img_size=16, embed_dim=16, depths=(2, 3), num_heads=(2, 4), window_size=4, mlp_ratio=2.0, num_feat=8)


def tiny_real(upscale=4):
    torch.manual_seed(0)
    return SwinIR(**TINY, upscale=upscale, upsampler="nearest+conv").eval()


def lr_batch(h=10, w=13):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("upscale", [4, 2])
def test_nearest_conv_shapes(upscale):
    with torch.no_grad():
        out = tiny_real(upscale)(lr_batch(10, 13))  # neither side a multiple of the 4-pixel window
    assert out.shape == (1, 3, 10 * upscale, 13 * upscale) and torch.isfinite(out).all()


def test_nearest_conv_other_scales_and_upsamplers_are_refused():
    with pytest.raises(ValueError, match="nearest\\+conv upsampler is x2 or x4, got x8"):
        SwinIR(**TINY, upscale=8, upsampler="nearest+conv")
    with pytest.raises(ValueError, match="upsampler must be one of"):
        SwinIR(**TINY, upsampler="pixelshuffledirect")


# Upstream's models/network_swinir.py (JingyunLiang/SwinIR 6545850f) with upsampler='nearest+conv',
# resi_connection='1conv', ape=False, patch_norm=True: the module keys of the real-world model outside `layers`, in
# state-dict order, and each Swin block's (attn_mask only in shifted blocks; relative_position_index is a buffer)
TOP_LEVEL_KEYS = ["conv_first.weight", "conv_first.bias", "patch_embed.norm.weight", "patch_embed.norm.bias",
                  "norm.weight", "norm.bias", "conv_after_body.weight", "conv_after_body.bias",
                  "conv_before_upsample.0.weight", "conv_before_upsample.0.bias", "conv_up1.weight", "conv_up1.bias",
                  "conv_up2.weight", "conv_up2.bias", "conv_hr.weight", "conv_hr.bias", "conv_last.weight",
                  "conv_last.bias"]
BLOCK_KEYS = ["norm1.weight", "norm1.bias", "attn.relative_position_bias_table", "attn.relative_position_index",
              "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias", "norm2.weight", "norm2.bias",
              "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias"]


def public_real_keys(depths) -> list[str]:
    """The state-dict keys of upstream's real-world SwinIR x4 with these depths, in order."""
    layers = []
    for i, depth in enumerate(depths):
        for j in range(depth):
            prefix = f"layers.{i}.residual_group.blocks.{j}."
            layers += ([prefix + "attn_mask"] if j % 2 else []) + [prefix + k for k in BLOCK_KEYS]
        layers += [f"layers.{i}.conv.weight", f"layers.{i}.conv.bias"]
    return TOP_LEVEL_KEYS[:4] + layers + TOP_LEVEL_KEYS[4:]


def test_realswinir_m_matches_the_public_layout_and_sizes():
    """003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth: main_test_swinir.py's real_sr model (embed_dim 180, depths
    and heads [6]*6, window 8, mlp_ratio 2, nearest+conv); its sizes read back from the tensors."""
    state = SwinIR(upsampler="nearest+conv").state_dict()
    assert list(state) == public_real_keys((6,) * 6)
    for key, shape in {"conv_before_upsample.0.weight": (64, 180, 3, 3), "conv_up1.weight": (64, 64, 3, 3),
                       "conv_up2.weight": (64, 64, 3, 3), "conv_hr.weight": (64, 64, 3, 3),
                       "conv_last.weight": (3, 64, 3, 3), "layers.0.residual_group.blocks.1.attn_mask": (64, 64, 64)
                       }.items():
        assert tuple(state[key].shape) == shape, key
    assert swinir_config_from_state(state) == dict(
        img_size=64, in_chans=3, embed_dim=180, depths=(6,) * 6, num_heads=(6,) * 6, window_size=8, mlp_ratio=2.0,
        upscale=4, num_feat=64, upsampler="nearest+conv")


@pytest.mark.parametrize("upscale", [4, 2])
def test_public_layout_round_trip(tmp_path, upscale):
    """A state dict under upstream's key names, wrapped in 'params_ema' as main_test_swinir.py reads real_sr files,
    loads through build_generator with its sizes read back and gives the same output."""
    net = tiny_real(upscale)
    state = net.state_dict()
    expected = public_real_keys(TINY["depths"])
    assert list(state) == (expected if upscale == 4 else [k for k in expected if not k.startswith("conv_up2.")])
    assert swinir_config_from_state(state) == dict(in_chans=3, upscale=upscale, upsampler="nearest+conv", **TINY)
    path = tmp_path / "003_realSR_tiny.pth"
    torch.save({"params_ema": state}, path)
    loaded = build_generator(path)
    assert isinstance(loaded, SwinIR) and loaded.upsampler == "nearest+conv" and loaded.scale == upscale
    x = lr_batch()
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


def test_forward_matches_a_hand_composed_upsampler():
    """The body as SwinIR's, then upstream's real-world tail written out: LeakyReLU(0.01) after
    conv_before_upsample, twice nearest x2 (pixel repetition) + conv + LeakyReLU(0.2), conv_hr + LeakyReLU(0.2),
    conv_last, the mean added back, the window padding cropped off."""
    net = tiny_real()
    x = lr_batch(8, 12)  # a multiple of the window: no padding

    def conv(module, t):
        return F.conv2d(t, module.weight, module.bias, padding=1)

    with torch.no_grad():
        feat = net.conv_first(x - net.mean)
        feat = net.conv_after_body(net.forward_features(feat)) + feat
        y = F.leaky_relu(conv(net.conv_before_upsample[0], feat), 0.01)
        for module in (net.conv_up1, net.conv_up2):
            y = F.leaky_relu(conv(module, y.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)), 0.2)
        y = conv(net.conv_last, F.leaky_relu(conv(net.conv_hr, y), 0.2)) + net.mean
        assert torch.allclose(net(x), y, atol=1e-6)
        padded = lr_batch(10, 13)  # padded to 12 x 16 by reflection, then cropped back to 40 x 52
        assert torch.allclose(net(padded), net(F.pad(padded, (0, 3, 0, 2), mode="reflect"))[..., :40, :52], atol=1e-6)


def test_incomplete_real_state_names_the_missing_key():
    state = {k: v for k, v in tiny_real().state_dict().items() if k != "conv_hr.weight"}
    with pytest.raises(CheckpointError, match="missing keys conv_hr.weight"):
        build_generator(state)


def test_bsrgan_bare_esrgan_layout_loads(tmp_path):
    """KAIR's BSRGAN.pth: a bare state dict (no params wrapper) with ESRGAN's key names, RRDBNet 64/23/32 x4."""
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_block=2, num_grow_ch=4).eval()
    path = tmp_path / "BSRGAN.pth"
    torch.save(basicsr_to_esrgan(net.state_dict()), path)
    loaded = build_generator(path)
    x = lr_batch(12, 10)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
    full = basicsr_to_esrgan(RRDBNet(num_feat=64, num_block=23, num_grow_ch=32).state_dict())
    assert {"RRDB_trunk.22.RDB3.conv5.weight", "trunk_conv.weight", "upconv2.weight", "HRconv.weight"} <= set(full)
    big = build_generator(full)
    assert isinstance(big, RRDBNet) and big.scale == 4 and len(big.body) == 23
