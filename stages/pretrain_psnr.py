"""Stage `pretrain_psnr@<backbone>`: the fidelity-oriented generator (L1), RRDBNet or SwinIR, or a public PSNR
checkpoint verified and converted."""
import sys

from pipeline.checkpoint import CheckpointError
from pipeline.params import for_profile, stage_params
from pipeline.runs import BACKBONES, for_backbone, run_pretrain
from pipeline.trainer import relaunch_under_torchrun

PARAMS = ("profile", "seed", "model", "pretrain_psnr")


def main(backbone: str) -> int:
    if backbone not in BACKBONES:
        raise SystemExit(f"unknown backbone {backbone!r}; expected one of {tuple(BACKBONES)}")
    params = stage_params(f"pretrain_psnr@{backbone}", PARAMS)
    profile = params["profile"]
    cfg = for_backbone(for_profile(params["pretrain_psnr"], profile), backbone)
    relaunch_under_torchrun(cfg["gpus"])
    try:
        print("wrote", run_pretrain(cfg, for_profile(params["model"], profile), params["seed"], backbone))
    except CheckpointError as e:  # a corrupted or unreadable checkpoint or weights file, named in the message
        raise SystemExit(f"pretrain_psnr@{backbone}: {e}") from None
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
