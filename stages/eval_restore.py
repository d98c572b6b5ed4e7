"""Stage `eval_restore`: Table 5: each restoration run restores its task's test sets (scale 1), scored with PSNR
and SSIM on the task's channel, LPIPS and DISTS; and the figure of restored crops (input, each run, ground truth)."""
import os
import sys

# pyiqa fixes its weight cache folder when it is imported: point it at the download stage's folder first
os.environ["TORCH_HOME"] = "data/weights/eval/torch"

from pipeline.checkpoint import CheckpointError
from pipeline.evaluate import evaluate_restore, restore_figure, summary_lines
from pipeline.params import profile_section
from pipeline.run_table import task_runs
from stages import stage_params

FIGURE = "reports/figures/restore_crops.png"


def reads(params: dict) -> tuple[str, ...]:
    return "profile", "runs", f"{params['profile']}.eval_restore"


def main() -> int:
    params = stage_params("eval_restore", reads)
    cfg = profile_section(params, "eval_restore")
    runs = task_runs(params["runs"])
    try:
        summary = evaluate_restore(cfg, runs, params["profile"])
    except CheckpointError as e:
        raise SystemExit(f"eval_restore: {e}") from None
    restore_figure(cfg, runs, params["runs"], FIGURE)
    print("\n".join(summary_lines(summary)))
    print(f"wrote {FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
