"""DualFormer IQA: upstream's state dicts load into our critics, which compute upstream's outputs (after its
load_state_dict's conversions); each set's score is scripts/test_iqa.py's loop (Luciennnnnnn/DualFormer commit
54d911a) on the same weights, with batch size 1; the experiment folders load in the Drive release's layout."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as nn_f
import yaml

from pipeline.archs.swin_discriminator import SpectralDiscriminator2D, SwinDiscriminator
from pipeline.checkpoint import load_into
from pipeline.metrics.dualformer import EXPERIMENTS, SETS, critic_state, load_dualformer
from pipeline.metrics.pyiqa_metrics import MetricUnavailable


# ---- basicsr/archs/swin_transformer_arch.py, transcribed (dropout, drop path and the fused kernel left out) ----
def window_partition(x, ws):
    b, h, w, c = x.shape
    x = x.view(b, h // ws, ws, w // ws, ws, c)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, ws, ws, c)


def window_reverse(windows, ws, h, w):
    b = int(windows.shape[0] / (h * w / ws / ws))
    x = windows.view(b, h // ws, w // ws, ws, ws, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(b, h, w, -1)


class UpWindowAttention(nn.Module):
    def __init__(self, dim, window_size, num_heads):
        super().__init__()
        self.window_size, self.num_heads = window_size, num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.relative_position_bias_table = nn.Parameter(
            torch.randn((2 * window_size[0] - 1) * (2 * window_size[1] - 1), num_heads) * 0.02)
        coords = torch.stack(torch.meshgrid([torch.arange(window_size[0]), torch.arange(window_size[1])],
                                            indexing="ij"))
        flat = torch.flatten(coords, 1)
        rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0).contiguous()
        rel[:, :, 0] += window_size[0] - 1
        rel[:, :, 1] += window_size[1] - 1
        rel[:, :, 0] *= 2 * window_size[1] - 1
        self.register_buffer("relative_position_index", rel.sum(-1))
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, mask=None):
        b_, n, c = x.shape
        qkv = self.qkv(x).reshape(b_, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(n, n, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(b_ // nw, nw, self.num_heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, n, n)
        attn = attn.softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b_, n, c))


class UpBlock(nn.Module):
    def __init__(self, dim, input_resolution, num_heads, window_size, shift_size, mlp_ratio):
        super().__init__()
        self.input_resolution, self.window_size, self.shift_size = input_resolution, window_size, shift_size
        if min(input_resolution) <= window_size:
            self.shift_size, self.window_size = 0, min(input_resolution)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = UpWindowAttention(dim, (self.window_size, self.window_size), num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Module()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(dim, int(dim * mlp_ratio)), nn.Linear(int(dim * mlp_ratio), dim)
        mask = None
        if self.shift_size > 0:
            h, w = input_resolution
            img_mask = torch.zeros((1, h, w, 1))
            ws, s = self.window_size, self.shift_size
            cnt = 0
            for hs in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
                for wsl in (slice(0, -ws), slice(-ws, -s), slice(-s, None)):
                    img_mask[:, hs, wsl, :] = cnt
                    cnt += 1
            mw = window_partition(img_mask, ws).view(-1, ws * ws)
            mask = mw.unsqueeze(1) - mw.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
        self.register_buffer("attn_mask", mask)

    def forward(self, x):
        h, w = self.input_resolution
        b, _, c = x.shape
        shortcut = x
        x = self.norm1(x).view(b, h, w, c)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        windows = window_partition(x, self.window_size).view(-1, self.window_size ** 2, c)
        windows = self.attn(windows, mask=self.attn_mask).view(-1, self.window_size, self.window_size, c)
        x = window_reverse(windows, self.window_size, h, w)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        x = shortcut + x.view(b, h * w, c)
        y = self.norm2(x)
        return x + self.mlp.fc2(nn_f.gelu(self.mlp.fc1(y)))


class UpPatchMerging(nn.Module):
    def __init__(self, input_resolution, dim):
        super().__init__()
        self.input_resolution = input_resolution
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x):
        h, w = self.input_resolution
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        x = torch.cat([x[:, 0::2, 0::2, :], x[:, 1::2, 0::2, :], x[:, 0::2, 1::2, :], x[:, 1::2, 1::2, :]], -1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class UpBasicLayer(nn.Module):
    def __init__(self, dim, input_resolution, depth, num_heads, window_size, mlp_ratio, downsample):
        super().__init__()
        self.blocks = nn.ModuleList([UpBlock(dim, input_resolution, num_heads, window_size,
                                             0 if i % 2 == 0 else window_size // 2, mlp_ratio) for i in range(depth)])
        self.downsample = UpPatchMerging(input_resolution, dim) if downsample else None

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return x if self.downsample is None else self.downsample(x)


class UpstreamSwin(nn.Module):
    def __init__(self, img_size=224, patch_size=4, in_chans=3, num_classes=1000, embed_dim=96, depths=(2, 2, 6, 2),
                 num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4.0, ape=False, patch_norm=True, **kwargs):
        super().__init__()
        img = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        res = [img[0] // patch_size, img[1] // patch_size]
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.patch_embed.norm = nn.LayerNorm(embed_dim) if patch_norm else None
        self.ape = ape
        if ape:
            self.absolute_pos_embed = nn.Parameter(torch.randn(1, res[0] * res[1], embed_dim) * 0.02)
        self.layers = nn.ModuleList([
            UpBasicLayer(int(embed_dim * 2 ** i), (res[0] // 2 ** i, res[1] // 2 ** i), depths[i], num_heads[i],
                         window_size, mlp_ratio, i < len(depths) - 1) for i in range(len(depths))])
        self.norm = nn.LayerNorm(int(embed_dim * 2 ** (len(depths) - 1)))
        self.avgpool = nn.AdaptiveAvgPool1d(1)
        self.head = nn.Conv1d(int(embed_dim * 2 ** (len(depths) - 1)), num_classes, 1, 1)

    def forward(self, x):
        x = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        if self.patch_embed.norm is not None:
            x = self.patch_embed.norm(x)
        if self.ape:
            x = x + self.absolute_pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.head(self.avgpool(self.norm(x).transpose(1, 2)))

    def load_state_dict(self, state_dict, strict=False):
        for k in [k for k in state_dict if "relative_position_index" in k or "attn_mask" in k]:
            del state_dict[k]
        for k in [k for k in state_dict if "relative_position_bias_table" in k]:
            pre, cur = state_dict[k], self.state_dict()[k]
            if pre.shape[0] != cur.shape[0]:
                s1, s2 = int(pre.shape[0] ** 0.5), int(cur.shape[0] ** 0.5)
                state_dict[k] = nn_f.interpolate(pre.permute(1, 0).view(1, pre.shape[1], s1, s1), size=(s2, s2),
                                                 mode="bicubic").view(cur.shape[1], cur.shape[0]).permute(1, 0)
        return super().load_state_dict(state_dict, strict)


# ---- basicsr/utils/spectrum.py's spectrum_transform (power, linear) and discriminator_arch.py, transcribed ----
def spectrum_transform(x, patch_size, reduction="none", fix_normalize=False):
    h, w = x.shape[2] // patch_size, x.shape[3] // patch_size
    b, c = x.shape[:2]
    x = x.view(b, c, h, patch_size, w, patch_size).permute(0, 2, 4, 1, 3, 5).reshape(b * h * w, c, patch_size,
                                                                                      patch_size)
    flat = x.flatten(0, 1)
    freq = torch.fft.fftshift(torch.fft.fftn(flat, dim=(1, 2)), dim=(1, 2))
    x = (freq.real ** 2 + freq.imag ** 2).unflatten(0, (x.shape[0], x.shape[1]))
    if reduction == "mean":
        x = x.mean(dim=1, keepdim=True).float()
    if fix_normalize:
        dims = [1, 2, 3]
        x = (x - x.amin(dims, keepdim=True)) / (x.amax(dims, keepdim=True) - x.amin(dims, keepdim=True) + 1e-5)
    else:
        x = (x - x.min()) / (x.max() - x.min() + 1e-5)
    c = x.shape[1]
    return x.view(b, h, w, c, patch_size, patch_size).permute(0, 3, 1, 4, 2, 5).reshape(b, c, h * patch_size,
                                                                                        w * patch_size)


class UpstreamSpectral(nn.Module):
    def __init__(self, img_size, patch_size=32, version="swin", spec_type="power", reduction="none",
                 fix_normalize=False, **kwargs):
        super().__init__()
        self.patch_size, self.reduction, self.fix_normalize = patch_size, reduction, fix_normalize
        self.net = UpstreamSwin(img_size, patch_size, in_chans=3 if reduction == "none" else 1, **kwargs)

    def forward(self, x):
        return self.net(spectrum_transform(x, self.patch_size, self.reduction, self.fix_normalize))

    def load_state_dict(self, state_dict, strict=False):
        return self.net.load_state_dict({k[4:] if k.startswith("net.") else k: v for k, v in state_dict.items()},
                                        strict)


def patchify(x, size, stride):  # basicsr/utils/img_process_util.py
    b, c = x.shape[:2]
    p = x.unfold(2, size, stride).unfold(3, size, stride)
    return p.contiguous().view(b, c, -1, size, size).permute(0, 2, 1, 3, 4).reshape(-1, c, size, size)


def upstream_score(d, s, image, set_name, img_size, n_ensemble):
    """scripts/test_iqa.py's per-batch score, for a batch of one image (np.random seeded by the caller)."""
    with torch.no_grad():
        if set_name == "PIPAL":
            patches = patchify(image, img_size, 64)
            return (d(patches).view(1, -1).mean(dim=1) + s(patches).view(1, -1).mean(dim=1)).item()
        total = 0
        for critic in (d, s):
            score = 0
            for _ in range(n_ensemble):
                top = np.random.randint(0, image.shape[2] - img_size)
                left = np.random.randint(0, image.shape[3] - img_size)
                score += critic(image[:, :, top:top + img_size, left:left + img_size]).view(1, -1).mean(dim=1)
            total = total + score / n_ensemble
        return total.item()


TINY = {"patch_size": 32, "num_classes": 1, "embed_dim": 8, "depths": [2, 2], "num_heads": [2, 2], "mlp_ratio": 2,
        "window_size": 4, "fused_window_process": True, "in_chans": 3}
TINY_SPECTRAL = {**{k: v for k, v in TINY.items() if k != "in_chans"}, "version": "swin", "reduction": "none",
                 "spec_type": "power", "fix_normalize": True}


def perturbed(net):
    """`net` in eval mode with every parameter moved off its init, so that norms and biases matter."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net.eval()


def place_experiment(folder, d_opt, s_opt, img_size):
    """An experiment folder of the Drive release (its options file, models/net_d.pth, models/net_spectral_d.pth,
    {'params': ...}) with upstream critics trained at img_size; returns them."""
    (folder / "models").mkdir(parents=True)
    opt = {"name": folder.name, "network_d": {"type": "SwinTransformer", **d_opt}}
    nets = [perturbed(UpstreamSwin(img_size, **{k: v for k, v in d_opt.items() if k != "img_size"}))]
    torch.save({"params": nets[0].state_dict()}, folder / "models" / "net_d.pth")
    if s_opt is not None:
        opt["net_spectral_d"] = {"type": "SpectralDiscriminator2D", "img_size": img_size, **s_opt}
        nets.append(perturbed(UpstreamSpectral(img_size, **s_opt)))
        torch.save({"params": nets[1].state_dict()}, folder / "models" / "net_spectral_d.pth")
    (folder / f"train_{folder.name}.yml").write_text(yaml.safe_dump(opt))
    return nets


@pytest.mark.parametrize("options", [{}, {"fix_normalize": True}, {"reduction": "mean", "fix_normalize": True}])
def test_critics_have_upstreams_keys_and_outputs(options, tmp_path):
    torch.manual_seed(0)
    config = {"img_size": 64, "patch_size": 8, "num_classes": 1, "embed_dim": 16, "depths": [2, 2, 2],
              "num_heads": [2, 4, 2], "window_size": 4, "mlp_ratio": 2.0}
    x = torch.rand(2, 3, 64, 64)
    for upstream, ours in ((UpstreamSwin(**config), SwinDiscriminator(**config)),
                           (UpstreamSpectral(**config, **options), SpectralDiscriminator2D(**config, **options))):
        upstream = perturbed(upstream)
        assert sorted(upstream.state_dict()) == sorted(ours.state_dict())
        torch.save({"params": upstream.state_dict()}, tmp_path / "net.pth")
        load_into(ours, critic_state(tmp_path / "net.pth", ours))
        with torch.no_grad():
            assert torch.allclose(ours.eval()(x), upstream(x), atol=1e-5)


def test_a_test_window_resizes_the_bias_tables_as_upstreams_load_state_dict(tmp_path):
    """Trained at 32 px with window 4, tested at 64 px with window 24: a 2 x 2 and a 1 x 1 grid, the bias tables
    bicubically resized; a checkpoint of the spectral critic without the `net.` prefix loads too."""
    torch.manual_seed(1)
    config = {"patch_size": 8, "num_classes": 1, "embed_dim": 16, "depths": [2, 2], "num_heads": [2, 4],
              "mlp_ratio": 2.0}
    trained = perturbed(UpstreamSpectral(32, **config, window_size=2, fix_normalize=True))
    state = {k[4:]: v for k, v in trained.state_dict().items()}
    torch.save({"params": state}, tmp_path / "net_spectral_d.pth")
    upstream = UpstreamSpectral(64, **config, window_size=24, fix_normalize=True)
    upstream.load_state_dict(dict(state))
    ours = SpectralDiscriminator2D(64, **config, window_size=24, fix_normalize=True)
    load_into(ours, critic_state(tmp_path / "net_spectral_d.pth", ours))
    table = "net.layers.0.blocks.0.attn.relative_position_bias_table"
    assert state[table[4:]].shape == (9, 2) and ours.state_dict()[table].shape == (225, 2)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), upstream.eval()(x), atol=1e-5)


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    """Both experiment folders trained at 128 px (4 x 4 tokens): PIPAL's with window 6 (6 x 6 tokens at its 192 px
    patches), the CLIVE / KonIQ-10k one with window 4 (12 x 12 tokens at 384 px, windows 24 and 6 at test); every
    bias table is resized at test."""
    root = tmp_path_factory.mktemp("dualformer")
    torch.manual_seed(2)
    pipal = place_experiment(root / EXPERIMENTS["pipal"], {**TINY, "img_size": 128, "window_size": 6},
                             {**TINY_SPECTRAL, "window_size": 6}, 128)
    clive = place_experiment(root / EXPERIMENTS["clive_koniq"], {**TINY, "img_size": 128},
                             TINY_SPECTRAL, 128)
    return root, pipal, clive


def upstream_at_test(nets, options, img_size, windows):
    """test_iqa.py's critics: built at the test's img_size and windows, loaded with upstream's load_state_dict."""
    tested = []
    for net, build, window, opt in zip(nets, (UpstreamSwin, UpstreamSpectral), windows, options):
        kwargs = {k: v for k, v in opt.items() if k != "img_size"}
        if window:
            kwargs["window_size"] = window
        critic = build([img_size, img_size], **kwargs)
        critic.load_state_dict(dict(net.state_dict()))
        tested.append(critic.eval())
    return tested


def test_each_set_scores_as_test_iqa(experiments):
    root, pipal, clive = experiments
    metric = load_dualformer(root / EXPERIMENTS["pipal"], root / EXPERIMENTS["clive_koniq"])
    image = torch.rand(1, 3, 288, 288, generator=torch.Generator().manual_seed(3))
    d, s = upstream_at_test(pipal, ({**TINY, "window_size": 6}, {**TINY_SPECTRAL, "window_size": 6}), 192, (0, 0))
    assert metric(image, "PIPAL").item() == pytest.approx(upstream_score(d, s, image, "PIPAL", 192, 0), abs=1e-5)
    d, s = upstream_at_test(clive, (TINY, TINY_SPECTRAL), 384, (24, 6))
    for set_name in ("KonIQ-10k", "LIVE-itW"):
        np.random.seed(23)  # seed_everything(23); each set has its own stream, continued image after image
        for seed in (4, 5):
            image = torch.rand(1, 3, 400, 430, generator=torch.Generator().manual_seed(seed))
            expected = upstream_score(d, s, image, set_name, 384, SETS[set_name].n_ensemble)
            assert metric(image, set_name).item() == pytest.approx(expected, abs=1e-5)
    assert SETS["KonIQ-10k"].n_ensemble == 40 and SETS["LIVE-itW"].n_ensemble == 30


def test_without_a_spectral_critic_the_score_is_the_spatial_one(tmp_path):
    torch.manual_seed(6)
    (d,) = place_experiment(tmp_path / EXPERIMENTS["pipal"], {**TINY, "img_size": 192, "window_size": 6}, None, 192)
    place_experiment(tmp_path / EXPERIMENTS["clive_koniq"], {**TINY, "img_size": 128}, TINY_SPECTRAL, 128)
    metric = load_dualformer(tmp_path / EXPERIMENTS["pipal"], tmp_path / EXPERIMENTS["clive_koniq"])
    image = torch.rand(1, 3, 256, 200)
    with torch.no_grad():
        expected = d(patchify(image, 192, 64)).mean().item()
    assert metric(image, "PIPAL").item() == pytest.approx(expected, abs=1e-5)


def test_unusable_folders_and_images_give_one_line_reasons(experiments, tmp_path):
    root, _, _ = experiments
    pipal, clive = root / EXPERIMENTS["pipal"], root / EXPERIMENTS["clive_koniq"]
    with pytest.raises(MetricUnavailable, match=r"weights not available: .*NRIQA_dual_former_PIPAL \(by hand: "
                                                r"registry entries dualformer_iqa_pipal_d and"):
        load_dualformer(tmp_path / EXPERIMENTS["pipal"], clive)
    copy = tmp_path / "copy"
    (copy / "models").mkdir(parents=True)
    with pytest.raises(MetricUnavailable, match="must hold exactly one options file"):
        load_dualformer(pipal, copy)
    options = yaml.safe_load(next(clive.glob("*.yml")).read_text())
    (copy / "o.yml").write_text(yaml.safe_dump(options))
    (copy / "models" / "net_d.pth").write_bytes((clive / "models" / "net_d.pth").read_bytes())
    with pytest.raises(MetricUnavailable, match=r"net_spectral_d.pth \(by hand: registry entry "
                                                r"dualformer_iqa_clive_koniq_spectral_d\)"):
        load_dualformer(pipal, copy)
    (copy / "o.yml").write_text(yaml.safe_dump({**options, "network_d": {**options["network_d"],
                                                                          "type": "VGGStyleDiscriminator"}}))
    with pytest.raises(MetricUnavailable, match="network_d.type is 'VGGStyleDiscriminator'; this port builds "
                                                "SwinTransformer"):
        load_dualformer(pipal, copy)
    (copy / "o.yml").write_text(yaml.safe_dump({**options, "network_d": {**options["network_d"], "window_size": 5}}))
    (copy / "models" / "net_spectral_d.pth").write_bytes((clive / "models" / "net_spectral_d.pth").read_bytes())
    metric = load_dualformer(pipal, copy)  # window_size is replaced by the test's 24: the options' 5 is not read
    with pytest.raises(MetricUnavailable, match="network_d cannot be built for 192 px inputs: a 6 x 6 token grid "
                                                "does not split into 5 x 5 windows"):
        load_dualformer(copy, pipal)  # PIPAL's test keeps the options' window
    with pytest.raises(MetricUnavailable, match="a 384 x 500 image is smaller than DualFormer's 384 px crops"):
        metric(torch.rand(1, 3, 500, 384), "LIVE-itW")
    with pytest.raises(MetricUnavailable, match="a 150 x 150 image is smaller than DualFormer's 192 px patches"):
        metric(torch.rand(1, 3, 150, 150), "PIPAL")
    with pytest.raises(ValueError, match="no configuration for IQA set `Ma`"):
        metric(torch.rand(1, 3, 400, 400), "Ma")
