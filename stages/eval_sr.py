"""Stage `eval_sr`: Tables 1 and 2 (and Fig. 8's points): every model super-resolves its table's test sets, scored
with PSNR, SSIM, LPIPS, DISTS and NIQE."""
import os
import sys

# pyiqa fixes its weight cache folder when it is imported: point it at the download stage's folder first
os.environ["TORCH_HOME"] = "data/weights/eval/torch"

from pipeline.checkpoint import CheckpointError
from pipeline.evaluate import evaluate_sr
from pipeline.params import for_profile, stage_params

PARAMS = ("profile", "eval_sr")


def main() -> int:
    params = stage_params("eval_sr", PARAMS)
    try:
        summary = evaluate_sr(for_profile(params["eval_sr"], params["profile"]), params["profile"])
    except CheckpointError as e:
        raise SystemExit(f"eval_sr: {e}") from None
    for set_name, by_model in summary["results"].items():
        for model, values in by_model.items():
            print(f"{set_name:>12} {model:>20}  " + "  ".join(
                f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()))
    for metric, reason in summary["na"].items():
        print(f"n/a {metric}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
