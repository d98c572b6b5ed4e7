"""Stage `download@<group>`: one data group of the profile, fetched and verified.

Groups (params.yaml `download`): `sr` (training and classical test sets), `real_pairs` (RealSR, DRealSR), `iqa`
(the IQA sets), `train_weights` (what the training stages read: CLIP, VGG19, the PSNR models they may start
from) and `eval_weights` (the metrics' networks, the public comparison models, NIQE's pristine model). Datasets land
in `data/raw/<group>/`, weights in `data/weights/train/` and `data/weights/eval/`; the quick profile writes its bundled images into
`data/raw/<group>/quick/`. A group whose sources are missing stops with the folder to fill and leaves the other
groups, and every stage that does not need it, free to run (`dvc repro -k`).
"""
import shutil
import sys
from pathlib import Path

from pipeline.data.download import DownloadError, MirrorError, fetch, file_name, mirror_base
from pipeline.data.quick import build_quick_sets, quick_root
from pipeline.data.registry import DATASET_GROUPS, WEIGHTS_GROUPS, entry_group, group_folder, load_registry
from pipeline.fileio import write_json
from pipeline.metrics.niqe_params import NIQE_MAT, write_niqe_mat
from pipeline.params import profile_section
from stages import stage_params

GROUPS = (*DATASET_GROUPS, *WEIGHTS_GROUPS)


MANIFEST = "reports/metrics/downloads/{group}.json"  # what each group verified, for the report's header


def reads(params: dict, group: str) -> tuple[str, ...]:
    return "profile", "download_mirror", f"{params['profile']}.download"


def provenance(entry: dict) -> dict:
    """What the report says of a verified entry: where it lies, each file's checksum and where that comes from."""
    specs = entry.get("files") or [entry["manual"]]
    files = []
    for spec in specs:
        checksum = spec.get("checksum")
        if checksum is None:
            files.append({"file": "placed by hand", "checksum": "none (checked by the stages that read it)"})
            continue
        pinned = f"{checksum['algorithm']} {checksum['value']}" if checksum["value"] else ""
        published = f"sha256 as {checksum['published']} states it" if "published" in checksum else ""
        files.append({"file": file_name(spec) if "urls" in spec else Path(entry["target"]).name,
                      "checksum": ", ".join(filter(None, (pinned, published))),
                      "source": checksum.get("source") or checksum.get("note", "")})
    return {"kind": entry["kind"], "target": entry["target"], "files": files}


def main(group: str) -> int:
    if group not in GROUPS:
        raise SystemExit(f"unknown data group {group!r}; expected one of {GROUPS}")
    params = stage_params(f"download@{group}", lambda p: reads(p, group))
    cfg, key = profile_section(params, "download"), f"{params['profile']}.download"
    spec = cfg["groups"][group]
    registry = load_registry()
    for name in spec["entries"]:
        if name not in registry:
            raise SystemExit(f"params.yaml: {key}.groups.{group}.entries names {name!r}, which data/registry.yaml "
                             f"does not have")
        if entry_group(registry[name]) != group:
            raise SystemExit(f"params.yaml: {key}.groups.{group}.entries names {name!r}, whose target "
                             f"{registry[name]['target']} belongs to group {entry_group(registry[name])!r}")

    try:
        mirror = mirror_base(params["download_mirror"])
    except MirrorError as e:
        raise SystemExit(str(e)) from None

    # the stage's output exists even when the profile puts nothing in it (DVC refuses a missing output)
    group_folder(group).mkdir(parents=True, exist_ok=True)
    if group == "eval_weights":
        write_niqe_mat(NIQE_MAT)
    if group in DATASET_GROUPS:
        shutil.rmtree(quick_root(group), ignore_errors=True)
        if spec["quick_sets"]:
            unknown = [name for name in spec["quick_sets"] if name not in cfg["images"]]
            if unknown:
                raise SystemExit(f"params.yaml: {key}.groups.{group}.quick_sets names {unknown}, which "
                                 f"{key}.images does not list")
            images = {name: cfg["images"][name] for name in spec["quick_sets"]}
            print("quick sets:", build_quick_sets(images, quick_root(group)))

    missing, verified = [], {}
    for name in spec["entries"]:
        try:
            print(f"{name}: {fetch(name, registry[name], Path('.'), mirror=mirror)}")
            verified[name] = provenance(registry[name])
        except DownloadError as e:
            missing.append(f"- {name}: {e}")
    write_json(MANIFEST.format(group=group), {"profile": params["profile"], "group": group, "mirror": mirror,
                                              "entries": verified})
    if missing:
        print(f"download@{group}: some sources are not in place (the other groups do not need them):\n"
              + "\n".join(missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
