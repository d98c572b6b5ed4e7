"""Stage `tsne`: Fig. 9, t-SNE of the esrgan run's image discriminator vs the sfd run's Feat-D features."""
import sys

from pipeline.params import for_profile, stage_params
from pipeline.tsne import run_tsne

PARAMS = ("profile", "seed", "tsne")
FIGURE, METRICS = "reports/figures/tsne.png", "reports/metrics/tsne.json"


def main() -> int:
    params = stage_params("tsne", PARAMS)
    profile = params["profile"]
    result = run_tsne(for_profile(params["tsne"], profile), params["seed"], profile, FIGURE, METRICS)
    print(f"wrote {FIGURE} and {METRICS}: silhouette {result['silhouette']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
