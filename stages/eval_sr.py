"""Stage `eval_sr`: Tables 1 and 2 (and Fig. 8's points): every model super-resolves its table's test sets, scored
with PSNR, SSIM, LPIPS, DISTS and NIQE; and Figs. 6-7, the zoomed crops of each table's models."""
import os
import sys

# pyiqa fixes its weight cache folder when it is imported: point it at the download stage's folder first
os.environ["TORCH_HOME"] = "data/weights/eval/torch"

from pipeline.checkpoint import CheckpointError
from pipeline.evaluate import evaluate_sr, sr_figure, sr_models, summary_lines
from pipeline.run_table import run_tables
from pipeline.params import profile_section
from stages import stage_params


FIGURES = {"table1": "reports/figures/sr_crops_table1.png", "table2": "reports/figures/sr_crops_table2.png"}


def reads(params: dict) -> tuple[str, ...]:
    return "profile", "scale", "runs", f"{params['profile']}.eval_sr"


def main() -> int:
    params = stage_params("eval_sr", reads)
    cfg = {**profile_section(params, "eval_sr"), "scale": params["scale"]}
    tables = run_tables(params["runs"])
    try:
        summary = evaluate_sr(cfg, tables, params["profile"])
    except CheckpointError as e:
        raise SystemExit(f"eval_sr: {e}") from None
    print("\n".join(summary_lines(summary)))
    models = sr_models(cfg, tables)
    for table, figure in FIGURES.items():
        sr_figure(cfg[table]["sets"], [m.name for m in models if m.table == table], cfg["crops"][table], figure,
                  cfg["crops"]["size"])
        print(f"wrote {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
