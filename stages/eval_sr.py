"""Stage `eval_sr`: Tables 1 and 2 (and Fig. 8's points): every model super-resolves its table's test sets, scored
with PSNR, SSIM, LPIPS, DISTS and NIQE."""
import os
import sys

# pyiqa fixes its weight cache folder when it is imported: point it at the download stage's folder first
os.environ["TORCH_HOME"] = "data/weights/eval/torch"

from pipeline.checkpoint import CheckpointError
from pipeline.evaluate import evaluate_sr, summary_lines
from pipeline.run_table import run_tables
from pipeline.params import profile_section
from stages import stage_params


def reads(params: dict) -> tuple[str, ...]:
    return "profile", "scale", "runs", f"{params['profile']}.eval_sr"


def main() -> int:
    params = stage_params("eval_sr", reads)
    cfg = {**profile_section(params, "eval_sr"), "scale": params["scale"]}
    try:
        summary = evaluate_sr(cfg, run_tables(params["runs"]), params["profile"])
    except CheckpointError as e:
        raise SystemExit(f"eval_sr: {e}") from None
    print("\n".join(summary_lines(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
