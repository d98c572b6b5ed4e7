"""Stage `train_real`: the real-world SFD model; its Feat-D and LPP are the SFD-IQA model."""
import sys

from pipeline.checkpoint import CheckpointError
from pipeline.params import for_profile, stage_params
from pipeline.trainer import relaunch_under_torchrun
from pipeline.runs import run_gan

PARAMS = ("profile", "seed", "model", "train_real", "degradation", "lambda1", "lambda2", "lambda3", "lambda4")


def main() -> int:
    params = stage_params("train_real", PARAMS)
    profile = params["profile"]
    cfg = for_profile(params["train_real"], profile)
    relaunch_under_torchrun(cfg["gpus"])
    lambdas = {k: params[k] for k in ("lambda1", "lambda2", "lambda3", "lambda4")}
    try:
        out = run_gan("sfd", cfg, for_profile(params["model"], profile), lambdas, params["seed"], name="real",
                      degradation_cfg=params["degradation"])
    except CheckpointError as e:  # a corrupted or unreadable checkpoint or weights file, named in the message
        raise SystemExit(f"train_real: {e}") from None
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
