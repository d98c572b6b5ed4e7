"""Stage `train_gan@<run>`: GAN training with Eq. 7 from a PSNR model; the runs are `runs.train_gan` in params.yaml
(the RRDBNet variants of Fig. 8 and Table 1's SwinIR models)."""
import sys

from stages.training import main, reads_for

reads = reads_for("train_gan")

if __name__ == "__main__":
    sys.exit(main("train_gan", sys.argv[1]))
