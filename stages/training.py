"""What the three training stages share: the keys a run reads, and training it with one-line errors."""
from pipeline import runs
from pipeline.checkpoint import CheckpointError
from pipeline.params import ParamError
from stages import stage_params


def reads_for(stage: str):
    """`reads(params, run)` for the stage: the dotted keys dvc.yaml declares for `<stage>@<run>`."""
    return lambda params, run: runs.reads(params, stage, run)


def main(stage: str, run: str) -> int:
    params = stage_params(f"{stage}@{run}", lambda p: runs.reads(p, stage, run))
    try:
        print("wrote", runs.train_run(params, stage, run))
    except (CheckpointError, ParamError) as e:  # a corrupted weights file or an inconsistent run entry, named
        raise SystemExit(f"{stage}@{run}: {e}") from None
    return 0
