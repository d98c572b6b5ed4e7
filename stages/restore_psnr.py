"""Stage `restore_psnr@<run>`: Table 5's fidelity model of a restoration task (NAFNet with its PSNR loss, scale 1),
or a public NAFNet checkpoint verified and converted; the runs are `runs.restore_psnr` in params.yaml."""
import sys

from stages.training import main, reads_for

reads = reads_for("restore_psnr")

if __name__ == "__main__":
    sys.exit(main("restore_psnr", sys.argv[1]))
