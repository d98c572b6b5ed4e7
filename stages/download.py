"""Stage `download`: the quick profile's bundled images and NIQE model, or the paper's datasets and weights."""
import shutil
import sys
from pathlib import Path

from pipeline.data.download import DownloadError, fetch
from pipeline.data.quick import build_quick_sets
from pipeline.data.registry import load_registry
from pipeline.metrics.niqe_params import write_niqe_mat
from pipeline.params import for_profile, stage_params

PARAMS = ("profile", "download")
QUICK_ROOT = Path("data/raw/quick")


def main() -> int:
    params = stage_params("download", PARAMS)
    cfg = for_profile(params["download"], params["profile"])
    quick_sets = {name: cfg[name] for name in ("quick_train", "quick_test") if cfg[name]}
    shutil.rmtree(QUICK_ROOT, ignore_errors=True)
    if quick_sets:
        print("quick sets:", build_quick_sets(quick_sets, QUICK_ROOT))
    write_niqe_mat(Path("data/weights/niqe_pris_params.mat"))

    registry = load_registry()
    missing = []
    for name in cfg["entries"]:
        try:
            fetch(name, registry[name], Path("."))
        except DownloadError as e:
            missing.append(f"- {name}: {e}")
    if missing:
        print("Some sources could not be fetched:\n" + "\n".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
