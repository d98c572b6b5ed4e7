"""Stage `report`: reports/paper_tables.html, the paper's Tables 1-5 and Figs. 1, 2, 8, 9 beside ours."""
import sys
from pathlib import Path

from stages import stage_params
from pipeline.report.render import render_report

OUT = Path("reports/paper_tables.html")
SHARED = ("profile", "seed", "scale", "lambda1", "lambda2", "lambda3", "lambda4", "image_gan_weight", "alpha1", "alpha2",
          "prompt_logit_scale", "runs", "speed", "optim", "download_mirror", "degradation")


def reads(params: dict) -> tuple[str, ...]:
    """Every key of both profiles and the active profile's sections: the report lists them all."""
    return *SHARED, params["profile"]


def main() -> int:
    params = stage_params("report", reads)
    print("wrote", render_report(OUT, params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
