"""Stage `report`: reports/paper_tables.html, the paper's Tables 1-5 and Figs. 1, 2, 8, 9 beside ours."""
import sys
from pathlib import Path

from pipeline.params import stage_params
from pipeline.report.render import render_report

# Every top-level key: the report lists all params and the choices read from most sections.
PARAMS = ("profile", "seed", "lambda1", "lambda2", "lambda3", "lambda4", "alpha1", "alpha2", "download",
          "degradation", "synthesize", "model", "pretrain_psnr", "train_gan", "train_real", "eval_sr", "eval_iqa",
          "tsne")
OUT = Path("reports/paper_tables.html")


def main() -> int:
    params = stage_params("report", PARAMS)
    print("wrote", render_report(OUT, params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
