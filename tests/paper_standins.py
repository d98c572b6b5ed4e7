"""Stand-ins for every file of the paper profile, in the upstream layouts, for the rehearsal of the whole paper DAG.

Images are tiny and random, weights are random, but archive names, folder names, file names, CSV columns, .mat
variables and state-dict keys are upstream's (each source is named where it is built). `build_mirror` writes the
downloadable files as `<root>/<entry>/<file name>`, the layout of the `download_mirror` param; `place_by_hand`
puts the manual entries where a user would.
"""
from __future__ import annotations

import csv
import io
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import scipy.io
import torch
from PIL import Image
from torchvision.models import resnet50

from pipeline.archs.basnet import BASNet
from pipeline.archs.nafnet import NAFNet
from pipeline.archs.recycled_vgg import PatchVggDiscriminator, VggDiscriminator
from pipeline.archs.rrdbnet import RRDBNet, basicsr_to_esrgan
from pipeline.archs.srresnet import SRResNet
from pipeline.archs.swin_discriminator import SpectralDiscriminator2D, SwinDiscriminator
from pipeline.archs.swinir import SwinIR
from pipeline.archs.u2net import U2NET
from pipeline.checkpoint import save_state_dict

RNG_SEED = 0
OST_CATEGORIES = ("animal", "building", "grass", "mountain", "plant", "sky", "water")  # OutdoorSceneTrain_v2
SET5 = ("baby", "bird")  # benchmark.tar's Set5 names (first two)
SET14 = ("baboon", "barbara")
B100 = ("3096", "8023")
URBAN100 = ("img_001", "img_002")
# GOPRO_Large (split -> (sequence, frame)): frames that public deblurring code names, two per split
GOPRO_FRAMES = {"train": (("GOPR0372_07_00", "000048"), ("GOPR0372_07_00", "000076")),
                "test": (("GOPR0384_11_00", "000001"), ("GOPR0384_11_05", "004001"))}


class _OldRDB(torch.nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        for i in range(4):  # conv_block(..., act_type='leakyrelu') = Sequential(conv, LeakyReLU)
            setattr(self, f"conv{i + 1}", torch.nn.Sequential(torch.nn.Conv2d(nf + i * gc, gc, 3, 1, 1),
                                                              torch.nn.LeakyReLU(0.2)))
        self.conv5 = torch.nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)  # act_type=None: the bare conv

    def forward(self, x):
        feats = [x]
        for i in range(4):
            feats.append(getattr(self, f"conv{i + 1}")(torch.cat(feats, 1)))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class _OldRRDB(torch.nn.Module):
    def __init__(self, nf: int, gc: int):
        super().__init__()
        self.RDB1, self.RDB2, self.RDB3 = (_OldRDB(nf, gc) for _ in range(3))

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


class _Shortcut(torch.nn.Module):
    def __init__(self, sub: torch.nn.Module):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


def _conv(c_in: int, c_out: int) -> torch.nn.Conv2d:
    return torch.nn.Conv2d(c_in, c_out, 3, 1, 1)


def _upconv(nf: int) -> list[torch.nn.Module]:
    """upconv_blcok, flattened: nearest x2, conv, LeakyReLU 0.2."""
    return [torch.nn.Upsample(scale_factor=2, mode="nearest"), _conv(nf, nf), torch.nn.LeakyReLU(0.2)]


def _old_trunk(nf: int, nb: int, gc: int) -> _Shortcut:
    """ShortcutBlock(RRDBs + LR_conv): model.1 of the old RRDB_Net."""
    return _Shortcut(torch.nn.Sequential(*(_OldRRDB(nf, gc) for _ in range(nb)), _conv(nf, nf)))


class OldRRDBNet(torch.nn.Module):
    """The old BasicSR RRDB_Net's module tree, whose state dict is WGSR's checkpoints' (mandalinadagi/WGSR commit
    0596d929: codes/models/modules/architecture.py RRDB_Net and block.py, which flattens every conv_block into one
    nn.Sequential): fea_conv, ShortcutBlock(RRDBs + LR_conv), two upconv blocks (nearest x2, conv, LeakyReLU 0.2),
    HR_conv0 (conv, LeakyReLU), HR_conv1, computing as upstream does."""

    def __init__(self, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32):
        super().__init__()
        nf = num_feat
        self.model = torch.nn.Sequential(_conv(3, nf), _old_trunk(nf, num_block, num_grow_ch), *_upconv(nf),
                                         *_upconv(nf), _conv(nf, nf), torch.nn.LeakyReLU(0.2), _conv(nf, 3))

    def forward(self, x):
        return self.model(x)


class _Gradient(torch.nn.Module):
    """Get_gradient_nopadding: fixed kernels kept as parameters (so in the state dict), one channel at a time."""

    def __init__(self):
        super().__init__()
        v = torch.tensor([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        self.weight_h = torch.nn.Parameter(v.t().reshape(1, 1, 3, 3).clone(), requires_grad=False)
        self.weight_v = torch.nn.Parameter(v.reshape(1, 1, 3, 3), requires_grad=False)

    def forward(self, x):
        grads = []
        for i in range(x.shape[1]):
            c = x[:, i:i + 1]
            grads.append(torch.sqrt(torch.nn.functional.conv2d(c, self.weight_v, padding=1) ** 2
                                    + torch.nn.functional.conv2d(c, self.weight_h, padding=1) ** 2 + 1e-6))
        return torch.cat(grads, 1)


class UpstreamSPSRNet(torch.nn.Module):
    """SPSR's SPSRNet module tree, whose state dict is spsr.pth's (Maclory/SPSR commit 881e7811:
    code/models/modules/architecture.py and block.py): the old RRDB_Net's `model` Sequential, into which
    HR_conv0_new's modules are flattened (so they appear under both names), and the gradient and fusion branches,
    computing as upstream does."""

    def __init__(self, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32):
        super().__init__()
        nf, lrelu = num_feat, (lambda: torch.nn.LeakyReLU(0.2))
        self.HR_conv0_new = torch.nn.Sequential(_conv(nf, nf), lrelu())
        self.HR_conv1_new = _conv(nf, nf)
        self.model = torch.nn.Sequential(_conv(3, nf), _old_trunk(nf, num_block, num_grow_ch), *_upconv(nf),
                                         *_upconv(nf), *self.HR_conv0_new)
        self.get_g_nopadding = _Gradient()
        self.b_fea_conv = _conv(3, nf)
        for k in range(1, 5):
            setattr(self, f"b_concat_{k}", _conv(2 * nf, nf))
            setattr(self, f"b_block_{k}", _OldRRDB(2 * nf, 32))
        self.b_LR_conv = _conv(nf, nf)
        self.b_module = torch.nn.Sequential(*_upconv(nf), *_upconv(nf), _conv(nf, nf), lrelu(), _conv(nf, nf))
        self.conv_w = torch.nn.Conv2d(nf, 3, 1)
        self.f_concat = _conv(2 * nf, nf)
        self.f_block = _OldRRDB(2 * nf, 32)
        self.f_HR_conv0 = torch.nn.Sequential(_conv(nf, nf), lrelu())
        self.f_HR_conv1 = _conv(nf, 3)

    def forward(self, x):
        grad = self.get_g_nopadding(x)
        x = self.model[0](x)
        blocks, x_ori, taps = self.model[1].sub, x, []
        for i in range(20):
            x = blocks[i](x)
            if i % 5 == 4:
                taps.append(x)
        x = self.HR_conv1_new(self.model[2:](x_ori + blocks[20:](x)))
        b_fea = self.b_fea_conv(grad)
        b = b_fea
        for k, tap in enumerate(taps, start=1):
            b = getattr(self, f"b_concat_{k}")(getattr(self, f"b_block_{k}")(torch.cat([b, tap], 1)))
        branch = self.b_module(self.b_LR_conv(b) + b_fea)
        return self.f_HR_conv1(self.f_HR_conv0(self.f_concat(self.f_block(torch.cat([branch, x], 1)))))


def _sft_conv_block(c_in: int, c_out: int, k: int, stride: int = 1, dilation: int = 1, relu: bool = True):
    """block.py's conv_block(in, out, k, stride, dilation, 1, False, 'zero', 'batch'[, None]): Sequential(conv, BN[,
    ReLU])."""
    layers = [torch.nn.Conv2d(c_in, c_out, k, stride, ((k + (k - 1) * (dilation - 1)) - 1) // 2, dilation, bias=False),
              torch.nn.BatchNorm2d(c_out, affine=True)]
    return torch.nn.Sequential(*layers, *([torch.nn.ReLU(True)] if relu else []))


def _flatten(*modules: torch.nn.Module) -> torch.nn.Sequential:
    """block.py's sequential: unwraps each nn.Sequential into its children."""
    return torch.nn.Sequential(*(c for m in modules for c in (m.children() if isinstance(m, torch.nn.Sequential)
                                                               else [m])))


class _Res131(torch.nn.Module):
    def __init__(self, in_nc, mid_nc, out_nc, dilation=1, stride=1):
        super().__init__()
        self.res = _flatten(_sft_conv_block(in_nc, mid_nc, 1), _sft_conv_block(mid_nc, mid_nc, 3, stride, dilation),
                            _sft_conv_block(mid_nc, out_nc, 1, relu=False))
        self.has_proj = in_nc != out_nc
        if self.has_proj:
            self.proj = _sft_conv_block(in_nc, out_nc, 1, stride, relu=False)

    def forward(self, x):
        res = self.res(x)
        return torch.nn.functional.relu((self.proj(x) if self.has_proj else x) + res)


class UpstreamOutdoorSceneSeg(torch.nn.Module):
    """SFTGAN's OutdoorSceneSeg module tree, whose state dict is segmentation_OST_bic.pth's (xinntao/SFTGAN commit
    d98889e, pytorch_test/architectures.py and block.py), with its widths divided by `div` and its four stages'
    block counts given (upstream: 3, 4, 23, 3)."""

    def __init__(self, div: int = 1, blocks: tuple[int, int, int, int] = (3, 4, 23, 3)):
        super().__init__()
        w = lambda c: c // div  # noqa: E731
        layers = [_sft_conv_block(3, w(64), 3, 2), _sft_conv_block(w(64), w(64), 3),
                  _sft_conv_block(w(64), w(128), 3), torch.nn.MaxPool2d(3, stride=2, padding=0, ceil_mode=True)]
        c_in = w(128)
        for (mid, out, dilation, stride), n in zip(((64, 256, 1, 1), (128, 512, 1, 2), (256, 1024, 2, 1),
                                                    (512, 2048, 4, 1)), blocks):
            layers += [_Res131(c_in, w(mid), w(out), dilation, stride)]
            layers += [_Res131(w(out), w(mid), w(out), dilation) for _ in range(n - 1)]
            c_in = w(out)
        layers += [_sft_conv_block(c_in, w(512), 3), torch.nn.Dropout(0.1), torch.nn.Conv2d(w(512), 8, 1, 1)]
        self.feature = _flatten(*layers)
        self.deconv = torch.nn.ConvTranspose2d(8, 8, 16, 8, 4, 0, 8, False, 1)
        self.softmax = torch.nn.Softmax(1)

    def forward(self, x):
        return self.softmax(self.deconv(self.feature(x)))


class _SFTLayerTorch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.SFT_scale_conv0 = torch.nn.Conv2d(32, 32, 1)
        self.SFT_scale_conv1 = torch.nn.Conv2d(32, 64, 1)
        self.SFT_shift_conv0 = torch.nn.Conv2d(32, 32, 1)
        self.SFT_shift_conv1 = torch.nn.Conv2d(32, 64, 1)

    def forward(self, x):  # x[0]: fea; x[1]: cond
        lrelu = torch.nn.functional.leaky_relu
        return x[0] * self.SFT_scale_conv1(lrelu(self.SFT_scale_conv0(x[1]), 0.01)) + \
            self.SFT_shift_conv1(lrelu(self.SFT_shift_conv0(x[1]), 0.01))


class _ResBlockSFTTorch(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sft0, self.conv0 = _SFTLayerTorch(), torch.nn.Conv2d(64, 64, 3, 1, 1)
        self.sft1, self.conv1 = _SFTLayerTorch(), torch.nn.Conv2d(64, 64, 3, 1, 1)

    def forward(self, x):
        relu = torch.nn.functional.relu
        fea = self.conv0(relu(self.sft0(x)))
        return x[0] + self.conv1(relu(self.sft1((fea, x[1])))), x[1]


class UpstreamSFTNetTorch(torch.nn.Module):
    """SFTGAN's SFT_Net_torch module tree, whose state dict is SFTGAN_torch.pth's (xinntao/SFTGAN commit d98889e,
    pytorch_test/architectures.py), full size (64 features, 16 blocks), taking (LR, probabilities) as upstream."""

    def __init__(self):
        super().__init__()
        conv = lambda: torch.nn.Conv2d(64, 64, 3, 1, 1)  # noqa: E731
        up = lambda: torch.nn.Upsample(scale_factor=2, mode="nearest")  # noqa: E731
        self.conv0 = torch.nn.Conv2d(3, 64, 3, 1, 1)
        self.sft_branch = torch.nn.Sequential(*(_ResBlockSFTTorch() for _ in range(16)), _SFTLayerTorch(), conv())
        self.HR_branch = torch.nn.Sequential(up(), conv(), torch.nn.ReLU(True), up(), conv(), torch.nn.ReLU(True),
                                             conv(), torch.nn.ReLU(True), torch.nn.Conv2d(64, 3, 3, 1, 1))
        lrelu = lambda: torch.nn.LeakyReLU(0.1, True)  # noqa: E731
        self.CondNet = torch.nn.Sequential(torch.nn.Conv2d(8, 128, 4, 4), lrelu(), torch.nn.Conv2d(128, 128, 1),
                                           lrelu(), torch.nn.Conv2d(128, 128, 1), lrelu(),
                                           torch.nn.Conv2d(128, 128, 1), lrelu(), torch.nn.Conv2d(128, 32, 1))

    def forward(self, x):  # x[0]: img; x[1]: seg
        cond = self.CondNet(x[1])
        fea = self.conv0(x[0])
        return self.HR_branch(fea + self.sft_branch((fea, cond)))


def _torch_converted(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """`net`'s state dict as SFTGAN's files converted from Torch hold it: without batch norm's num_batches_tracked
    (PyTorch 0.4.0 had none)."""
    return {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


def sftgan_checkpoints(folder: Path):
    """SFTGAN_torch.pth and segmentation_OST_bic.pth (a narrow, shallow OutdoorSceneSeg with random batch-norm
    statistics), with their upstream module trees."""
    torch.manual_seed(0)
    seg, sft = UpstreamOutdoorSceneSeg(div=16, blocks=(1, 2, 2, 1)).eval(), UpstreamSFTNetTorch().eval()
    for m in seg.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0), m.bias.data.uniform_(-0.1, 0.1)
    seg.feature[-1].weight.data *= 100  # logits far enough apart that the probabilities vary over the image
    torch.save(_torch_converted(seg), folder / "segmentation_OST_bic.pth")
    torch.save(sft.state_dict(), folder / "SFTGAN_torch.pth")
    return seg, sft, folder / "SFTGAN_torch.pth", folder / "segmentation_OST_bic.pth"


def _png(rng: np.random.Generator, h: int, w: int, fmt: str = "PNG") -> bytes:
    """A smooth random image (so bicubic resizing and NIQE see structure, not pure noise)."""
    small = rng.integers(0, 256, (max(h // 8, 2), max(w // 8, 2), 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BICUBIC)
    noisy = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-12, 13, (h, w, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format=fmt)
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _tar(path: Path, members: dict[str, bytes], mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def _torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --- datasets -------------------------------------------------------------------------------------------------

def sr_datasets(root: Path, rng: np.random.Generator) -> None:
    # DIV2K (data.vision.ee.ethz.ch): DIV2K_train_HR.zip -> DIV2K_train_HR/0001.png ...
    _zip(root / "DIV2K_train_HR" / "DIV2K_train_HR.zip",
         {f"DIV2K_train_HR/{i:04d}.png": _png(rng, 128, 136) for i in (1, 2)})
    _zip(root / "DIV2K_valid_HR" / "DIV2K_valid_HR.zip",
         {f"DIV2K_valid_HR/{i:04d}.png": _png(rng, 128, 136) for i in (801, 802)})
    # Flickr2K.tar (EDSR): Flickr2K/Flickr2K_HR/000001.png, Flickr2K/Flickr2K_LR_bicubic/X4/000001x4.png
    members = {}
    for i in (1, 2):
        members[f"Flickr2K/Flickr2K_HR/{i:06d}.png"] = _png(rng, 128, 128)
        members[f"Flickr2K/Flickr2K_LR_bicubic/X4/{i:06d}x4.png"] = _png(rng, 32, 32)
    _tar(root / "Flickr2K" / "Flickr2K.tar", members)
    # OST_dataset.zip: OutdoorSceneTrain_v2/<category>/*.png; two images per category, one smaller than the
    # 64 px sub-image of the rehearsal (as many OST images are smaller than 480 px)
    members = {}
    for c in OST_CATEGORIES:
        members[f"OutdoorSceneTrain_v2/{c}/{c}_0001.png"] = _png(rng, 96, 112)
        members[f"OutdoorSceneTrain_v2/{c}/{c}_0002.png"] = _png(rng, 52, 60)
    _zip(root / "OST" / "OST_dataset.zip", members)
    # benchmark.tar (EDSR): benchmark/<set>/HR/<name>.png and LR_bicubic/X4/<name>x4.png
    members = {}
    for set_name, names in (("Set5", SET5), ("Set14", SET14), ("B100", B100), ("Urban100", URBAN100)):
        for name in names:
            members[f"benchmark/{set_name}/HR/{name}.png"] = _png(rng, 64, 72)
            members[f"benchmark/{set_name}/LR_bicubic/X4/{name}x4.png"] = _png(rng, 16, 18)
    _tar(root / "benchmark" / "benchmark.tar", members)


def iqa_datasets(root: Path, rng: np.random.Generator) -> None:
    """Two scored images per set (IL-NIQE costs 12 s an image on 2 cores), at least 96 px a side as upstream's
    are (NIQE needs 96 px blocks)."""
    # pipal.tar (pyiqa's HF mirror): PIPAL/Dist_Imgs/A0001_00_00.bmp ..., PIPAL/Train_Ref/A0001.bmp
    members, rows = {}, []
    for i, (ref, cls, kind) in enumerate(((1, 0, 0), (2, 3, 1))):
        dist = f"A{ref:04d}_{cls:02d}_{kind:02d}.bmp"
        members[f"PIPAL/Dist_Imgs/{dist}"] = _png(rng, 288, 288, "BMP")  # PIPAL's size: DualFormer's 192 px patches
        rows.append({"hq_name": f"A{ref:04d}.bmp", "dist_name": dist, "elo_score": 1400.0 + 25 * i,
                     "official_split": "train"})
    for ref in (1, 2):
        members[f"PIPAL/Train_Ref/A{ref:04d}.bmp"] = _png(rng, 288, 288, "BMP")
    rows.append({"hq_name": "A0201.bmp", "dist_name": "A0201_00_00.bmp", "elo_score": 1500.0,
                 "official_split": "val"})  # a validation row: its image is not in Dist_Imgs
    _tar(root / "PIPAL" / "pipal.tar", members)
    _write(root / "PIPAL" / "meta_info_PIPALDataset.csv", _csv(rows))
    # KonIQ-10k: koniq10k_1024x768.zip -> 1024x768/<id>.jpg; subpic/koniq's koniq10k_distributions_sets.csv
    members, rows = {}, []
    for i, split in enumerate(("training", "test")):
        name = f"{10004473376 + i}.jpg"
        members[f"1024x768/{name}"] = _png(rng, 108, 144, "JPEG")
        rows.append({"image_name": name, "c1": 1, "c2": 2, "c3": 30, "c4": 60, "c5": 7, "c_total": 100,
                     "MOS": 60.0 + 5 * i, "SD": 0.7, "set": split})
    _zip(root / "KonIQ-10k" / "koniq10k_1024x768.zip", members)
    _write(root / "KonIQ-10k" / "koniq10k_distributions_sets.csv", _csv(rows))
    # live_challenge.tgz (pyiqa): LIVEC/Images/*.bmp|*.JPG (t1.bmp ... t7.bmp are the practice images) and
    # meta_info_LIVEChallengeDataset.csv (img_name relative to LIVEC/, mos, std)
    members, rows = {}, []
    for i, name in enumerate(("t1.bmp", "10.JPG", "1000.JPG")):
        members[f"LIVEC/Images/{name}"] = _png(rng, 112, 112, "BMP" if name.endswith("bmp") else "JPEG")
        rows.append({"img_name": f"Images/{name}", "mos": 40.0 + 10 * i, "std": 15.0})
    _tar(root / "LIVE-itW" / "live_challenge.tgz", members, "w:gz")
    _write(root / "LIVE-itW" / "meta_info_LIVEChallengeDataset.csv", _csv(rows))


def restore_datasets(root: Path, rng: np.random.Generator) -> None:
    """GoPro for Table 5: GOPRO_Large.zip (snah/GOPRO_Large on Hugging Face) ->
    {train,test}/<sequence>/{blur,blur_gamma,sharp}/<frame>.png, two pairs per split."""
    members = {}
    for split, frames in GOPRO_FRAMES.items():
        for sequence, frame in frames:
            for role in ("blur", "blur_gamma", "sharp"):
                members[f"{split}/{sequence}/{role}/{frame}.png"] = _png(rng, 64, 96)
    _zip(root / "GoPro" / "GOPRO_Large.zip", members)


def place_rain100l(project: Path, rng: np.random.Generator) -> None:
    """Rain100L for Table 5, placed by hand as PReNet redistributes it (BaiduYun / OneDrive only): RainTrainL/
    norain-<i>.png beside rain-<i>.png and JORDER's rainstreak-/rainregion- masks; Rain100L/norain-<iii>.png and
    Rain100L/rainy/rain-<iii>.png."""
    base = project / "data/raw/restore/Rain100L"
    for i in (1, 2):
        for role in ("norain", "rain", "rainstreak", "rainregion"):
            _write(base / "RainTrainL" / f"{role}-{i}.png", _png(rng, 80, 96))
        _write(base / "Rain100L" / f"norain-{i:03d}.png", _png(rng, 96, 80))
        _write(base / "Rain100L" / "rainy" / f"rain-{i:03d}.png", _png(rng, 96, 80))


def place_real_pairs(project: Path, rng: np.random.Generator) -> None:
    """RealSR V3 and DRealSR, placed by hand where the registry says (Google Drive only upstream)."""
    base = project / "data/raw/real_pairs"
    for camera in ("Canon", "Nikon"):  # RealSR(V3)/<camera>/Test/4/<camera>_001_HR.png beside _LR4.png
        folder = base / "RealSR" / "RealSR(V3)" / camera / "Test" / "4"
        _write(folder / f"{camera}_001_HR.png", _png(rng, 80, 88))
        _write(folder / f"{camera}_001_LR4.png", _png(rng, 20, 22))
    for name in ("Canon_10", "panasonic_103"):  # DRealSR Test_x4: HR ends in _x4, LR in _x1
        _write(base / "DRealSR" / "Test_x4" / "test_HR" / f"{name}_x4.png", _png(rng, 80, 80))
        _write(base / "DRealSR" / "Test_x4" / "test_LR" / f"{name}_x1.png", _png(rng, 20, 20))


def place_ma(project: Path, rng: np.random.Generator) -> None:
    """Ma et al.'s SR-IQA set, placed by hand: images/<method>/sf<s>/sigma<w>/<id>.png and RecycleD's score list
    (`/<method>/sf<s>/sigma<w>/<id>.png,<score>` lines)."""
    base = project / "data/raw/iqa/Ma"
    images = ("Bicubic/sf2/sigma0.8/187058.png", "SRCNN/sf8/sigma2.0/49024.png")
    for name in images:
        _write(base / "images" / name, _png(rng, 112, 104))
    _write(base / "MaScoreDataset_all_pair.txt",
           "\n".join(f"/{name},{score}" for name, score in zip(images, (7.65, 3.325))).encode())


# --- weights --------------------------------------------------------------------------------------------------

def _torchvision(name: str) -> bytes:
    import torchvision
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RNG_SEED)
        return _torch_bytes(getattr(torchvision.models, name)().state_dict())


def ilniqe_template() -> bytes:
    """IL-NIQE's ILNIQE_templateModel.mat: a 1 x 4 cell {mu_prisparam 1x430, cov_prisparam 430x430,
    meanOfSampleData 1x468, principleVectors 468x430}, as pyiqa's niqe_arch reads it."""
    rng = np.random.default_rng(RNG_SEED)
    template = np.empty((1, 4), dtype=object)
    template[0, 0], template[0, 1] = rng.standard_normal((1, 430)), np.eye(430)
    template[0, 2], template[0, 3] = rng.standard_normal((1, 468)), 0.05 * rng.standard_normal((468, 430))
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"templateModel": template})
    return buf.getvalue()


DIPIQ_FILES = {"codebook": "CSIQ_codebook_BS7.mat", "whitening": "CSIQ_whitening_param.mat",
               "normalization": "normalizationParaCORNIA.mat", "network": "netPara.mat"}


def dipiq_files(codewords: int = 10000, hidden=(32, 16), seed: int = RNG_SEED) -> dict[str, bytes]:
    """dipIQ's four .mat files (role -> bytes) with the variables dipIQ.m and cornia_feature.m load, in the types
    and shapes of the release's (checked on CSIQ_whitening_param.mat and normalizationParaCORNIA.mat at
    NTIA/NRMetricFramework 4816527: M 1 x 49 and P 49 x 49 double, trainMu and trainStd 1 x 20000 single, MAT v5):
    codebook0 49 x codewords double; netPara a 1 x 2L struct array of 'value's, each weight in x out and each bias
    out x 1 (dipIQ.m adds its transpose to a row); the hidden widths are ours, the release's are read from its file."""
    rng = np.random.default_rng(seed)
    whiten = np.eye(49) + 0.1 * rng.standard_normal((49, 49))  # not symmetric: a pixel-order slip shows
    widths = (2 * codewords, *hidden, 1)
    net = np.empty((1, 2 * len(widths) - 2), dtype=[("value", object)])
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        net[0, 2 * i]["value"] = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        net[0, 2 * i + 1]["value"] = (0.1 * rng.standard_normal((n_out, 1))).astype(np.float32)
    variables = {"codebook": {"codebook0": rng.standard_normal((49, codewords))},
                 "whitening": {"M": 0.01 * rng.standard_normal((1, 49)), "P": whiten},
                 "normalization": {"trainMu": rng.random((1, 2 * codewords), dtype=np.float32),
                                   "trainStd": 0.5 + rng.random((1, 2 * codewords), dtype=np.float32)},
                 "network": {"netPara": net}}
    files = {}
    for role, mat in variables.items():
        buf = io.BytesIO()
        scipy.io.savemat(buf, mat)
        files[role] = buf.getvalue()
    return files


# DualFormer's critics as options/train/train_esrgan_x4_dual_former.yml builds them (the IQA experiments' own options
# files are in the Drive release only; PIPAL's must split its 6 x 6 tokens at 192 px, so its stand-in has window 6)
DUALFORMER_D = {"img_size": 128, "patch_size": 32, "num_classes": 1, "embed_dim": 96, "depths": [8, 2],
                "num_heads": [3, 6], "mlp_ratio": 4, "window_size": 4, "fused_window_process": True, "in_chans": 3}
DUALFORMER_SPECTRAL_D = {**{k: v for k, v in DUALFORMER_D.items() if k != "in_chans"}, "version": "swin",
                         "reduction": "none", "spec_type": "power", "fix_normalize": True}
DUALFORMER_WINDOWS = {"pipal": 6, "clive_koniq": 4}


def dualformer_options(experiment: str) -> dict:
    """A stand-in options file of a DualFormer IQA experiment folder (pipeline.metrics.dualformer EXPERIMENTS)."""
    window = DUALFORMER_WINDOWS[experiment]
    return {"name": f"stand-in {experiment}",
            "network_d": {"type": "SwinTransformer", **DUALFORMER_D, "window_size": window},
            "net_spectral_d": {"type": "SpectralDiscriminator2D", **DUALFORMER_SPECTRAL_D, "window_size": window}}


def _dualformer_critics() -> dict[str, bytes]:
    """The four dualformer_iqa_* files: {'params': ...} (BasicSR save_network), upstream's key names (checked in
    tests/test_dualformer.py), the spectral critic's under `net.`."""
    files = {}
    for experiment, window in DUALFORMER_WINDOWS.items():
        spatial = SwinDiscriminator(**{k: v for k, v in DUALFORMER_D.items() if k != "fused_window_process"}
                                    | {"window_size": window})
        spectral = SpectralDiscriminator2D(**{k: v for k, v in DUALFORMER_SPECTRAL_D.items()
                                              if k != "fused_window_process"} | {"window_size": window})
        files[f"dualformer_iqa_{experiment}_d"] = _torch_bytes({"params": spatial.state_dict()})
        files[f"dualformer_iqa_{experiment}_spectral_d"] = _torch_bytes({"params": spectral.state_dict()})
    return files


def _caffe_classes() -> dict:
    """The caffe.proto messages a .caffemodel holds (BVLC/caffe src/caffe/proto/caffe.proto's field numbers), built
    with protobuf itself, so stand-ins are encoded by a real protobuf encoder, not by the reader under test."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    f = descriptor_pb2.FieldDescriptorProto
    one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    messages = {
        "BlobShape": [("dim", 1, f.TYPE_INT64, many, None, True)],
        "BlobProto": [("shape", 7, f.TYPE_MESSAGE, one, "BlobShape", False),
                      ("data", 5, f.TYPE_FLOAT, many, None, True), ("num", 1, f.TYPE_INT32, one, None, False),
                      ("channels", 2, f.TYPE_INT32, one, None, False), ("height", 3, f.TYPE_INT32, one, None, False),
                      ("width", 4, f.TYPE_INT32, one, None, False)],
        "LayerParameter": [("name", 1, f.TYPE_STRING, one, None, False), ("type", 2, f.TYPE_STRING, one, None, False),
                           ("bottom", 3, f.TYPE_STRING, many, None, False),
                           ("blobs", 7, f.TYPE_MESSAGE, many, "BlobProto", False)],
        "V1LayerParameter": [("bottom", 2, f.TYPE_STRING, many, None, False),
                             ("name", 4, f.TYPE_STRING, one, None, False), ("type", 5, f.TYPE_INT32, one, None, False),
                             ("blobs", 6, f.TYPE_MESSAGE, many, "BlobProto", False)],
        "NetParameter": [("name", 1, f.TYPE_STRING, one, None, False),
                         ("layers", 2, f.TYPE_MESSAGE, many, "V1LayerParameter", False),
                         ("layer", 100, f.TYPE_MESSAGE, many, "LayerParameter", False)],
    }
    proto = descriptor_pb2.FileDescriptorProto(name="caffe_standin.proto", package="caffe", syntax="proto2")
    for name, fields in messages.items():
        message = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name, packed in fields:
            field = message.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".caffe.{type_name}"
            if packed:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"caffe.{name}")) for name in messages}


def caffemodel(layers: dict[str, list[np.ndarray]], v1: bool = False) -> bytes:
    """A .caffemodel holding `layers` (name -> blobs): LayerParameter with BlobShape, or (v1) the deprecated
    V1LayerParameter with the legacy 4-D num/channels/height/width, as pre-2015 Caffe wrote them."""
    classes = _caffe_classes()
    net = classes["NetParameter"](name="RankIQA_siamese_train_test")
    for name, blobs in layers.items():
        layer = net.layers.add(name=name, type=4) if v1 else net.layer.add(name=name, type="Convolution")
        for blob in blobs:
            proto = layer.blobs.add()
            if v1:
                dims = (1,) * (4 - blob.ndim) + blob.shape
                proto.num, proto.channels, proto.height, proto.width = dims
            else:
                proto.shape.dim.extend(blob.shape)
            proto.data.extend(blob.ravel().tolist())
    return net.SerializeToString()


def rankiqa_layers(widths=(4, 4, 8, 8, 8), hidden: int = 16, seed: int = RNG_SEED) -> dict[str, list[np.ndarray]]:
    """RankIQA's deploy layers (conv1_1 ... conv5_3, fc6, fc7, fc8_m) with random blobs in Caffe's shapes, at
    `widths` (VGG-16's are 64 ... 512 and 4096: a 528 MB file)."""
    rng = np.random.default_rng(seed)
    layers, c_in = {}, 3
    for stage, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3)):
        for i in range(1, n + 1):
            c_out = widths[stage - 1]
            weight = rng.normal(0, (2 / (9 * c_in)) ** 0.5, (c_out, c_in, 3, 3)).astype(np.float32)
            layers[f"conv{stage}_{i}"] = [weight, rng.normal(0, 0.01, c_out).astype(np.float32)]
            c_in = c_out
    for name, (c_out, fan_in) in (("fc6", (hidden, c_in * 49)), ("fc7", (hidden, hidden)), ("fc8_m", (1, hidden))):
        layers[name] = [rng.normal(0, (2 / fan_in) ** 0.5, (c_out, fan_in)).astype(np.float32),
                        rng.normal(0, 0.01, c_out).astype(np.float32)]
    return layers


def weights(root: Path, model_cfg: dict) -> dict[str, bytes]:
    """The downloadable weights, each in its upstream format; returns the manual ones (entry -> bytes)."""
    import open_clip

    torch.manual_seed(RNG_SEED)
    # open_clip_model.safetensors of timm/resnet50_clip.openai: open_clip keys, no BatchNorm num_batches_tracked
    clip = {k: v for k, v in open_clip.create_model("RN50-quickgelu").state_dict().items()
            if not k.endswith("num_batches_tracked")}
    path = root / "clip_rn50_openai" / "open_clip_model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_state_dict(path, clip)
    # torchvision state dicts, as download.pytorch.org serves them
    _write(root / "vgg19" / "vgg19-dcbb9e9d.pth", _torchvision("vgg19"))
    _write(root / "alexnet" / "alexnet-owt-7be5be79.pth", _torchvision("alexnet"))
    _write(root / "vgg16" / "vgg16-397923af.pth", _torchvision("vgg16"))
    _write(root / "efficientnet_b7" / "efficientnet_b7_lukemelas-c5b4e57e.pth", _torchvision("efficientnet_b7"))
    # LPIPS v0.1 alex (richzhang/PerceptualSimilarity): lin<i>.model.1.weight, 1 x C_i x 1 x 1 (model.0 is dropout)
    _write(root / "lpips_alex" / "LPIPS_v0.1_alex-df73285e.pth", _torch_bytes(
        {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) * 0.1 for i, c in enumerate((64, 192, 384, 256, 256))}))
    # DISTS (dingkeyan93/DISTS): alpha and beta of 1 x (3+64+128+256+512+512) x 1 x 1
    _write(root / "dists" / "DISTS_weights-f5e65c96.pth",
           _torch_bytes({k: torch.rand(1, 1475, 1, 1) * 0.1 for k in ("alpha", "beta")}))
    _write(root / "ilniqe" / "ILNIQE_templateModel.mat", ilniqe_template())
    # dipIQ's four .mat files as NTIA/NRMetricFramework's reports/ holds them
    for role, data in dipiq_files().items():
        _write(root / f"dipiq_{role}" / DIPIQ_FILES[role], data)
    # OpenAI's RN50.pt is a TorchScript archive that pyiqa checks against the sha256 in its URL, which no stand-in
    # can match: a small TorchScript archive stands in, and CLIP-IQA must come out n/a with that reason.
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), buf)
    _write(root / "clip_rn50_openai_jit" / "RN50.pt", buf.getvalue())
    # pyiqa's QualiCLIP.pth: the prompts' text features beside CLIP keys (qualiclip_arch reads prompts_features)
    _write(root / "qualiclip" / "QualiCLIP.pth", _torch_bytes({"prompts_features": torch.rand(14, 1024)}))
    # Generators in BasicSR layout: {'params_ema': ...} for RealESRGAN_x4plus and RealESRNet_x4plus, {'params': ...}
    # for the official ESRGAN (BasicSR's inference_esrgan.py reads ['params']), BasicSR's PSNR model and SwinIR-M x4
    rrdb = lambda: RRDBNet(**model_cfg["rrdbnet"]).state_dict()  # noqa: E731
    _write(root / "esrgan_rrdb_esrgan_x4" / "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
           _torch_bytes({"params": rrdb()}))
    _write(root / "realesrgan_x4plus" / "RealESRGAN_x4plus.pth", _torch_bytes({"params_ema": rrdb()}))
    _write(root / "realesrnet_x4plus" / "RealESRNet_x4plus.pth", _torch_bytes({"params_ema": rrdb()}))
    _write(root / "swinir_m_x4" / "001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth",
           _torch_bytes({"params": SwinIR(**model_cfg["swinir"]).state_dict()}))
    # KAIR's BSRGAN.pth: a bare state dict with ESRGAN's key names (cszn/BSRGAN main_test_bsrgan.py loads it as is)
    _write(root / "bsrgan_x4" / "BSRGAN.pth", _torch_bytes(basicsr_to_esrgan(rrdb())))
    # RealSwinIR-M x4 (SwinIR-M with the nearest+conv upsampler) under 'params_ema', main_test_swinir.py's real_sr key
    _write(root / "realswinir_m_x4" / "003_realSR_BSRGAN_DFO_s64w8_SwinIR-M_x4_GAN.pth",
           _torch_bytes({"params_ema": SwinIR(**model_cfg["swinir"], upsampler="nearest+conv").state_dict()}))
    # By hand (Google Drive): NAFNet-GoPro-width32 ({'params': ...}, basicsr/models/base_model.py save_network); LDL's
    # and DualFormer's RRDBNets as their BasicSR trainers save them with EMA on ({'params': ..., 'params_ema': ...}:
    # basicsr/models/srgan_model.py save, inherited by LDL's models, and DualFormer's srgan_spec_model.py save)
    # RankSRGAN's mmsr_RankSRGAN_NIQE.pth (XPixelGroup/RankSRGAN codes/models/base_model.py save_network: the bare
    # state dict), WGSR's WGSR_2lvl_G.pth (the old RRDB_Net's bare state dict, codes/models/base_model.py)
    # SFTGAN's SFTGAN_torch.pth and segmentation_OST_bic.pth (bare state dicts, test_sftgan.py and
    # test_segmentation.py load them strictly): the first full size, the second narrower and shallower (the layout
    # is upstream's; the full network would hold 52M parameters)
    seg = _torch_converted(UpstreamOutdoorSceneSeg(div=16, blocks=(1, 1, 1, 1)))
    # ContentSep's auth_ft_cd.pth (authentic_finetuning.py saves the nn.Sequential of resnet50's children but fc)
    # and pristine_patches_096_0.75_0.80.hdf5 (evaluate_model.py's create_dataset('data'), N x 3 x 96 x 96 float32)
    pristine = io.BytesIO()
    with h5py.File(pristine, "w") as f:
        f.create_dataset("data", data=np.random.default_rng(RNG_SEED).random((8, 3, 96, 96), dtype=np.float32))
    return {"ranksrgan_niqe_x4": _torch_bytes(SRResNet().state_dict()),  # its test options: nf 64, nb 16
            "sftgan_x4": _torch_bytes(UpstreamSFTNetTorch().state_dict()), "sftgan_seg_ost": _torch_bytes(seg),
            "contentsep_auth_ft_cd": _torch_bytes(torch.nn.Sequential(*list(resnet50().children())[:-1]).state_dict()),
            "contentsep_pristine": pristine.getvalue(),
            # MDFS's MDFS_weights.pth: one M x 544 tensor of pristine window features (test.py's torch.load)
            "mdfs_pristine": _torch_bytes(torch.rand(600, 544, generator=torch.Generator().manual_seed(RNG_SEED))),
            # RecycleD's critics ({"epoch", "state"}, models/access.py save_model; key names checked against
            # upstream's in tests/test_recycled.py) and BASNet's / U^2-Net's bare state dicts
            **{f"recycled_{kind}_{domain}": _torch_bytes({"epoch": epoch, "state": net().state_dict()})
               for kind, net in (("imagegan", VggDiscriminator), ("patchgan", PatchVggDiscriminator))
               for domain, epoch in (("sr", 200), ("auth", 2000))},
            "recycled_basnet": _torch_bytes(BASNet().state_dict()),
            "recycled_u2net": _torch_bytes(U2NET().state_dict()),
            **_dualformer_critics(),
            # RankIQA's Rank_tid2013.caffemodel: its layers, narrower than VGG-16's (the full file is 528 MB)
            "rankiqa_rank_tid2013": caffemodel(rankiqa_layers()),
            "wgsr_2lvl_x4": _torch_bytes(OldRRDBNet(**model_cfg["rrdbnet"]).state_dict()),
            "spsr_x4": _torch_bytes(UpstreamSPSRNet(**model_cfg["rrdbnet"]).state_dict()),  # and SPSR's spsr.pth
            "basicsr_esrgan_psnr_x4": _torch_bytes({"params": rrdb()}),
            "nafnet_gopro_width32": _torch_bytes({"params": NAFNet(**model_cfg["nafnet"]).state_dict()}),
            **{name: _torch_bytes({"params": rrdb(), "params_ema": rrdb()})
               for name in ("ldl_rrdb_df2k_x4", "ldl_realesrgan_x4", "dualformer_esrgan_x4")}}

