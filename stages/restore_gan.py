"""Stage `restore_gan@<run>`: Table 5's "+ VD" (the image discriminator) and "+ Ours" (Feat-D + TG-D, Eq. 7) runs of
a restoration task, from its fidelity model at scale 1; the runs are `runs.restore_gan` in params.yaml."""
import sys

from stages.training import main, reads_for

reads = reads_for("restore_gan")

if __name__ == "__main__":
    sys.exit(main("restore_gan", sys.argv[1]))
