"""Stage `train_real@<run>`: the real-world SFD model (Real-ESRGAN's degradation on the fly); its Feat-D and LPP
are the SFD-IQA model. The runs are `runs.train_real` in params.yaml."""
import sys

from stages.training import main, reads_for

reads = reads_for("train_real")

if __name__ == "__main__":
    sys.exit(main("train_real", sys.argv[1]))
