"""The choices the paper does not specify, each with a one-line reason and its value in params.yaml.

The paper gives the losses' form, the data, Adam and lr 1e-4; everything else is ours. A choice that is a param
is named by its dotted key, a profile's own key without its `quick.`/`paper.` prefix (`model.featd.widths` is read
from `<profile>.model.featd.widths`); one that is fixed in code names the module instead.
"""
from __future__ import annotations

from pipeline.params import ParamError, lookup

# (param key or None, where it lives when fixed in code, why)
CHOICES: tuple[tuple[str | None, str, str], ...] = (
    ("lambda1", "", "Eq. 7 L1 weight; the paper gives no loss weights (1, as Real-ESRGAN)"),
    ("lambda2", "", "Eq. 7 VGG19 perceptual weight (1, as Real-ESRGAN)"),
    ("lambda3", "", "Eq. 7 Feat-D adversarial weight (0.1, Real-ESRGAN's GAN weight)"),
    ("lambda4", "", "Eq. 7 TG-D adversarial weight (0.1, the same as Feat-D's)"),
    ("alpha1", "", "Eq. 9 weight of the fixed-prompt score s_o; equal weights, the paper gives none"),
    ("alpha2", "", "Eq. 9 weight of the learnable-prompt score s_lp"),
    ("prompt_logit_scale", "", ("Eq. 3-4 follow CLIP-IQA, which scales the cosines by CLIP's 100 before the "
                                      "softmax; 1 is Eq. 4 as printed")),
    ("model.featd.widths", "", ("Feat-D's layers are not given: a top-down decoder over F_m3..F_m1 with three "
                                "upsamplings (Fig. 9 reads the 3rd), spectral-normalised convs")),
    ("model.lpp.n_ctx", "", "learnable context tokens per prompt (CoOp's 16); the paper gives no count"),
    (None, "pipeline/archs/lpp.py", ("the LPP context starts from the token embeddings of a sentence ending in "
                                     "'Good photo.' / 'Bad photo.', not CoOp's random filler")),
    (None, "pipeline/losses.py", ("the generator's GAN terms of Eq. 2 and 6 use the non-saturating -log D(SR) "
                                  "instead of the printed log(1 - D(SR)), as BasicSR and SeD do")),
    ("model.clip.position", "", ("training: CLIP's attention pool adds no position embedding to F_out (TG-D's "
                                 "score), as CLIP-IQA computes the score the paper says TG-D follows (pyiqa "
                                 "clipiqa_arch, pos_embedding False); interpolate resizes CLIP's 7x7 table")),
    ("eval_iqa.clip_position", "", ("scoring (SFD-IQA's s_o and s_lp): no position embedding at any image size, as "
                                    "CLIP-IQA scores; interpolate would resize the 7x7 table to the image's grid "
                                    "(32 x 24 for KonIQ's 1024 x 768)")),
    ("model.clip.weights", "", ("quick profile: random CLIP weights (no download offline), so its numbers are "
                                "not the paper's")),
    ("model.clip.arch", "", "quick profile: a tiny CLIP of the same classes so training fits a 2-core CPU"),
    ("model.vgg19.weights", "", "quick profile: random VGG19 for the perceptual loss"),
    ("model.rrdbnet", "", "quick profile: a small RRDBNet; paper profile: ESRGAN's 64/23/32"),
    ("model.swinir", "", "quick profile: a tiny SwinIR; paper profile: SwinIR-M (the public x4 checkpoint's sizes)"),
    ("model.image_d.num_feat", "", "width of the ESRGAN baseline's VGG-style image discriminator (Fig. 8)"),
    ("image_gan_weight", "", ("the ESRGAN baseline's adversarial weight on ESRGAN's relativistic GAN: 0.1 as "
                              "Feat-D's and TG-D's, so that Fig. 8's four runs (and the SwinIR pair) share L1, "
                              "perceptual loss and schedule and differ only in their discriminators; BasicSR's "
                              "ESRGAN uses 0.005 beside an L1 weight of 0.01")),
    ("eval_sr.ssim", "", ("SSIM's Y channel: BasicSR's floating-point Y (its calculate_ssim, which the paper's "
                          "code base uses) rather than MATLAB's rounded Y; the two differ in the third decimal")),
    ("optim.betas", "", "Adam betas; the paper gives only Adam and lr 1e-4 (BasicSR's (0.9, 0.99))"),
    ("train_gan.rrdbnet.iters", "", "GAN training length; not in the paper (BasicSR's ESRGAN: 400k)"),
    ("train_gan.rrdbnet.batch", "", "batch size; not in the paper"),
    ("train_gan.rrdbnet.patch", "", "HR patch size; not in the paper"),
    ("train_gan.rrdbnet.milestones", "", "lr halving steps; not in the paper (BasicSR's ESRGAN schedule)"),
    ("pretrain_psnr.rrdbnet.init_from", "", ("the fidelity-oriented start: BasicSR's public PSNR RRDB instead of "
                                     "training stage 1 ourselves")),
    ("pretrain_psnr.swinir.init_from", "", ("SwinIR's fidelity-oriented start: the public SwinIR-M x4; the paper "
                                            "does not say how its SwinIR GAN models were initialised")),
    ("pretrain_real.init_from", "", ("the real-world run starts from RealESRNet, Real-ESRGAN's fidelity model (L1 to "
                                      "the sharpened GT on the same degradation), as the paper starts from \"the "
                                      "pre-trained fidelity-oriented model\": the public RealESRNet_x4plus, or "
                                      "trained from the bicubic PSNR run (Real-ESRGAN: from ESRGAN's weights)")),
    (None, "pipeline/train_step.py (Step.real_pair)", (
        "RealESRNet's L1 target is cut from the degradation crop sharpened once (gt_usm true); the real-world SFD "
        "run's L1 and perceptual target is its HR patch sharpened after the pair pool, and its discriminators see "
        "the plain patch, as Real-ESRGAN's realesrgan_model.py does (l1/percep_gt_usm true, gan_gt_usm false)")),
    ("train_real.milestones", "", ("the real-world model trains at a constant lr with horizontal flips only, as "
                                   "Real-ESRGAN x4plus does (its one milestone is its last iteration; use_rot "
                                   "false)")),
    ("train_real.degrade_size", "", "HR crop the real-world degradation runs on (Real-ESRGAN: 400)"),
    ("degradation.pool_size", "", "training-pair queue that mixes degradations across batches (Real-ESRGAN: 180)"),
    ("synthesize.real_sets", "", ("RealD2K is DIV2K valid degraded by the training pipeline with our seed; the "
                                  "paper's degraded images are not published")),
    ("synthesize.real_pairs_lr_crop", "", ("RealSR and DRealSR are \"center-cropped following [62, 70]\": we read "
                                            "that as StableSR's and SeeSR's LR 128 / HR 512 centre crops")),
    ("tsne.perplexity", "", "t-SNE perplexity; the paper gives no t-SNE settings"),
    ("tsne.categories", "", ("Fig. 9's bear, cat and dog were sorted by hand from OST's one animal folder: "
                             "`animal` stands in for them (paper: bear, building, cat, dog, grass, mountain, sky, "
                             "water)")),
    (None, "pipeline/tsne.py", "Fig. 9's features are global-average-pooled per image or crop into one point"),
    (None, "data/registry.yaml (Ma)", ("Ma's scores per image come from YunanZhu/RecycleD's list (third-party): the "
                                       "authors' mean40 matrix names no images")),
    (None, "pipeline/data/iqa_sets.py", ("PIPAL: the rows of pyiqa's official_split `train` (the labelled training "
                                         "part), as pyiqa's own PIPAL config selects")),
    (None, "pipeline/data/datasets.py", ("training images smaller than the crop are padded (reflect-101, bottom and "
                                         "right) as Real-ESRGAN pads OST's, instead of being dropped")),
    ("model.nafnet.width", "", ("Table 5's NAFNet is width 32: the paper's NAFNet on GoPro, 32.87 dB, is the "
                                "published PSNR of NAFNet-GoPro-width32 (width64's is 33.71)")),
    ("restore_psnr.deblur.init_from", "", "GoPro's fidelity model: the public NAFNet-GoPro-width32"),
    ("restore_psnr.derain.lr", "", ("Rain100L has no public NAFNet: ours trains with NAFNet's PSNR loss, lr, length "
                                    "and batch (GoPro width32: 200k iterations at 32), on our Adam and lr steps "
                                    "instead of AdamW, cosine decay and gradient clipping at 0.01")),
    ("restore_gan.deblur.iters", "", ("Table 5's + VD and + Ours runs: the paper gives no schedule; ours is the SR "
                                      "GAN runs' lr 1e-4 with Eq. 7's weights, from the fidelity model")),
    (None, "params.yaml runs.restore_gan", ("\"+ VD\" (a vanilla discriminator, unspecified) is the SR baseline's "
                                             "VGG-style image discriminator with ESRGAN's relativistic GAN")),
    (None, "pipeline/archs/nafnet.py", ("NAFNet's channel attention pools over the whole image at test time; "
                                        "NAFNet's own GoPro numbers use NAFNetLocal (pooling over a local 384 px "
                                        "window), so ours may differ slightly")),
    (None, "data/registry.yaml (Rain100L)", ("Rain100L is PReNet's copy of the original 200 training / 100 test "
                                             "pairs; which copy the paper used is not said")),
    ("synthesize.restore_sets", "", ("quick profile: Table 5's sets are the bundled images under synthetic rain "
                                     "streaks and motion blur (seeded), not Rain100L or GoPro")),
    ("seed", "", "one seed for data synthesis, initialisation and sampling"),
)


def resolve(params: dict, key: str, profile: str):
    """The value of a choice's dotted key: a key of both profiles, else `profile`'s own."""
    return lookup(params, key if key.split(".")[0] in params else f"{profile}.{key}")


def choices_table(params: dict, profile: str) -> list[dict]:
    """[{key, value, why}] for the report; `value` says 'missing from params.yaml' rather than failing."""
    rows = []
    for key, where, why in CHOICES:
        if key is None:
            rows.append({"key": "(in code)", "value": where, "why": why})
            continue
        try:
            value = resolve(params, key, profile)
        except ParamError:
            value = "missing from params.yaml"
        rows.append({"key": key, "value": value, "why": why})
    return rows
