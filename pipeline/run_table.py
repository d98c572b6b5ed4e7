"""params.yaml's run table, `runs.<stage>.<run>`: every trained model, its backbone, what it starts from, its Fig. 8
variant, the paper columns it fills and its label. Training, evaluation and the report all read it from here.

The SR stages train x4 backbones; the restoration stages (Table 5) train NAFNet at scale 1 for a `task` of TASKS.
"""
from __future__ import annotations

from typing import NamedTuple

from pipeline.params import ParamError, lookup

SR_BACKBONES = ("rrdbnet", "swinir")  # x4, sized and scheduled per backbone
BACKBONES = (*SR_BACKBONES, "nafnet")
RESTORATION_STAGES = ("restore_psnr", "restore_gan")
STAGES = ("pretrain_psnr", "pretrain_real", "train_gan", "train_real", *RESTORATION_STAGES)
SR_TABLES = ("table1", "table2")  # eval_sr's
TABLES = (*SR_TABLES, "table5")  # table5: eval_restore's


class Task(NamedTuple):
    """A restoration task of Table 5: the paper's dataset column and the channel its benchmark scores PSNR and SSIM
    on (Rain100L on Y, as the deraining papers since JORDER report it; GoPro on RGB, as DeepDeblur and NAFNet)."""
    paper_set: str
    channel: str  # y | rgb


TASKS = {"derain": Task("Rain100L", "y"), "deblur": Task("GoPro", "rgb")}


def run_entry(params: dict, stage: str, run: str) -> dict:
    """The entry `runs.<stage>.<run>`, its backbone, task and tables checked."""
    entry = lookup(params, f"runs.{stage}.{run}")
    allowed = ("nafnet",) if stage in RESTORATION_STAGES else SR_BACKBONES
    if entry.get("backbone") not in allowed:
        raise ParamError(f"`runs.{stage}.{run}.backbone` must be one of {allowed}, got {entry.get('backbone')!r}")
    if stage in RESTORATION_STAGES and entry.get("task") not in TASKS:
        raise ParamError(f"`runs.{stage}.{run}.task` must be one of {tuple(TASKS)}, got {entry.get('task')!r}")
    unknown = set(entry.get("columns") or {}) - set(TABLES)
    if unknown:
        raise ParamError(f"`runs.{stage}.{run}.columns` names {sorted(unknown)}; tables are {TABLES}")
    return entry


def evaluated_runs(runs: dict) -> list[tuple[str, dict]]:
    """(run, entry) of every run, ordered by backbone, then stage, then the table's order: the paper's columns."""
    found = [(BACKBONES.index(entry["backbone"]), STAGES.index(stage), i, run, entry)
             for stage in STAGES for i, (run, entry) in enumerate((runs.get(stage) or {}).items())]
    return [(run, entry) for *_, run, entry in sorted(found, key=lambda f: f[:3])]


def run_tables(runs: dict) -> dict[str, list[str]]:
    """Table -> the runs evaluated in it, in evaluated_runs' order."""
    return {table: [run for run, entry in evaluated_runs(runs) if table in (entry.get("columns") or {})]
            for table in TABLES}


def paper_columns(runs: dict) -> dict[str, dict[str, str]]:
    """Table -> {run: the paper's column it reproduces}, for the runs that have one."""
    return {table: {run: entry["columns"][table] for run, entry in evaluated_runs(runs)
                    if (entry.get("columns") or {}).get(table)} for table in TABLES}


def labels(runs: dict) -> dict[str, str]:
    """Run -> its label in the report."""
    return {run: entry.get("label", run) for run, entry in evaluated_runs(runs)}


def task_runs(runs: dict) -> dict[str, list[str]]:
    """Restoration task -> its runs in Table 5, in evaluated_runs' order (eval_restore's models)."""
    found = {task: [] for task in TASKS}
    for run, entry in evaluated_runs(runs):
        if "table5" in (entry.get("columns") or {}):
            found[entry["task"]].append(run)
    return {task: found_runs for task, found_runs in found.items() if found_runs}
