"""Stage `train_gan@<variant>`: GAN training with Eq. 7 from the PSNR model (esrgan, featd, tgd or sfd)."""
import sys

from pipeline.params import for_profile, stage_params
from pipeline.trainer import relaunch_under_torchrun
from pipeline.runs import run_gan
from pipeline.train_step import VARIANTS

# The loss weights each variant's Eq. 7 uses (dvc.yaml declares the same per variant).
VARIANT_WEIGHTS = {"esrgan": ("lambda1", "lambda2"), "featd": ("lambda1", "lambda2", "lambda3"),
                   "tgd": ("lambda1", "lambda2", "lambda4"), "sfd": ("lambda1", "lambda2", "lambda3", "lambda4")}
PARAMS = {variant: ("profile", "seed", "model", "train_gan", *weights) for variant, weights in VARIANT_WEIGHTS.items()}


def main(variant: str) -> int:
    if variant not in VARIANTS:
        raise SystemExit(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    params = stage_params(f"train_gan@{variant}", PARAMS[variant])
    profile = params["profile"]
    relaunch_under_torchrun(params["train_gan"]["gpus"])
    lambdas = {k: params.get(k, 0.0) for k in ("lambda1", "lambda2", "lambda3", "lambda4")}
    out = run_gan(variant, for_profile(params["train_gan"], profile), for_profile(params["model"], profile), lambdas,
                  params["seed"], name=variant)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
