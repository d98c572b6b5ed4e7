"""params.yaml's run table, `runs.<stage>.<run>`: every trained model, its backbone, what it starts from, its Fig. 8
variant, the paper columns it fills and its label. Training, evaluation and the report all read it from here."""
from __future__ import annotations

from pipeline.params import ParamError, lookup

BACKBONES = ("rrdbnet", "swinir")
STAGES = ("pretrain_psnr", "pretrain_real", "train_gan", "train_real")
TABLES = ("table1", "table2")


def run_entry(params: dict, stage: str, run: str) -> dict:
    """The entry `runs.<stage>.<run>`, its backbone and tables checked."""
    entry = lookup(params, f"runs.{stage}.{run}")
    if entry.get("backbone") not in BACKBONES:
        raise ParamError(f"`runs.{stage}.{run}.backbone` must be one of {BACKBONES}, got {entry.get('backbone')!r}")
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
