"""Generators (RRDBNet, SwinIR, SRResNet, SPSRNet, SFTGAN), their checkpoint layouts, and the VGG-style image
discriminator."""
import pathlib

import pytest
import torch
import torch.nn.functional as F
from kornia.models.rrdbnet import RRDBNet as KorniaRRDBNet

from pipeline.archs.rrdbnet import (RRDBNet, basicsr_to_esrgan, esrgan_to_basicsr, is_esrgan_layout,
                                    rrdbnet_config_from_state)
from pipeline.archs.sftgan import SFTGAN
from pipeline.archs.spsr import SPSRNet, gradient_map
from pipeline.archs.srresnet import SRResNet
from pipeline.archs.swinir import SwinIR, swinir_config_from_state
from pipeline.archs.vgg_discriminator import VGGStyleDiscriminator
from pipeline.checkpoint import CheckpointError, load_state_dict, save_state_dict
from pipeline.sr import build_generator
from paper_standins import OldRRDBNet, UpstreamSPSRNet, sftgan_checkpoints
from pyiqa.matlab_utils import imresize

TINY_RRDB = dict(num_feat=8, num_block=2, num_grow_ch=4)
TINY_SWINIR = dict(img_size=16, embed_dim=16, depths=(2, 3), num_heads=(2, 4), window_size=4, mlp_ratio=2.0,
                   num_feat=8)


@pytest.fixture
def tiny_rrdb():
    torch.manual_seed(0)
    return RRDBNet(**TINY_RRDB).eval()


@pytest.fixture
def tiny_swinir():
    torch.manual_seed(0)
    return SwinIR(**TINY_SWINIR).eval()


def lr_batch(h=12, w=10):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))


def test_rrdbnet_upscales_x4(tiny_rrdb):
    out = tiny_rrdb(lr_batch(12, 10))
    assert out.shape == (1, 3, 48, 40)
    assert torch.isfinite(out).all()


def count(net):
    return sum(p.numel() for p in net.parameters())


def test_full_size_parameter_counts():
    one, two = count(RRDBNet(num_block=1)), count(RRDBNet(num_block=2))  # 23 blocks are slow to initialise
    assert round((one + 22 * (two - one)) / 1e6, 1) == 16.7  # the paper's SRN
    assert round(count(SwinIR()) / 1e6, 1) == 11.9  # SwinIR-M x4


def test_esrgan_basicsr_round_trip(tiny_rrdb):
    state = tiny_rrdb.state_dict()
    old = basicsr_to_esrgan(state)
    assert is_esrgan_layout(old) and not is_esrgan_layout(state)
    for key in ("conv_first.weight", "RRDB_trunk.1.RDB3.conv5.bias", "trunk_conv.weight", "upconv1.weight",
                "upconv2.bias", "HRconv.weight", "conv_last.bias"):
        assert key in old
    assert not any(k.startswith(("body.", "conv_body", "conv_up", "conv_hr")) for k in old)
    back = esrgan_to_basicsr(old)
    assert list(back) == list(state)
    x = lr_batch()
    with torch.no_grad():
        assert torch.equal(build_generator(old)(x), tiny_rrdb(x))


def test_old_rrdb_net_layout_loads_and_computes_as_upstream():
    torch.manual_seed(0)
    old = OldRRDBNet(**TINY_RRDB).eval()  # the old BasicSR RRDB_Net's module tree: WGSR's checkpoints' keys
    state = old.state_dict()
    assert {"model.0.weight", "model.1.sub.1.RDB3.conv4.0.weight", "model.1.sub.1.RDB3.conv5.bias",
            "model.1.sub.2.weight", "model.3.weight", "model.6.bias", "model.8.weight", "model.10.bias"} <= set(state)
    assert is_esrgan_layout(state)
    assert list(esrgan_to_basicsr(state)) == list(RRDBNet(**TINY_RRDB).state_dict())
    x = lr_batch()
    with torch.no_grad():
        assert torch.allclose(build_generator(state)(x), old(x), atol=1e-6)


def test_spsr_checkpoint_loads_and_computes_as_upstream(tmp_path):
    torch.manual_seed(0)
    upstream = UpstreamSPSRNet(num_feat=8, num_block=21, num_grow_ch=4).eval()
    state = upstream.state_dict()
    assert {"model.8.weight", "HR_conv0_new.0.weight", "HR_conv1_new.bias", "b_module.8.weight", "conv_w.weight",
            "get_g_nopadding.weight_h", "f_block.RDB3.conv5.bias", "b_block_4.RDB1.conv1.0.weight",
            "model.1.sub.21.weight"} <= set(state)
    path = tmp_path / "spsr.pth"
    torch.save(state, path)  # the bare state dict, as SPSR's base_model.save_network writes it
    net = build_generator(path)
    x = lr_batch(12, 10)
    with torch.no_grad():
        out = net(x)
        assert isinstance(net, SPSRNet) and out.shape == (1, 3, 48, 40)
        assert torch.allclose(out, upstream(x), atol=1e-5)
        assert torch.allclose(gradient_map(x), upstream.get_g_nopadding(x), atol=1e-6)
    state["get_g_nopadding.weight_h"] = state["get_g_nopadding.weight_h"] * 2
    with pytest.raises(CheckpointError, match="weight_h is not SPSR's fixed gradient kernel"):
        build_generator(state)


def test_sftgan_checkpoints_load_and_compute_as_upstream(tmp_path):
    seg, sft, weights, prior = sftgan_checkpoints(tmp_path)
    # block.py's flattening: stem conv-BN-ReLU x3 and the max pool are feature.0-9, the first Res131 feature.10
    assert {"feature.6.weight", "feature.7.running_var", "feature.10.res.7.running_var", "feature.10.proj.1.weight",
            "feature.16.weight", "deconv.weight"} <= set(seg.state_dict())
    assert {"sft_branch.15.sft1.SFT_shift_conv1.bias", "sft_branch.16.SFT_scale_conv0.weight", "sft_branch.17.weight",
            "HR_branch.8.weight", "CondNet.8.weight"} <= set(sft.state_dict())
    net = build_generator(weights, prior)
    x = lr_batch(12, 10)
    with torch.no_grad():
        # test_segmentation.py: MATLAB bicubic x4, BGR, 0-255, Caffe means off; test_sftgan.py: (LR, probabilities)
        prob = seg(imresize(x, scale=4).flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1))
        expected, out = sft((x, prob)), net(x)
        assert isinstance(net, SFTGAN) and out.shape == (1, 3, 48, 40)
        assert torch.allclose(prob.sum(1), torch.ones(1, 48, 40), atol=1e-5) and prob.std() > 0.01
        assert torch.allclose(out, expected, atol=1e-5)
        odd = lr_batch(11, 9)  # padded by a replicated row and column, cropped back
        assert torch.equal(net(odd), net(F.pad(odd, (0, 1, 0, 1), mode="replicate"))[..., :44, :36])
    with pytest.raises(CheckpointError, match="SFTGAN_torch.pth: an SFTGAN generator: it needs its segmentation"):
        build_generator(weights)
    with pytest.raises(CheckpointError, match="the prior is not OutdoorSceneSeg's state dict"):
        build_generator(sft.state_dict(), sft.state_dict())
    with pytest.raises(CheckpointError, match="only SFTGAN's generator takes one"):
        build_generator(RRDBNet(**TINY_RRDB).state_dict(), prior)


def test_srresnet_is_ranksrgans_generator_in_its_key_names(tmp_path):
    torch.manual_seed(0)
    net = SRResNet(num_feat=8, num_block=3).eval()
    keys = {k.rsplit(".", 1)[0] for k in net.state_dict()}
    assert keys == {"conv_first", "LRconv", "upconv1", "upconv2", "HRconv", "conv_last",
                    *(f"recon_trunk.{i}.conv{j}" for i in range(3) for j in (1, 2))}
    # nf 64, nb 16: 1,792 + 16 x 2 x 36,928 (trunk) + 2 x 36,928 (LRconv, HRconv) + 2 x 147,712 (upconvs) + 1,731
    assert count(SRResNet()) == 1_554_499
    path = tmp_path / "mmsr_RankSRGAN_NIQE.pth"
    torch.save(net.state_dict(), path)  # the bare state dict, as mmsr's save_network writes it
    x = lr_batch()
    loaded = build_generator(path)
    with torch.no_grad():
        out = loaded(x)
        assert isinstance(loaded, SRResNet) and out.shape == (1, 3, 48, 40) and torch.equal(out, net(x))
        # the long skip from conv_first and no bilinear skip of the input: zero weights everywhere give zero
        for p in net.parameters():
            p.zero_()
        assert torch.equal(net(x), torch.zeros_like(out))
    with pytest.raises(CheckpointError, match="only x4"):
        build_generator({k: v for k, v in loaded.state_dict().items() if not k.startswith("upconv2")})


@pytest.mark.parametrize("wrapper", ["params_ema", "params"])
def test_basicsr_wrapped_pth_loads(tmp_path, tiny_rrdb, wrapper):
    path = tmp_path / "net.pth"
    torch.save({wrapper: tiny_rrdb.state_dict(), "iter": 5}, path)
    x = lr_batch()
    with torch.no_grad():
        assert torch.equal(build_generator(path)(x), tiny_rrdb(x))


def test_file_fitting_no_layout_names_keys(tmp_path):
    path = tmp_path / "other.safetensors"
    save_state_dict(path, {"fc.weight": torch.zeros(2, 3), "fc.bias": torch.zeros(2)})
    with pytest.raises(CheckpointError) as err:
        build_generator(path)
    msg = str(err.value)
    assert "none of RRDBNet" in msg and "missing keys" in msg and "conv_first.weight" in msg
    assert "unexpected keys (2: fc.bias, fc.weight)" in msg  # safetensors stores keys sorted
    assert "\n" not in msg


def test_same_state_and_metadata_give_the_same_bytes(tmp_path):
    """safetensors orders metadata by hash, differently for each map it builds; our files must not change."""
    state = {"b.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.ones(2, dtype=torch.float16)}
    meta = {key: f"value {i}" for i, key in enumerate("hgfedcba")}
    blobs = set()
    for i in range(5):
        save_state_dict(tmp_path / f"{i}.safetensors", state, meta)
        blobs.add((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(blobs) == 1
    loaded, loaded_meta = load_state_dict(tmp_path / "0.safetensors")
    assert loaded_meta == meta and loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert int.from_bytes(blobs.pop()[:8], "little") % 8 == 0  # tensor data stays 8-byte aligned


def test_incomplete_rrdbnet_names_missing_and_unexpected(tiny_rrdb):
    state = dict(tiny_rrdb.state_dict())
    del state["conv_hr.weight"]
    state["extra.weight"] = torch.zeros(1)
    expected = r"missing keys \(1: conv_hr.weight\); unexpected keys \(1: extra.weight\)"
    with pytest.raises(CheckpointError, match=expected):
        build_generator(state)


def test_shape_mismatch_is_a_checkpoint_error(tiny_rrdb):
    state = dict(tiny_rrdb.state_dict())
    state["conv_hr.weight"] = torch.zeros(8, 8, 1, 1)
    with pytest.raises(CheckpointError, match=r"conv_hr.weight: \(8, 8, 1, 1\) vs \(8, 8, 3, 3\)"):
        build_generator(state)


class _Payload:
    """Unpickling this would create a file: a stand-in for arbitrary code in a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def test_pickled_object_is_refused_without_running_it(tmp_path, tiny_rrdb):
    marker = tmp_path / "was_unpickled"
    path = tmp_path / "evil.pth"
    torch.save({"params": tiny_rrdb.state_dict(), "extra": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="not a weights-only checkpoint"):
        build_generator(path)
    assert not marker.exists()


def test_swinir_shapes_and_window_padding(tiny_swinir):
    out = tiny_swinir(lr_batch(10, 13))  # neither side a multiple of the 4-pixel window
    assert out.shape == (1, 3, 40, 52)
    assert torch.isfinite(out).all()
    # padding then cropping: the result equals running the explicitly reflect-padded input and cropping
    x = lr_batch(10, 13)
    padded = F.pad(x, (0, 3, 0, 2), mode="reflect")
    with torch.no_grad():
        assert torch.allclose(tiny_swinir(x), tiny_swinir(padded)[..., :40, :52], atol=1e-6)


def test_swinir_stored_mask_matches_recomputed(tiny_swinir):
    """At img_size the stored attn_mask buffer is used, elsewhere one is computed: both paths must agree."""
    x = lr_batch(16, 16)
    with torch.no_grad():
        stored = tiny_swinir(x)
        for layer in tiny_swinir.layers:
            for block in layer.residual_group.blocks:
                block.input_resolution = -1  # force the on-the-fly mask
        assert torch.allclose(tiny_swinir(x), stored, atol=1e-6)


def test_swinir_m_state_dict_matches_public_layout():
    """Key names and shapes of 001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth (weights under `params`)."""
    state = SwinIR().state_dict()
    expected = {
        "conv_first.weight": (180, 3, 3, 3),
        "patch_embed.norm.weight": (180,),
        "layers.0.residual_group.blocks.0.norm1.weight": (180,),
        "layers.0.residual_group.blocks.0.attn.relative_position_bias_table": (225, 6),
        "layers.0.residual_group.blocks.0.attn.relative_position_index": (64, 64),
        "layers.0.residual_group.blocks.0.attn.qkv.weight": (540, 180),
        "layers.0.residual_group.blocks.0.attn.proj.bias": (180,),
        "layers.0.residual_group.blocks.1.attn_mask": (64, 64, 64),
        "layers.0.residual_group.blocks.0.mlp.fc1.weight": (360, 180),
        "layers.5.residual_group.blocks.5.mlp.fc2.bias": (180,),
        "layers.5.conv.weight": (180, 180, 3, 3),
        "norm.weight": (180,),
        "conv_after_body.weight": (180, 180, 3, 3),
        "conv_before_upsample.0.weight": (64, 180, 3, 3),
        "upsample.0.weight": (256, 64, 3, 3),
        "upsample.2.weight": (256, 64, 3, 3),
        "conv_last.weight": (3, 64, 3, 3),
    }
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key
    assert "layers.0.residual_group.blocks.0.attn_mask" not in state  # unshifted blocks store no mask
    assert "mean" not in state and "layers.6.conv.weight" not in state


def test_build_generator_infers_sizes(tiny_rrdb, tiny_swinir, tmp_path):
    assert rrdbnet_config_from_state(tiny_rrdb.state_dict()) == dict(num_in_ch=3, num_out_ch=3, **TINY_RRDB)
    assert swinir_config_from_state(tiny_swinir.state_dict()) == dict(in_chans=3, upscale=4, **TINY_SWINIR)
    path = tmp_path / "swinir.safetensors"
    save_state_dict(path, tiny_swinir.state_dict())
    net = build_generator(path)
    assert isinstance(net, SwinIR) and not net.training
    x = lr_batch(8, 12)
    with torch.no_grad():
        assert torch.equal(net(x), tiny_swinir(x))


@pytest.mark.parametrize("scale", [2, 1])
def test_rrdbnet_x2_x1_checkpoints_are_refused_by_name(scale):
    """BasicSR's x2/x1 RRDBNets pixel-unshuffle their input: read as x4 they would load and crash when run."""
    state = KorniaRRDBNet(3, 3, scale=scale, **TINY_RRDB).state_dict()
    with pytest.raises(CheckpointError, match=f"x{scale} RRDBNet checkpoint .* not supported, only x4"):
        build_generator(state)


def with_upsampler(state: dict, convs: dict[str, int]) -> dict:
    """`state` with its upsampler swapped for the convs in `convs` (module name -> output channels; zeros): the
    module names of SwinIR's other upsampler options, and x3's one conv for PixelShuffle(3). (The real-world
    nearest+conv upsampler loads: tests/test_swinir_real.py.)"""
    body = {k: v for k, v in state.items() if not k.startswith(("conv_before_upsample.", "upsample.", "conv_last."))}
    return body | {f"{name}.weight": torch.zeros(out_ch, 8, 3, 3) for name, out_ch in convs.items()}


@pytest.mark.parametrize("convs, message", [  # num_feat is 8
    ({"conv_before_upsample.0": 8, "upsample.0": 9 * 8, "conv_last": 3},
     r"SwinIR x3 \(pixel shuffle by 3\) is not supported, only scales that are powers of 2"),
    ({"upsample.0": 4 * 4 * 3}, r"SwinIR with upsampler 'pixelshuffledirect' \(lightweight SR\) is not supported"),
    ({"conv_last": 3}, r"SwinIR with upsampler 'none' \(x1: denoising, JPEG artefact removal\) is not supported"),
])
def test_swinir_other_upsamplers_and_x3_are_refused_by_name(tiny_swinir, convs, message):
    with pytest.raises(CheckpointError, match=message):
        build_generator(with_upsampler(tiny_swinir.state_dict(), convs))


@pytest.mark.parametrize("scale", [2, 8])
def test_swinir_power_of_2_scales_load(scale):
    torch.manual_seed(0)
    net = build_generator(SwinIR(**TINY_SWINIR, upscale=scale).state_dict())
    assert net.scale == scale and net(lr_batch(8, 12)).shape == (1, 3, 8 * scale, 12 * scale)


def test_vgg_discriminator_shapes():
    torch.manual_seed(0)
    d = VGGStyleDiscriminator(num_feat=8, input_size=128).eval()
    x = torch.rand(2, 3, 128, 128)
    assert d(x).shape == (2, 1)
    assert d.linear1.in_features == 8 * 8 * 4 * 4  # BasicSR's 128 layout: 8*num_feat x 4 x 4
    feats = d.bn2_features(x)
    assert feats.shape == (2, 16, 64, 64)
    with torch.no_grad():
        manual = F.leaky_relu(d.conv0_0(x), 0.2)
        manual = F.leaky_relu(d.bn0_1(d.conv0_1(manual)), 0.2)
        manual = F.leaky_relu(d.bn1_0(d.conv1_0(manual)), 0.2)
    assert torch.allclose(feats, manual)


@pytest.mark.parametrize("size, stages, side", [(64, 5, 2), (96, 5, 3), (256, 6, 4)])
def test_vgg_discriminator_other_sizes(size, stages, side):
    d = VGGStyleDiscriminator(num_feat=4, input_size=size)
    assert hasattr(d, f"conv{stages - 1}_1") and not hasattr(d, f"conv{stages}_0")
    assert d.linear1.in_features == 32 * side * side
    assert d(torch.rand(2, 3, size, size)).shape == (2, 1)
    with pytest.raises(ValueError):
        d(torch.rand(2, 3, size + 32, size + 32))
    with pytest.raises(ValueError):
        VGGStyleDiscriminator(input_size=100)
