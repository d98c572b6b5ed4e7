"""Stage `pretrain_real@<run>`: the real-world fidelity model, RealESRNet (L1 to the sharpened GT on Real-ESRGAN's
degradation made on the fly), or the public RealESRNet_x4plus verified and converted; `train_real` starts from it.
The runs are `runs.pretrain_real` in params.yaml."""
import sys

from stages.training import main, reads_for

reads = reads_for("pretrain_real")

if __name__ == "__main__":
    sys.exit(main("pretrain_real", sys.argv[1]))
