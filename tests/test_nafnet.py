"""NAFNet (Table 5's restoration backbone): sizes, the public checkpoint layout, PSNRLoss, and the CLI at scale 1."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data

from pipeline.archs.nafnet import LayerNorm2d, NAFNet, nafnet_config_from_state
from pipeline.checkpoint import CheckpointError
from pipeline.fileio import read_image, write_image
from pipeline.losses import psnr_loss
from pipeline.sr import build_generator, read_generator, upscale, upscale_image
from pipeline.tensor_image import to_tensor, to_uint8

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(width=8, enc_blk_nums=(1, 1), middle_blk_num=1, dec_blk_nums=(1, 1))
GOPRO_WIDTH64 = dict(img_channel=3, width=64, middle_blk_num=1, enc_blk_nums=(1, 1, 1, 28), dec_blk_nums=(1, 1, 1, 1))


def randomised(net: NAFNet, seed: int = 0) -> NAFNet:
    """`net` with random branch scales (zero at init, which makes every block the identity) and a damped `ending`,
    so the blocks matter and the output stays mostly inside [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("beta", "gamma")):
                p.copy_(torch.randn(p.shape, generator=g))
        net.ending.weight.mul_(0.2)
        net.ending.bias.zero_()
    return net.eval()


@pytest.fixture
def tiny_net():
    torch.manual_seed(0)
    return randomised(NAFNet(**TINY))


def image_batch(h, w, seed=1):
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("h, w", [(13, 22), (1, 7), (17, 16), (4, 4)])
def test_output_has_the_input_size_and_padding_is_zeros_at_the_bottom_right(tiny_net, h, w):
    x = image_batch(h, w)
    with torch.no_grad():
        out = tiny_net(x)
        padded = F.pad(x, (0, -w % 4, 0, -h % 4))  # two levels: multiples of 4
        assert padded.shape[-2] % 4 == 0 and padded.shape[-1] % 4 == 0
        by_hand = tiny_net(padded)[..., :h, :w]
    assert out.shape == x.shape
    torch.testing.assert_close(out, by_hand, rtol=0, atol=0)
    assert (out - x).abs().mean() > 0.01  # the blocks change the image, not just the global residual


def test_new_blocks_are_the_identity():
    torch.manual_seed(0)
    net = NAFNet(**TINY).eval()
    block = net.encoders[0][0]
    x = torch.rand(1, 8, 6, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(block(x), x, rtol=0, atol=0)  # beta = gamma = 0


def test_layer_norm_2d_is_a_layer_norm_over_channels():
    torch.manual_seed(0)
    norm = LayerNorm2d(5)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 5, 3, 4) * 3 + 1
    expected = F.layer_norm(x.permute(0, 2, 3, 1), (5,), norm.weight, norm.bias, eps=1e-6).permute(0, 3, 1, 2)
    torch.testing.assert_close(norm(x), expected, rtol=1e-5, atol=1e-5)


def test_config_is_read_off_any_sizes():
    cfg = dict(img_channel=1, width=4, middle_blk_num=3, enc_blk_nums=(2, 0, 1), dec_blk_nums=(1, 2, 0))
    net = NAFNet(**cfg)
    assert nafnet_config_from_state(net.state_dict()) == cfg
    assert build_generator(net.state_dict()).scale == 1
    with torch.no_grad():
        assert net(torch.rand(1, 1, 9, 10)).shape == (1, 1, 9, 10)


def test_public_gopro_width64_layout_round_trips_through_read_generator(tmp_path):
    torch.manual_seed(0)
    net = randomised(NAFNet(**GOPRO_WIDTH64))
    state = net.state_dict()
    # NAFNet-GoPro-width64.pth: 664 tensors, 67.89 M parameters (upstream's class gives the same keys and shapes)
    assert len(state) == 664 and sum(v.numel() for v in state.values()) == 67_888_835
    shapes = {
        "intro.weight": (64, 3, 3, 3), "ending.weight": (3, 64, 3, 3), "ending.bias": (3,),
        "encoders.0.0.norm1.weight": (64,), "encoders.0.0.conv1.weight": (128, 64, 1, 1),
        "encoders.0.0.conv2.weight": (128, 1, 3, 3), "encoders.0.0.sca.1.weight": (64, 64, 1, 1),
        "encoders.0.0.conv3.weight": (64, 64, 1, 1), "encoders.0.0.conv5.weight": (64, 64, 1, 1),
        "encoders.0.0.beta": (1, 64, 1, 1), "encoders.0.0.gamma": (1, 64, 1, 1),
        "encoders.3.27.conv2.weight": (1024, 1, 3, 3), "downs.0.weight": (128, 64, 2, 2), "downs.3.bias": (1024,),
        "middle_blks.0.sca.1.weight": (1024, 1024, 1, 1), "middle_blks.0.norm2.bias": (1024,),
        "ups.0.0.weight": (2048, 1024, 1, 1), "ups.3.0.weight": (256, 128, 1, 1),
        "decoders.0.0.conv4.weight": (1024, 512, 1, 1), "decoders.3.0.gamma": (1, 64, 1, 1),
    }
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert "ups.0.0.bias" not in state and "encoders.3.28.beta" not in state
    assert nafnet_config_from_state(state) == GOPRO_WIDTH64

    path = tmp_path / "NAFNet-GoPro-width64.pth"
    torch.save({"params": state}, path)  # BasicSR's save_network wrapper
    loaded, meta = read_generator(path)
    assert isinstance(loaded, NAFNet) and loaded.scale == 1 and not loaded.training and meta == {}
    assert nafnet_config_from_state(loaded.state_dict()) == GOPRO_WIDTH64
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
    x = image_batch(21, 18)
    with torch.no_grad():
        out = loaded(x)
        assert torch.equal(out, net(x)) and out.shape == x.shape


def test_partial_or_misshapen_state_dicts_raise_checkpoint_errors_naming_keys(tmp_path, tiny_net):
    state = tiny_net.state_dict()
    partial = {k: v for k, v in state.items() if k != "encoders.0.0.sca.1.weight"}
    partial["encoders.0.0.se.1.weight"] = state["encoders.0.0.sca.1.weight"]  # upstream's Baseline names it `se`
    with pytest.raises(CheckpointError, match=r"does not fit NAFNet: missing keys \(1: encoders\.0\.0\.sca\.1\."
                                              r"weight\); unexpected keys \(1: encoders\.0\.0\.se\.1\.weight\)"):
        build_generator(partial)

    misshapen = {**state, "decoders.1.0.conv2.weight": torch.zeros(16, 1, 5, 5)}
    with pytest.raises(CheckpointError, match=r"1 tensors have other shapes, e\.g\. decoders\.1\.0\.conv2\.weight: "
                                              r"\(16, 1, 5, 5\) vs \(16, 1, 3, 3\)"):
        build_generator(misshapen)

    no_ending = {k: v for k, v in state.items() if not k.startswith("ending.")}
    path = tmp_path / "no_ending.pth"
    torch.save({"params": no_ending}, path)
    with pytest.raises(CheckpointError, match=r"no_ending\.pth: not a NAFNet state dict: missing keys ending\.weight"):
        read_generator(path)

    with pytest.raises(CheckpointError, match="fits none of RRDBNet .* SwinIR, SRResNet, SPSRNet and NAFNet: missing keys"):
        build_generator({"conv.weight": torch.zeros(1)})


def test_psnr_loss_is_the_formula_by_hand():
    pred = torch.tensor([[[[0.1, 0.3], [0.0, 1.0]]], [[[0.5, 0.5], [0.2, 0.9]]]])  # B=2, C=1, 2x2
    target = torch.tensor([[[[0.0, 0.5], [0.0, 0.5]]], [[[0.5, 0.0], [0.6, 0.9]]]])
    mse = [(0.01 + 0.04 + 0.0 + 0.25) / 4, (0.0 + 0.25 + 0.16 + 0.0) / 4]  # 0.075, 0.1025
    expected = 10 / math.log(10) * (math.log(mse[0] + 1e-8) + math.log(mse[1] + 1e-8)) / 2
    loss = psnr_loss(pred, target)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    psnr = [10 * math.log10(1 / m) for m in mse]  # minus the mean PSNR, each image's own
    assert loss.item() == pytest.approx(-sum(psnr) / 2, abs=1e-5)
    pooled = 10 * math.log10(1 / (sum(mse) / 2))  # not the PSNR of the batch's pooled MSE
    assert abs(loss.item() + pooled) > 0.05
    assert psnr_loss(target, target).item() == pytest.approx(-80.0)  # 10 log10(1e-8)


def test_tiling_is_exact_only_when_the_context_reaches_every_border(tiny_net):
    x = image_batch(28, 32)
    with torch.no_grad():
        whole = tiny_net(x)
    # 16 px tiles with 32 px of context: every tile runs on the whole image and keeps its own part
    assert torch.equal(upscale(tiny_net, x, tile=16, overlap=32), whole)
    # less context: the channel attention pools over the tile, and the stride-2 grid starts at the tile's corner
    errors = [(upscale(tiny_net, x, tile=16, overlap=m) - whole).abs().max().item() for m in (0, 4, 8)]
    assert errors[0] > errors[1] > errors[2] > 1e-4  # well above rounding; more context, closer


@pytest.fixture
def png_dir(tmp_path):
    folder = tmp_path / "blurry"
    for name, img, size in (("astronaut", data.astronaut(), (32, 28)), ("chelsea", data.chelsea(), (30, 21))):
        write_image(folder / f"{name}.png", np.asarray(Image.fromarray(img).resize(size, Image.BICUBIC)))
    return folder


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.sr", *map(str, args), "--device", "cpu"], cwd=ROOT,
                          capture_output=True, text=True)


def test_cli_restores_a_folder_at_scale_1_whole_and_tiled(tmp_path, tiny_net, png_dir):
    weights = tmp_path / "NAFNet-tiny.pth"
    torch.save({"params": tiny_net.state_dict()}, weights)
    whole_dir, tiled_dir = tmp_path / "whole", tmp_path / "tiled"
    proc = run_cli("--weights", weights, "--input", png_dir, "--output", whole_dir)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("--weights", weights, "--input", png_dir, "--output", tiled_dir, "--tile", 16, "--tile-overlap", 32)
    assert proc.returncode == 0, proc.stderr
    for name in ("astronaut", "chelsea"):
        img = read_image(png_dir / f"{name}.png")
        whole, tiled = read_image(whole_dir / f"{name}.png"), read_image(tiled_dir / f"{name}.png")
        assert whole.shape == tiled.shape == img.shape
        with torch.no_grad():
            np.testing.assert_array_equal(whole, to_uint8(tiny_net(to_tensor(img))))
        np.testing.assert_array_equal(tiled, whole)  # the context covers these small images
        assert np.abs(whole.astype(int) - img).mean() > 5  # restored, not copied
        # smaller context: the same size, close to but not the whole-image result
        approx = upscale_image(tiny_net, img, tile=16, overlap=4)
        assert approx.shape == img.shape and 0 < np.abs(approx.astype(int) - whole).max() <= 16
