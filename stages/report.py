"""Stage `report`: reports/paper_tables.html, the paper's Tables 1-5 and Figs. 1, 2, 8, 9 beside ours."""
import sys
from pathlib import Path

from pipeline.report.render import render_report
from stages import every_key, stage_params

OUT = Path("reports/paper_tables.html")
reads = every_key  # every key of both profiles and the active profile's sections: the report lists them all


def main() -> int:
    params = stage_params("report", reads)
    print("wrote", render_report(OUT, params))
    return 0


if __name__ == "__main__":
    sys.exit(main())
