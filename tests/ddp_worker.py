"""Run by tests/test_training.py under torchrun (2 processes, gloo): train SFD a few steps, save each rank's weights."""
import sys
from pathlib import Path

import torch

from pipeline.data.datasets import PairedPatches
from pipeline.trainer import distributed, train
from test_training import CFG, sfd_step, weights

if __name__ == "__main__":
    train_set, out = Path(sys.argv[1]), Path(sys.argv[2])
    rank, world = distributed()
    assert world == 2
    step = sfd_step()
    train(step, PairedPatches([train_set], 32, lr_dir="LR_x4_sub"), {**CFG, "iters": 3}, out / "run")
    torch.save(weights(step), out / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()
