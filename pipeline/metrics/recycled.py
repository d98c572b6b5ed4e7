"""RecycleD (Zhu et al., ACM MM 2021, "Recycling Discriminator: Towards Opinion-Unaware Image Quality Assessment Using
Wasserstein GAN"): the critic of a x4 SR WGAN (shell/train_SR-WGAN.sh, on DIV2K) scores an image; higher is better
(train_srgan.py trains it to score HR images above SR ones, and test_iqa.py correlates its raw output with MOS).

As YunanZhu/RecycleD's test_iqa.py, models/optim_predictor.py and models/archs/weight_map_producer.py (commit
8db90dc) compute it, with the configuration of the shell script that SETS names for each set:
- the image (test_set.py's IQATestSet: PIL RGB, to_tensor, whole image, float32) goes to the ImageGAN critic
  ("VGG", fusion "Naive": its output is the score) or the PatchGAN critic ("PatchVGG": a score per 140 px window
  at stride 16, pipeline.archs.recycled_vgg);
- for the PatchGAN critic, SodResFusionTest_WeightedAveragePredictor weights the score matrix: a weight map
  coef_sod * SOD + coef_res * residual (both H x W) becomes a matrix by map_to_mat, coef_avg is added, and the
  score is mean(weights * scores) (norm "mean") or sum(weights * scores) with the weights scaled to sum 1
  ("set_sum_1");
- SOD (SodBASNet, SodU2Net): the image resized bilinearly to 256 x 256 (BASNet) or 320 x 320 (U^2-Net),
  ImageNet-normalised, the detector's first output resized back to H x W, min-max normalised over the tensor;
- residual (HighFrequencyResidual, scale 4): BT.601 gray, |gray - up(down(gray))| with bicubic resizing
  (align_corners=False). Upstream passes scale_factor=1/4, which under its PyTorch 1.2 (the shell scripts'
  py36_torch12) resized to floor(H / 4) x floor(W / 4) at the ratio of the sizes; PyTorch >= 1.6 would use 1/4
  itself, another result where H or W is not a multiple of 4. Here the sizes are given, as 1.2 computed them;
- map_to_mat (MAP_TO_MAT_INFO["PatchVGG"] = (16, -62, 77, -62, 77)): cell (i, j) is the mean of the map's rows
  16 i - 62 ... 16 i + 77 and columns 16 j - 62 ... 16 j + 77, clipped to the map (upstream's double loop; here an
  integral image in float64, equal to it to float32 precision).
Upstream's LIVE-itW script runs batches of 8 images, over which SodBASNet's min-max spans, so there an image's SOD
map was scaled with its batch-mates'; here each image is scored alone (as upstream's Ma script, batch 1, does).
Upstream's LIVE-itW list (CLIVE_all_pair_resize2img.txt) scores resized copies of 1024.JPG and 1113.JPG; here
every method scores the same images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
from torch import nn

from pipeline.archs.basnet import BASNet
from pipeline.archs.recycled_vgg import PatchVggDiscriminator, VggDiscriminator
from pipeline.archs.u2net import U2NET
from pipeline.checkpoint import CheckpointError, load_state_dict
from pipeline.metrics.pyiqa_metrics import load_weights, require_file

STRIDE, LOW, HIGH = 16, -62, 77  # MAP_TO_MAT_INFO["PatchVGG"]: the 140 px receptive field of cell i
SOD_SIZE = {"basnet": 256, "u2net": 320}  # SodBASNet's and SodU2Net's input sizes
SOD_NETS = {"basnet": BASNet, "u2net": U2NET}
RESIDUAL_SCALE = 4  # define_predictor's HighFrequencyResidual(scale_factor=4)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# load_recycled's argument -> (define_discriminator's choice, the file's name in RecycleD's Google Drive folder)
CRITICS = {"image_gan_sr": ("VGG", "RecycleD_SR-WGAN_Discriminator_ImageGAN_epoch0200_ForSuperResImg.pth"),
           "image_gan_auth": ("VGG", "RecycleD_SR-WGAN_Discriminator_ImageGAN_epoch2000_ForAuthDistImg.pth"),
           "patch_gan_sr": ("PatchVGG", "RecycleD_SR-WGAN_Discriminator_PatchGAN_epoch0200_ForSuperResImg.pth"),
           "patch_gan_auth": ("PatchVGG", "RecycleD_SR-WGAN_Discriminator_PatchGAN_epoch2000_ForAuthDistImg.pth")}
ARCHS = {"VGG": VggDiscriminator, "PatchVGG": PatchVggDiscriminator}


@dataclass(frozen=True)
class SetConfig:
    """One shell/test_*.sh configuration: the critic (a CRITICS key), the SOD detector of the fusion (None:
    "Naive", the critic's output as it is) and the fusion's coefficients and norm."""
    critic: str
    sod: str | None = None
    coef_sod: float = 0.0
    coef_res: float = 0.0
    coef_avg: float = 0.0
    norm: str = "mean"


SETS = {
    # shell/test_ImageGAN_on_PIPAL.sh: D "VGG", ..._ImageGAN_epoch0200_ForSuperResImg.pth, fusion "Naive"; it scores
    # every SR image (PIPAL_train_AllSR_pair.txt), test_PatchGAN_on_PIPAL.sh only the DenoSR ones
    "PIPAL": SetConfig("image_gan_sr"),
    # shell/test_ImageGAN_on_KonIQ-10k.sh: D "VGG", ..._ImageGAN_epoch2000_ForAuthDistImg.pth, fusion "Naive"; it
    # scores the whole set (KonIQ-10k_all_pair.txt), as the SFD paper does; test_PatchGAN_on_KonIQ-10k.sh only
    # KonIQ-10k_valid_pair.txt
    "KonIQ-10k": SetConfig("image_gan_auth"),
    # shell/test_PatchGAN_on_MaDataset.sh: D "PatchVGG", ..._PatchGAN_epoch0200_ForSuperResImg.pth, fusion
    # "SOD U2Net + SR residual", coef_sod 0.286, coef_res 0.860, coef_avg 1.0, norm_type "mean"
    "Ma": SetConfig("patch_gan_sr", "u2net", 0.286, 0.860, 1.0, "mean"),
    # shell/test_PatchGAN_on_LIVE-itW.sh: D "PatchVGG", ..._PatchGAN_epoch2000_ForAuthDistImg.pth, fusion
    # "SOD BASNet + SR residual", coef_sod 5.0, coef_res 380.0, coef_avg 1.0, norm_type "set_sum_1"
    "LIVE-itW": SetConfig("patch_gan_auth", "basnet", 5.0, 380.0, 1.0, "set_sum_1"),
}


class UnknownSetError(ValueError):
    """An IQA set for which RecycleD has no configuration."""

    def __init__(self, set_name: str):
        super().__init__(f"RecycleD has no configuration for IQA set `{set_name}` (known: {', '.join(SETS)})")
        self.set_name = set_name


def set_config(set_name: str) -> SetConfig:
    if set_name not in SETS:
        raise UnknownSetError(set_name)
    return SETS[set_name]


def map_to_mat(weight_map: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 1, H, W) weight map -> (N, 1, h, w) = size: each cell the mean of its receptive-field window."""
    rows, cols = weight_map.shape[-2:]

    def window(n: int, extent: int) -> tuple[torch.Tensor, torch.Tensor]:  # [start, stop) of each cell's window
        centre = torch.arange(n, device=weight_map.device) * STRIDE
        return (centre + LOW).clamp(min=0), (centre + HIGH).clamp(max=extent - 1) + 1

    (r0, r1), (c0, c1) = window(size[0], rows), window(size[1], cols)
    # float64: a float32 running sum over a 1024 x 768 map loses the window sums' low digits
    integral = F.pad(weight_map.double().cumsum(-2).cumsum(-1), (1, 0, 1, 0))
    r0, r1 = r0[:, None], r1[:, None]
    sums = integral[..., r1, c1] - integral[..., r0, c1] - integral[..., r1, c0] + integral[..., r0, c0]
    return (sums / ((r1 - r0) * (c1 - c0))).to(weight_map.dtype)


class RecycleD(nn.Module):
    """forward(x, set_name): image (1, 3, H, W) RGB in [0, 1], H and W >= 16 -> 0-dim score with `set_name`'s SETS
    configuration."""

    def __init__(self, critics: dict[str, nn.Module], sod: dict[str, nn.Module]):
        super().__init__()
        self.critics = nn.ModuleDict(critics).eval()
        self.sod = nn.ModuleDict(sod).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def sod_map(self, x: torch.Tensor, detector: str) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 1, H, W) saliency, min-max normalised over the whole tensor."""
        side = SOD_SIZE[detector]
        y = (F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False) - self.mean) / self.std
        m = F.interpolate(self.sod[detector](y), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return (m - m.min()) / (m.max() - m.min())

    def sr_residual(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, 1, H, W) |gray - bicubic x4 down and up|."""
        gray = rgb_to_grayscale(x)  # BT.601
        h, w = x.shape[-2:]
        low = F.interpolate(gray, size=(h // RESIDUAL_SCALE, w // RESIDUAL_SCALE), mode="bicubic",
                            align_corners=False)
        return torch.abs(gray - F.interpolate(low, size=(h, w), mode="bicubic", align_corners=False))

    @torch.no_grad()
    def forward(self, x: torch.Tensor, set_name: str) -> torch.Tensor:
        config = set_config(set_name)
        if x.ndim != 4 or x.shape[0] != 1:  # the SOD map's min-max spans the whole tensor: one image at a time
            raise ValueError(f"RecycleD scores one (1, 3, H, W) image, got {tuple(x.shape)}")
        x = x.to(self.mean.device, torch.float32)
        scores = self.critics[config.critic](x)  # (1, 1), or (1, 1, h, w) for a PatchGAN critic
        if config.sod is None:
            return scores.mean()  # "Naive": the critic's output (a PatchGAN critic's matrix averaged, as its forward)
        weight_map = config.coef_sod * self.sod_map(x, config.sod) + config.coef_res * self.sr_residual(x)
        weights = map_to_mat(weight_map, scores.shape[-2:]) + config.coef_avg
        if config.norm == "mean":
            return (weights * scores).mean()
        return (weights / weights.sum() * scores).sum()  # "set_sum_1"


def critic_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """models/access.py's load_model: the `state` of an {"epoch", "state"} file, else the file as a bare state dict
    (upstream only prints the epoch)."""
    try:
        return load_state_dict(path, key="state")[0]
    except CheckpointError:
        return load_state_dict(path)[0]


def detector_state(path: str | os.PathLike, net: nn.Module) -> dict[str, torch.Tensor]:
    """basnet.pth or u2net.pth, a bare state dict. Both READMEs name PyTorch 0.4.0, whose batch norms kept no
    num_batches_tracked; torch's strict load (upstream's) fills in those missing from such files, as here (eval mode
    never reads them)."""
    counts = {k: v for k, v in net.state_dict().items() if k.endswith(".num_batches_tracked")}
    return {**counts, **load_state_dict(path)[0]}


def load_recycled(image_gan_sr: str | os.PathLike, image_gan_auth: str | os.PathLike,
                  patch_gan_sr: str | os.PathLike, patch_gan_auth: str | os.PathLike, basnet: str | os.PathLike,
                  u2net: str | os.PathLike, device="cpu") -> RecycleD:
    """RecycleD from the four RecycleD_SR-WGAN_Discriminator_*.pth files (CRITICS; models/access.py's layout,
    {"epoch", "state"} or a bare state dict), BASNet's basnet.pth and U-2-Net's u2net.pth; MetricUnavailable with
    the reason when one is missing or unusable."""
    paths = {"image_gan_sr": image_gan_sr, "image_gan_auth": image_gan_auth, "patch_gan_sr": patch_gan_sr,
             "patch_gan_auth": patch_gan_auth}
    for name, path in (*paths.items(), ("basnet", basnet), ("u2net", u2net)):
        require_file(path, f"by hand: registry entry recycled_{name.replace('_gan', 'gan')}")
    critics = {name: load_weights(ARCHS[CRITICS[name][0]](), path, critic_state) for name, path in paths.items()}
    sod = {}
    for name, path in (("basnet", basnet), ("u2net", u2net)):
        net = SOD_NETS[name]()
        sod[name] = load_weights(net, path, partial(detector_state, net=net))
    return RecycleD(critics, sod).to(device)
