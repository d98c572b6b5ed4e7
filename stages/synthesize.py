"""Stage `synthesize@<group>`: one data group's sets in the project's layout: `sr` (bicubic pairs, training
sub-images, the synthetic real-world test set) in data/sets, `real_pairs` (RealSR, DRealSR) in data/real_pairs,
`iqa` (the IQA sets) in data/iqa, `restore` (Table 5's deraining and deblurring pairs, scale 1) in data/restore."""
import sys

from pipeline.data.quick import quick_root
from pipeline.data.registry import load_registry
from pipeline.data.synthesize import OUT_ROOTS, synthesize
from pipeline.params import profile_section
from stages import stage_params

GROUPS = tuple(OUT_ROOTS)


def reads(params: dict, group: str) -> tuple[str, ...]:
    """The keys a group reads: real pairs are copied and cropped, with no seed or degradation; the restoration
    pairs are at scale 1, their stand-ins seeded."""
    own = ("profile", f"{params['profile']}.synthesize")
    return {"real_pairs": (*own, "scale"), "restore": (*own, "seed")}.get(group, (*own, "scale", "seed",
                                                                                  "degradation"))


def main(group: str) -> int:
    if group not in GROUPS:
        raise SystemExit(f"unknown data group {group!r}; expected one of {GROUPS}")
    params = stage_params(f"synthesize@{group}", lambda p: reads(p, group))
    cfg = {**profile_section(params, "synthesize"), **({"scale": params["scale"]} if "scale" in params else {})}
    OUT_ROOTS[group].mkdir(parents=True, exist_ok=True)  # exists even when the profile has no set of this group
    try:
        counts = synthesize(group, cfg, params.get("seed"), params.get("degradation"), load_registry(),
                            OUT_ROOTS[group], quick_root(group))
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"synthesize@{group}: {e}") from None
    for name, count in counts.items():
        print(f"{name}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
