"""Stage `synthesize`: bicubic and real-world LR/HR pairs, training sub-images, and IQA sets in one layout."""
import sys
from pathlib import Path

from pipeline.data.registry import load_registry
from pipeline.data.synthesize import synthesize
from pipeline.params import for_profile, stage_params

PARAMS = ("profile", "seed", "synthesize", "degradation")


def main() -> int:
    params = stage_params("synthesize", PARAMS)
    cfg = for_profile(params["synthesize"], params["profile"])
    counts = synthesize(cfg, params["seed"], params["degradation"], load_registry(), Path("data/sets"), Path("data/iqa"))
    for name, count in counts.items():
        print(f"{name}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
