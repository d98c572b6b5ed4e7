"""Run by tests/test_training.py under torchrun (2 processes, gloo): train a few steps, save each rank's weights.

Arguments: TRAIN_SET OUT_DIR RUN STEP [STOP_AT]. STEP is `sfd` (classical pairs) or `real` (the real-world step with
its per-rank pair pool); with STOP_AT the run dies at that iteration, as a killed job does, and saves nothing.
"""
import sys
from pathlib import Path

import torch

from pipeline.data.datasets import PairedPatches
from pipeline.trainer import distributed, train
from test_training import CFG, REAL_CFG, Interrupt, StopAt, real_step, sfd_step, weights

if __name__ == "__main__":
    train_set, out, run, kind = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    rank, world = distributed()
    assert world == 2
    if kind == "sfd":
        step, cfg, data = sfd_step(), {**CFG, "iters": 3}, PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    else:
        step, cfg, data = real_step(), REAL_CFG, PairedPatches([train_set], REAL_CFG["degrade_size"])
    try:
        train(StopAt(step, int(sys.argv[5])) if len(sys.argv) > 5 else step, data, cfg, out / run)
        torch.save(weights(step), out / f"{run}.rank{rank}.pt")
    except Interrupt:
        pass
    torch.distributed.destroy_process_group()
