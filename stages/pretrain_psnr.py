"""Stage `pretrain_psnr`: the fidelity-oriented RRDBNet (L1), or a public PSNR checkpoint verified and converted."""
import sys

from pipeline.params import for_profile, stage_params
from pipeline.trainer import relaunch_under_torchrun
from pipeline.runs import run_pretrain

PARAMS = ("profile", "seed", "model", "pretrain_psnr")


def main() -> int:
    params = stage_params("pretrain_psnr", PARAMS)
    profile = params["profile"]
    relaunch_under_torchrun(params["pretrain_psnr"]["gpus"])
    print("wrote", run_pretrain(for_profile(params["pretrain_psnr"], profile), for_profile(params["model"], profile),
                                params["seed"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
