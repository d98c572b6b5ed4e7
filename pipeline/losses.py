"""The losses of SFD, Eq. 1-7, one function each, named after the paper's symbols.

The adversarial losses are printed as log-likelihoods: the discriminators (Feat-D, and the LPP for TG-D) push HR
towards 1 and SR towards 0, the generator pushes SR towards 1. We write them as binary cross-entropies to
minimise, and the generator's term log(1 - D(SR)) in its non-saturating form -log D(SR) (BasicSR's "vanilla" GAN
loss, as in SeD); the HR terms of Eq. 2 and 6 carry no gradient for the generator and are left out. The ESRGAN
baseline's image discriminator is not SFD's: it has ESRGAN's relativistic average GAN (loss_d_ragan, loss_g_ragan).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.archs.clip_encoder import CLIPEncoder, CLIPFeatures

VGG_LAYER_WEIGHTS = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
PROB_EPS = 1e-6  # TG-D's probabilities are clamped to [eps, 1 - eps] before the log


def loss_d_fea(logits_hr: torch.Tensor, logits_sr: torch.Tensor) -> torch.Tensor:
    """Eq. 1, Feat-D's loss: BCE-with-logits of the HR score map against 1 plus the SR map's against 0.

    The caller detaches SR (the generator gets no gradient from D's step).
    """
    return (F.binary_cross_entropy_with_logits(logits_hr, torch.ones_like(logits_hr))
            + F.binary_cross_entropy_with_logits(logits_sr, torch.zeros_like(logits_sr)))


def loss_g_fea(logits_sr: torch.Tensor) -> torch.Tensor:
    """Eq. 2, the generator's Feat-D loss, non-saturating: -log D(F_sm1, F_sm2, F_sm3), averaged over pixels."""
    return F.binary_cross_entropy_with_logits(logits_sr, torch.ones_like(logits_sr))



def loss_d_ragan(logits_hr: torch.Tensor, logits_sr: torch.Tensor) -> torch.Tensor:
    """ESRGAN's RaGAN for the image discriminator (not an SFD equation; BasicSR's ESRGANModel):
    (BCE(D(hr) - mean D(sr), 1) + BCE(D(sr) - mean D(hr), 0)) / 2, each mean a constant.

    The caller detaches SR's input (the generator gets no gradient from D's step)."""
    hr, sr = logits_hr.float(), logits_sr.float()  # fp32: bf16 would round the relative logits to 8 bits
    real = hr - sr.detach().mean()
    fake = sr - hr.detach().mean()
    return 0.5 * (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                  + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def loss_g_ragan(logits_hr: torch.Tensor, logits_sr: torch.Tensor) -> torch.Tensor:
    """ESRGAN's RaGAN for the generator (not an SFD equation): the image discriminator's labels swapped,
    (BCE(D(hr) - mean D(sr), 0) + BCE(D(sr) - mean D(hr), 1)) / 2, with D(hr) a constant."""
    hr, sr = logits_hr.detach().float(), logits_sr.float()
    real = hr - sr.mean()
    fake = sr - hr.mean()
    return 0.5 * (F.binary_cross_entropy_with_logits(real, torch.zeros_like(real))
                  + F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)))

def prompt_pair_score(f_img: torch.Tensor, f_pos: torch.Tensor, f_neg: torch.Tensor,
                      logit_scale: float = 100.0) -> torch.Tensor:
    """Eq. 3-4: s = exp(k s+) / (exp(k s+) + exp(k s-)) with s+/- the cosines of F_out with F_t+/F_t-.

    `f_img`: N x D; `f_pos`, `f_neg`: D (or N x D). Returns N probabilities. k = `logit_scale`: 100 (CLIP's logit
    scale, as CLIP-IQA computes it) or 1 (Eq. 4 as printed).
    """
    f_img, f_pos, f_neg = f_img.float(), f_pos.float(), f_neg.float()  # x100 logits need fp32 cosines under bf16
    s_pos = F.cosine_similarity(f_img, f_pos.expand_as(f_img), dim=-1)
    s_neg = F.cosine_similarity(f_img, f_neg.expand_as(f_img), dim=-1)
    return torch.softmax(logit_scale * torch.stack([s_pos, s_neg], dim=-1), dim=-1)[..., 0]


def loss_d_tg(s_hr: torch.Tensor, s_sr: torch.Tensor, eps: float = PROB_EPS) -> torch.Tensor:
    """Eq. 5, TG-D's loss (trains the LPP): BCE of s_hr against 1 plus s_sr against 0, on clamped probabilities.

    Written as -log s_hr - log(1 - s_sr): F.binary_cross_entropy refuses to run under CUDA autocast.
    """
    s_hr, s_sr = s_hr.float().clamp(eps, 1 - eps), s_sr.float().clamp(eps, 1 - eps)
    return -(s_hr.log().mean() + torch.log1p(-s_sr).mean())


def loss_g_tg(s_sr: torch.Tensor, eps: float = PROB_EPS) -> torch.Tensor:
    """Eq. 6, the generator's TG-D loss, non-saturating: -log s_sr (clamped)."""
    return -s_sr.float().clamp(eps, 1 - eps).log().mean()


def loss_percep(vgg: nn.Module, sr: torch.Tensor, hr: torch.Tensor,
                layer_weights: Mapping[str, float] = VGG_LAYER_WEIGHTS) -> torch.Tensor:
    """The perceptual term of Eq. 7: sum over VGG19 layers of weight * L1(phi(I_sr), phi(I_hr)) (mean L1)."""
    feats_sr = vgg(sr)
    with torch.no_grad():
        feats_hr = vgg(hr)
    return sum(w * F.l1_loss(feats_sr[name], feats_hr[name]) for name, w in layer_weights.items())


def loss_total(sr: torch.Tensor, hr: torch.Tensor, lambdas: Mapping[str, float], *, vgg: nn.Module | None = None,
               encoder: CLIPEncoder | None = None, featd: nn.Module | None = None,
               text_features: tuple[torch.Tensor, torch.Tensor] | None = None, prompt_logit_scale: float = 100.0,
               sr_feats: CLIPFeatures | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 7: lambda1 L1 + lambda2 L_percep + lambda3 L_G_fea + lambda4 L_G_tg, the generator's loss.

    lambdas: {"lambda1": .., "lambda2": .., "lambda3": .., "lambda4": ..}. A term whose weight is 0 is not
    computed at all: no VGG forward without lambda2, no Feat-D without lambda3, no CLIP forward without lambda3 and
    lambda4. `hr` is the L1/perceptual target (Real-ESRGAN's sharpened GT for real-world SR); the adversarial terms
    need no HR. `sr_feats`: CLIP features of `sr` computed by the caller with gradients (so the same pass can serve
    the discriminators' step, detached); without them the encoder runs on `sr` here. `text_features`: the LPP's
    (F_t+, F_t-), detached here so Eq. 6 never trains the prompts. Feat-D's parameters get gradients unless the
    caller freezes them for this step.

    Returns the total and the unweighted parts (detached) for logging: keys "l1", "percep", "g_fea", "g_tg".
    """
    weights = {k: float(lambdas[f"lambda{i}"]) for i, k in enumerate(("l1", "percep", "g_fea", "g_tg"), start=1)}
    if not any(weights.values()):
        raise ValueError("all of lambda1..lambda4 are 0: the generator would get no loss")
    parts = {}
    if weights["l1"]:
        parts["l1"] = F.l1_loss(sr, hr)
    if weights["percep"]:
        if vgg is None:
            raise ValueError("lambda2 > 0 needs the VGG19 feature extractor")
        parts["percep"] = loss_percep(vgg, sr, hr)
    if weights["g_fea"] or weights["g_tg"]:
        if sr_feats is None:
            if encoder is None:
                raise ValueError("lambda3 or lambda4 > 0 needs the CLIP encoder or precomputed SR features")
            sr_feats = encoder(sr, with_output=bool(weights["g_tg"]))
        if weights["g_fea"]:
            if featd is None:
                raise ValueError("lambda3 > 0 needs Feat-D")
            parts["g_fea"] = loss_g_fea(featd(sr_feats.m1, sr_feats.m2, sr_feats.m3))
        if weights["g_tg"]:
            if text_features is None or sr_feats.out is None:
                raise ValueError("lambda4 > 0 needs the LPP text features and F_out of SR")
            f_pos, f_neg = (t.detach() for t in text_features)
            parts["g_tg"] = loss_g_tg(prompt_pair_score(sr_feats.out, f_pos, f_neg, prompt_logit_scale))
    total = sum(weights[k] * v for k, v in parts.items())
    return total, {k: v.detach() for k, v in parts.items()}


def psnr_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """NAFNet's training loss (megvii-research/NAFNet `basicsr/models/losses/losses.py::PSNRLoss` as its GoPro
    configs use it: loss_weight 1, reduction mean, toY false): 10 / ln 10 * mean over the batch of
    ln(MSE_i + 1e-8), MSE_i over all channels and pixels of image i. With images in [0, 1] that is minus the mean
    PSNR in dB (peak 1) of the batch's images, each taken before averaging, up to the 1e-8."""
    mse = (pred - target).pow(2).flatten(1).mean(1)  # B
    return 10 / math.log(10) * torch.log(mse + 1e-8).mean()
