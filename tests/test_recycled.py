"""RecycleD: upstream's state dicts load into our critics and detectors, which compute upstream's outputs; each set's
score is YunanZhu/RecycleD's predictor (commit 8db90dc) on the same weights; files load in upstream's layouts."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as nn_f
from torchvision import models

from pipeline.archs.basnet import BASNet
from pipeline.archs.recycled_vgg import PatchVggDiscriminator, VggDiscriminator
from pipeline.archs.u2net import U2NET
from pipeline.metrics.pyiqa_metrics import MetricUnavailable
from pipeline.metrics.recycled import CRITICS, SETS, RecycleD, UnknownSetError, load_recycled, map_to_mat


# ---- models/archs/discriminator.py, transcribed (use_msra_init's init does not matter: the weights are random) ----
def discriminator_block(in_channels, out_channels):
    return [nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1, bias=True),
            nn.LeakyReLU(negative_slope=0.2, inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=4, stride=2, padding=1, bias=True),
            nn.LeakyReLU(negative_slope=0.2, inplace=True)]


class UpstreamVgg(nn.Module):
    def __init__(self, in_channels=3):
        super().__init__()
        layers = []
        for c_in, c_out in ((in_channels, 64), (64, 128), (128, 256), (256, 512)):
            layers.extend(discriminator_block(c_in, c_out))
        layers.extend([nn.AdaptiveAvgPool2d(output_size=(4, 4)), nn.Flatten(), nn.Linear(512 * 4 * 4, 100),
                       nn.LeakyReLU(negative_slope=0.2, inplace=True), nn.Linear(100, 1)])
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class UpstreamPatchVgg(nn.Module):
    def __init__(self, in_channels=3):
        super().__init__()
        layers = []
        for c_in, c_out in ((in_channels, 64), (64, 128), (128, 256), (256, 512)):
            layers.extend(discriminator_block(c_in, c_out))
        layers.extend([nn.Conv2d(512, 192, kernel_size=3, stride=1, padding=1, bias=True),
                       nn.LeakyReLU(negative_slope=0.2, inplace=True),
                       nn.Conv2d(192, 1, kernel_size=3, stride=1, padding=1, bias=True)])
        self.model = nn.Sequential(*layers)

    def forward(self, x, patch_result=False, shape="mat4d"):
        out = self.model(x)
        if patch_result:
            assert shape == "mat4d"
            return out
        return out.mean(dim=(2, 3), keepdim=False)


# ---- models/archs/sod.py's BASNet, transcribed ----
def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class SodBasicBlock(nn.Module):
    def __init__(self, inplanes, planes):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)

    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


def cbr(owner, name, c_in, c_out, dilation=1):
    """`conv{name}`, `bn{name}`, `relu{name}` as sod.py spells each of them out."""
    setattr(owner, f"conv{name}", nn.Conv2d(c_in, c_out, 3, padding=dilation, dilation=dilation))
    setattr(owner, f"bn{name}", nn.BatchNorm2d(c_out))
    setattr(owner, f"relu{name}", nn.ReLU(inplace=True))


def run(owner, name, x):
    return getattr(owner, f"relu{name}")(getattr(owner, f"bn{name}")(getattr(owner, f"conv{name}")(x)))


class UpstreamRefUnet(nn.Module):
    def __init__(self, in_ch, inc_ch):
        super().__init__()
        self.conv0 = nn.Conv2d(in_ch, inc_ch, 3, padding=1)
        cbr(self, "1", inc_ch, 64)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        cbr(self, "2", 64, 64)
        self.pool2 = nn.MaxPool2d(2, 2, ceil_mode=True)
        cbr(self, "3", 64, 64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        cbr(self, "4", 64, 64)
        self.pool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        cbr(self, "5", 64, 64)
        for d in ("_d4", "_d3", "_d2", "_d1"):
            cbr(self, d, 128, 64)
        self.conv_d0 = nn.Conv2d(64, 1, 3, padding=1)
        self.upscore2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)

    def forward(self, x):
        hx = self.conv0(x)
        hx1 = run(self, "1", hx)
        hx2 = run(self, "2", self.pool1(hx1))
        hx3 = run(self, "3", self.pool2(hx2))
        hx4 = run(self, "4", self.pool3(hx3))
        hx5 = run(self, "5", self.pool4(hx4))
        d4 = run(self, "_d4", torch.cat((self.upscore2(hx5), hx4), 1))
        d3 = run(self, "_d3", torch.cat((self.upscore2(d4), hx3), 1))
        d2 = run(self, "_d2", torch.cat((self.upscore2(d3), hx2), 1))
        d1 = run(self, "_d1", torch.cat((self.upscore2(d2), hx1), 1))
        return x + self.conv_d0(d1)


class UpstreamBASNet(nn.Module):
    def __init__(self, n_channels=3, n_classes=1):
        super().__init__()
        resnet = models.resnet34(weights=None)
        self.inconv = nn.Conv2d(n_channels, 64, 3, padding=1)
        self.inbn = nn.BatchNorm2d(64)
        self.inrelu = nn.ReLU(inplace=True)
        self.encoder1, self.encoder2, self.encoder3, self.encoder4 = (resnet.layer1, resnet.layer2, resnet.layer3,
                                                                      resnet.layer4)
        self.pool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.resb5_1, self.resb5_2, self.resb5_3 = (SodBasicBlock(512, 512) for _ in range(3))
        self.pool5 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.resb6_1, self.resb6_2, self.resb6_3 = (SodBasicBlock(512, 512) for _ in range(3))
        cbr(self, "bg_1", 512, 512, 2)
        cbr(self, "bg_m", 512, 512, 2)
        cbr(self, "bg_2", 512, 512, 2)
        cbr(self, "6d_1", 1024, 512)
        cbr(self, "6d_m", 512, 512, 2)
        cbr(self, "6d_2", 512, 512, 2)
        cbr(self, "5d_1", 1024, 512)
        cbr(self, "5d_m", 512, 512)
        cbr(self, "5d_2", 512, 512)
        cbr(self, "4d_1", 1024, 512)
        cbr(self, "4d_m", 512, 512)
        cbr(self, "4d_2", 512, 256)
        cbr(self, "3d_1", 512, 256)
        cbr(self, "3d_m", 256, 256)
        cbr(self, "3d_2", 256, 128)
        cbr(self, "2d_1", 256, 128)
        cbr(self, "2d_m", 128, 128)
        cbr(self, "2d_2", 128, 64)
        cbr(self, "1d_1", 128, 64)
        cbr(self, "1d_m", 64, 64)
        cbr(self, "1d_2", 64, 64)
        self.upscore6 = nn.Upsample(scale_factor=32, mode="bilinear", align_corners=False)
        self.upscore5 = nn.Upsample(scale_factor=16, mode="bilinear", align_corners=False)
        self.upscore4 = nn.Upsample(scale_factor=8, mode="bilinear", align_corners=False)
        self.upscore3 = nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False)
        self.upscore2 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.outconvb = nn.Conv2d(512, 1, 3, padding=1)
        self.outconv6 = nn.Conv2d(512, 1, 3, padding=1)
        self.outconv5 = nn.Conv2d(512, 1, 3, padding=1)
        self.outconv4 = nn.Conv2d(256, 1, 3, padding=1)
        self.outconv3 = nn.Conv2d(128, 1, 3, padding=1)
        self.outconv2 = nn.Conv2d(64, 1, 3, padding=1)
        self.outconv1 = nn.Conv2d(64, 1, 3, padding=1)
        self.refunet = UpstreamRefUnet(1, 64)

    def forward(self, x):
        hx = self.inrelu(self.inbn(self.inconv(x)))
        h1 = self.encoder1(hx)
        h2 = self.encoder2(h1)
        h3 = self.encoder3(h2)
        h4 = self.encoder4(h3)
        h5 = self.resb5_3(self.resb5_2(self.resb5_1(self.pool4(h4))))
        h6 = self.resb6_3(self.resb6_2(self.resb6_1(self.pool5(h5))))
        hbg = run(self, "bg_2", run(self, "bg_m", run(self, "bg_1", h6)))
        hd6 = run(self, "6d_2", run(self, "6d_m", run(self, "6d_1", torch.cat((hbg, h6), 1))))
        hd5 = run(self, "5d_2", run(self, "5d_m", run(self, "5d_1", torch.cat((self.upscore2(hd6), h5), 1))))
        hd4 = run(self, "4d_2", run(self, "4d_m", run(self, "4d_1", torch.cat((self.upscore2(hd5), h4), 1))))
        hd3 = run(self, "3d_2", run(self, "3d_m", run(self, "3d_1", torch.cat((self.upscore2(hd4), h3), 1))))
        hd2 = run(self, "2d_2", run(self, "2d_m", run(self, "2d_1", torch.cat((self.upscore2(hd3), h2), 1))))
        hd1 = run(self, "1d_2", run(self, "1d_m", run(self, "1d_1", torch.cat((self.upscore2(hd2), h1), 1))))
        db = self.upscore6(self.outconvb(hbg))
        d6 = self.upscore6(self.outconv6(hd6))
        d5 = self.upscore5(self.outconv5(hd5))
        d4 = self.upscore4(self.outconv4(hd4))
        d3 = self.upscore3(self.outconv3(hd3))
        d2 = self.upscore2(self.outconv2(hd2))
        d1 = self.outconv1(hd1)
        dout = self.refunet(d1)
        return tuple(torch.sigmoid(d) for d in (dout, d1, d2, d3, d4, d5, d6, db))


# ---- models/archs/sod.py's U2NET, transcribed ----
class REBNCONV(nn.Module):
    def __init__(self, in_ch=3, out_ch=3, dirate=1):
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=1 * dirate, dilation=1 * dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


def _upsample_like(src, tar):
    return nn_f.interpolate(src, size=tar.shape[2:], mode="bilinear", align_corners=False)


class UpstreamRSU(nn.Module):
    """sod.py's RSU7, RSU6, RSU5 and RSU4, which spell out for heights 7 ... 4 what this loops over."""

    def __init__(self, height, in_ch, mid_ch, out_ch):
        super().__init__()
        self.height = height
        self.rebnconvin = REBNCONV(in_ch, out_ch, dirate=1)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, dirate=1)
        self.pool1 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        for i in range(2, height - 1):
            setattr(self, f"rebnconv{i}", REBNCONV(mid_ch, mid_ch, dirate=1))
            setattr(self, f"pool{i}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
        setattr(self, f"rebnconv{height - 1}", REBNCONV(mid_ch, mid_ch, dirate=1))
        setattr(self, f"rebnconv{height}", REBNCONV(mid_ch, mid_ch, dirate=2))
        for i in range(height - 1, 1, -1):
            setattr(self, f"rebnconv{i}d", REBNCONV(mid_ch * 2, mid_ch, dirate=1))
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch, dirate=1)

    def forward(self, x):
        hxin = self.rebnconvin(x)
        hx = {1: self.rebnconv1(hxin)}
        for i in range(2, self.height):
            hx[i] = getattr(self, f"rebnconv{i}")(getattr(self, f"pool{i - 1}")(hx[i - 1]))
        d = getattr(self, f"rebnconv{self.height}")(hx[self.height - 1])
        for i in range(self.height - 1, 1, -1):
            d = _upsample_like(getattr(self, f"rebnconv{i}d")(torch.cat((d, hx[i]), 1)), hx[i - 1])
        return self.rebnconv1d(torch.cat((d, hx[1]), 1)) + hxin


class RSU4F(nn.Module):
    def __init__(self, in_ch=3, mid_ch=12, out_ch=3):
        super().__init__()
        self.rebnconvin = REBNCONV(in_ch, out_ch, dirate=1)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, dirate=1)
        self.rebnconv2 = REBNCONV(mid_ch, mid_ch, dirate=2)
        self.rebnconv3 = REBNCONV(mid_ch, mid_ch, dirate=4)
        self.rebnconv4 = REBNCONV(mid_ch, mid_ch, dirate=8)
        self.rebnconv3d = REBNCONV(mid_ch * 2, mid_ch, dirate=4)
        self.rebnconv2d = REBNCONV(mid_ch * 2, mid_ch, dirate=2)
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch, dirate=1)

    def forward(self, x):
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = self.rebnconv2d(torch.cat((hx3d, hx2), 1))
        hx1d = self.rebnconv1d(torch.cat((hx2d, hx1), 1))
        return hx1d + hxin


class UpstreamU2NET(nn.Module):
    def __init__(self, in_ch=3, out_ch=1):
        super().__init__()
        self.stage1 = UpstreamRSU(7, in_ch, 32, 64)
        self.pool12 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage2 = UpstreamRSU(6, 64, 32, 128)
        self.pool23 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage3 = UpstreamRSU(5, 128, 64, 256)
        self.pool34 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage4 = UpstreamRSU(4, 256, 128, 512)
        self.pool45 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage5 = RSU4F(512, 256, 512)
        self.pool56 = nn.MaxPool2d(2, stride=2, ceil_mode=True)
        self.stage6 = RSU4F(512, 256, 512)
        self.stage5d = RSU4F(1024, 256, 512)
        self.stage4d = UpstreamRSU(4, 1024, 128, 256)
        self.stage3d = UpstreamRSU(5, 512, 64, 128)
        self.stage2d = UpstreamRSU(6, 256, 32, 64)
        self.stage1d = UpstreamRSU(7, 128, 16, 64)
        self.side1 = nn.Conv2d(64, out_ch, 3, padding=1)
        self.side2 = nn.Conv2d(64, out_ch, 3, padding=1)
        self.side3 = nn.Conv2d(128, out_ch, 3, padding=1)
        self.side4 = nn.Conv2d(256, out_ch, 3, padding=1)
        self.side5 = nn.Conv2d(512, out_ch, 3, padding=1)
        self.side6 = nn.Conv2d(512, out_ch, 3, padding=1)
        self.outconv = nn.Conv2d(6 * out_ch, out_ch, 1)

    def forward(self, x):
        hx1 = self.stage1(x)
        hx2 = self.stage2(self.pool12(hx1))
        hx3 = self.stage3(self.pool23(hx2))
        hx4 = self.stage4(self.pool34(hx3))
        hx5 = self.stage5(self.pool45(hx4))
        hx6 = self.stage6(self.pool56(hx5))
        hx5d = self.stage5d(torch.cat((_upsample_like(hx6, hx5), hx5), 1))
        hx4d = self.stage4d(torch.cat((_upsample_like(hx5d, hx4), hx4), 1))
        hx3d = self.stage3d(torch.cat((_upsample_like(hx4d, hx3), hx3), 1))
        hx2d = self.stage2d(torch.cat((_upsample_like(hx3d, hx2), hx2), 1))
        hx1d = self.stage1d(torch.cat((_upsample_like(hx2d, hx1), hx1), 1))
        d1 = self.side1(hx1d)
        d2 = _upsample_like(self.side2(hx2d), d1)
        d3 = _upsample_like(self.side3(hx3d), d1)
        d4 = _upsample_like(self.side4(hx4d), d1)
        d5 = _upsample_like(self.side5(hx5d), d1)
        d6 = _upsample_like(self.side6(hx6), d1)
        d0 = self.outconv(torch.cat((d1, d2, d3, d4, d5, d6), 1))
        return tuple(torch.sigmoid(d) for d in (d0, d1, d2, d3, d4, d5, d6))


# ---- models/optim_predictor.py and models/archs/weight_map_producer.py, transcribed ----
def upstream_map_to_mat(weight_map, mat_size, map_to_mat_info=(16, -62, 77, -62, 77)):
    scale_factor, low_delta, up_delta, left_delta, right_delta = map_to_mat_info
    batch_size, _, map_h, map_w = weight_map.size()
    mat = torch.zeros(size=(batch_size, 1, mat_size[0], mat_size[1]), dtype=weight_map.dtype)
    for i in range(mat_size[0]):
        for j in range(mat_size[1]):
            rf_center = (i * scale_factor, j * scale_factor)
            low = max(0, rf_center[0] + low_delta)
            up = min(map_h - 1, rf_center[0] + up_delta)
            left = max(0, rf_center[1] + left_delta)
            right = min(map_w - 1, rf_center[1] + right_delta)
            torch.mean(weight_map[:, :, low:(up + 1), left:(right + 1)], dim=[2, 3], out=mat[:, :, i, j])
    return mat


def upstream_sod(sod_model, x, size):
    """SodBASNet (size 256) and SodU2Net (320) forward."""
    mean = torch.as_tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.as_tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    _, _, h, w = x.size()
    x = nn_f.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    sod_map = sod_model((x - mean) / std)[0]
    sod_map = nn_f.interpolate(sod_map, size=(h, w), mode="bilinear", align_corners=False)
    return (sod_map - torch.min(sod_map)) / (torch.max(sod_map) - torch.min(sod_map))


def upstream_residual(x):
    """HighFrequencyResidual(scale_factor=4, convert_gray=True); recompute_scale_factor: PyTorch 1.2's meaning of
    scale_factor, under which upstream ran."""
    x = torch.sum(x * torch.as_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1), dim=1, keepdim=True)
    lr_x = nn_f.interpolate(x, scale_factor=1 / 4, mode="bicubic", align_corners=False, recompute_scale_factor=True)
    sr_x = nn_f.interpolate(lr_x, size=(x.size(2), x.size(3)), mode="bicubic", align_corners=False)
    return torch.abs(x - sr_x)


def upstream_score(d, sod_model, sod_size, x, config):
    """test_iqa.py: the critic itself for "Naive", else SodResFusionTest_WeightedAveragePredictor.forward."""
    if config.sod is None:
        return d(x).view(1)
    score_mat = d(x, patch_result=True, shape="mat4d")
    weight_map = torch.zeros(size=[x.size(0), 1, x.size(2), x.size(3)], dtype=x.dtype)
    weight_map += config.coef_sod * upstream_sod(sod_model, x, sod_size)
    weight_map += config.coef_res * upstream_residual(x)
    weight_mat = upstream_map_to_mat(weight_map, (score_mat.size(2), score_mat.size(3))) + config.coef_avg
    if config.norm == "mean":
        return torch.mean(weight_mat * score_mat, dim=(1, 2, 3), keepdim=False)
    weight_mat /= torch.sum(weight_mat, dim=(2, 3), keepdim=True)
    return torch.sum(weight_mat * score_mat, dim=(1, 2, 3), keepdim=False)


def _randomise(net):
    """Random batch-norm statistics, so that eval mode's normalisation is exercised."""
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1), m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5), m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """The six files in upstream's layouts (random weights): two critics as access.py's save_model writes them
    ({"epoch", "state"}), two as bare state dicts; basnet.pth without num_batches_tracked (PyTorch 0.4.0's batch
    norms), u2net.pth with them; and the stand-ins that wrote them."""
    folder = tmp_path_factory.mktemp("recycled")
    torch.manual_seed(0)
    nets = {"image_gan_sr": UpstreamVgg(), "image_gan_auth": UpstreamVgg(), "patch_gan_sr": UpstreamPatchVgg(),
            "patch_gan_auth": UpstreamPatchVgg(), "basnet": _randomise(UpstreamBASNet(3, 1)),
            "u2net": _randomise(UpstreamU2NET(3, 1))}
    paths = {name: folder / (CRITICS[name][1] if name in CRITICS else f"{name}.pth") for name in nets}
    for name, net in nets.items():
        net.eval()
        state = net.state_dict()
        if name in ("image_gan_sr", "patch_gan_sr"):
            state = {"epoch": 200, "state": state}
        if name == "basnet":
            state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        torch.save(state, paths[name])
    return nets, paths


@pytest.fixture(scope="module")
def recycled(upstream):
    return load_recycled(**upstream[1])


@pytest.mark.parametrize("name, ours, size", [("image_gan_sr", VggDiscriminator, (80, 112)),
                                              ("patch_gan_auth", PatchVggDiscriminator, (80, 112)),
                                              ("basnet", BASNet, (64, 64)), ("u2net", U2NET, (64, 96))])
def test_upstream_state_dicts_load_strictly_and_give_upstreams_outputs(upstream, recycled, name, ours, size):
    nets, _ = upstream
    loaded = recycled.critics[name] if name in CRITICS else recycled.sod[name]
    assert type(loaded) is ours and list(loaded.state_dict()) == list(nets[name].state_dict())
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs = nets[name](x, patch_result=True) if name.startswith("patch") else nets[name](x)
        theirs = theirs[0] if name in ("basnet", "u2net") else theirs  # the SOD map
        out = loaded(x)
    expected = {"image_gan_sr": (1, 1), "patch_gan_auth": (1, 1, 5, 7)}.get(name, (1, 1, *size))
    assert out.shape == theirs.shape == expected
    assert torch.allclose(out, theirs, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(1, 1, 150, 100), (2, 1, 64, 37), (1, 1, 768, 1024)])
def test_map_to_mat_is_upstreams_loop(shape):
    torch.manual_seed(0)
    weight_map = torch.rand(shape) * 380.0
    size = (shape[2] // 16, shape[3] // 16)
    ours, theirs = map_to_mat(weight_map, size), upstream_map_to_mat(weight_map, size)
    assert ours.shape == theirs.shape == (shape[0], 1, *size) and ours.dtype == torch.float32
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=0)


@pytest.mark.parametrize("set_name", list(SETS))
def test_each_set_scores_as_upstreams_predictor(upstream, recycled, set_name):
    nets, _ = upstream
    config = SETS[set_name]
    # not multiples of 4 or 16; noise on the left, a smooth ramp on the right, so that critic scores and residual
    # weights differ across the image
    x = torch.rand(1, 3, 98, 131, generator=torch.Generator().manual_seed(2))
    x[..., 64:] = torch.linspace(0.2, 0.8, 131 - 64)
    sod_size = {"basnet": 256, "u2net": 320}.get(config.sod)
    with torch.no_grad():
        ours = recycled(x, set_name)
        theirs = upstream_score(nets[config.critic], nets.get(config.sod), sod_size, x, config)
    assert ours.ndim == 0 and torch.isfinite(ours)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5, abs=1e-6)
    if config.sod is not None:  # the weighting matters: the plain mean of the matrix is another number
        plain = nets[config.critic](x).item()
        assert ours.item() != pytest.approx(plain, rel=1e-4)


def test_set_configurations_are_the_shell_scripts():
    assert {k: (c.critic, c.sod, c.coef_sod, c.coef_res, c.coef_avg, c.norm) for k, c in SETS.items()
            if c.sod is not None} == {"Ma": ("patch_gan_sr", "u2net", 0.286, 0.860, 1.0, "mean"),
                                      "LIVE-itW": ("patch_gan_auth", "basnet", 5.0, 380.0, 1.0, "set_sum_1")}
    assert SETS["PIPAL"].critic == "image_gan_sr" and SETS["KonIQ-10k"].critic == "image_gan_auth"
    assert CRITICS["image_gan_sr"][0] == "VGG" and CRITICS["patch_gan_auth"][0] == "PatchVGG"


def test_unknown_set_is_a_typed_error(recycled):
    with pytest.raises(UnknownSetError, match="`TID2013`.*known: PIPAL, KonIQ-10k, Ma, LIVE-itW") as err:
        recycled(torch.rand(1, 3, 32, 32), "TID2013")
    assert isinstance(err.value, ValueError) and isinstance(recycled, RecycleD)
    with pytest.raises(ValueError, match=r"one \(1, 3, H, W\) image, got \(2, 3, 32, 32\)"):
        recycled(torch.rand(2, 3, 32, 32), "Ma")


def test_missing_or_wrong_files_are_n_a_with_the_reason(upstream, tmp_path):
    nets, paths = upstream
    missing = r"weights not available: .*{} \(by hand: registry entry recycled_{}\)"
    with pytest.raises(MetricUnavailable, match=missing.format(r"none\.pth", "patchgan_auth")):
        load_recycled(**{**paths, "patch_gan_auth": tmp_path / "none.pth"})
    with pytest.raises(MetricUnavailable, match=missing.format(r"u2net\.pth", "u2net")):
        load_recycled(**{**paths, "u2net": tmp_path / "u2net.pth"})
    torch.save({"epoch": 2000, "state": nets["patch_gan_sr"].state_dict()}, tmp_path / "swapped.pth")
    with pytest.raises(MetricUnavailable, match=r"swapped\.pth: checkpoint does not fit VggDiscriminator: missing"):
        load_recycled(**{**paths, "image_gan_auth": tmp_path / "swapped.pth"})
    torch.save({"epoch": 200, "weights": nets["image_gan_sr"].state_dict()}, tmp_path / "other.pth")
    with pytest.raises(MetricUnavailable, match=r"other\.pth does not hold a state dict of tensors"):
        load_recycled(**{**paths, "image_gan_sr": tmp_path / "other.pth"})
    torch.save(nets["u2net"].state_dict(), tmp_path / "basnet.pth")
    with pytest.raises(MetricUnavailable, match=r"basnet\.pth: checkpoint does not fit BASNet"):
        load_recycled(**{**paths, "basnet": tmp_path / "basnet.pth"})
