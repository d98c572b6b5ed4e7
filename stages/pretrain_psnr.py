"""Stage `pretrain_psnr@<run>`: a fidelity-oriented generator (L1), RRDBNet or SwinIR, or a public PSNR
checkpoint verified and converted; the runs are `runs.pretrain_psnr` in params.yaml."""
import sys

from stages.training import main, reads_for

reads = reads_for("pretrain_psnr")

if __name__ == "__main__":
    sys.exit(main("pretrain_psnr", sys.argv[1]))
