"""Stage `tsne`: Fig. 9, t-SNE of the esrgan run's image discriminator vs the sfd run's Feat-D features."""
import sys

from pipeline.params import profile_section
from stages import stage_params
from pipeline.tsne import TSNEError, run_tsne

FIGURE, METRICS = "reports/figures/tsne.png", "reports/metrics/tsne.json"


def reads(params: dict) -> tuple[str, ...]:
    return "profile", "seed", f"{params['profile']}.tsne"


def main() -> int:
    params = stage_params("tsne", reads)
    try:
        result = run_tsne(profile_section(params, "tsne"), params["seed"], params["profile"], FIGURE, METRICS)
    except TSNEError as e:
        raise SystemExit(f"tsne: {e}") from None
    print(f"wrote {FIGURE} and {METRICS}: silhouette {result['silhouette']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
