"""Stage `train_gan@<run>`: GAN training with Eq. 7 from a PSNR model. Runs: the RRDBNet variants of Fig. 8
(`esrgan`, `featd`, `tgd`, `sfd`) and Table 1's SwinIR models (`swinir_esrgan` = SwinIR + L_GAN, `swinir_sfd` =
SwinIR + Ours)."""
import sys

from pipeline.checkpoint import CheckpointError
from pipeline.params import for_profile, stage_params
from pipeline.runs import for_backbone, run_gan
from pipeline.train_step import ADVERSARIAL_WEIGHTS
from pipeline.trainer import relaunch_under_torchrun

# run -> (backbone, variant)
RUNS = {"esrgan": ("rrdbnet", "esrgan"), "featd": ("rrdbnet", "featd"), "tgd": ("rrdbnet", "tgd"),
        "sfd": ("rrdbnet", "sfd"), "swinir_esrgan": ("swinir", "esrgan"), "swinir_sfd": ("swinir", "sfd")}
# The loss weights each run's Eq. 7 uses (dvc.yaml declares the same per run).
PARAMS = {run: ("profile", "seed", "model", "train_gan", "lambda1", "lambda2", *ADVERSARIAL_WEIGHTS[variant])
          for run, (_, variant) in RUNS.items()}


def main(run: str) -> int:
    if run not in RUNS:
        raise SystemExit(f"unknown run {run!r}; expected one of {tuple(RUNS)}")
    backbone, variant = RUNS[run]
    params = stage_params(f"train_gan@{run}", PARAMS[run])
    profile = params["profile"]
    cfg = for_backbone(for_profile(params["train_gan"], profile), backbone)
    relaunch_under_torchrun(cfg["gpus"])
    lambdas = {k: params.get(k, 0.0) for k in ("lambda1", "lambda2", "lambda3", "lambda4")}
    try:
        out = run_gan(variant, cfg, for_profile(params["model"], profile), lambdas, params["seed"], name=run,
                      backbone=backbone)
    except CheckpointError as e:  # a corrupted or unreadable checkpoint or weights file, named in the message
        raise SystemExit(f"train_gan@{run}: {e}") from None
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
