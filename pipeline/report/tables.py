"""The paper's Tables 1-5 beside ours: rows and columns as the paper prints them, each cell holding our value,
the paper's value and their difference.

Our metrics come from the eval stages' records (`reports/metrics/sr.csv`, `iqa.csv`: one number, or an n/a and its
reason, a row), the paper's from its tables as long CSVs (`reports/paper/table*.csv`, one number a row, `-` cells
empty): each table is a pivot of both. A model or
method of ours fills the paper's column (or row) of its counterpart; ours without a counterpart (bicubic, the PSNR
model, the ablation variants, quick-profile sets) are added after the paper's, marked "ours only". Every cell we
could not fill says why. The best and second-best of our values are marked along each metric's line (a row where
the paper's metrics are rows, a column where they are columns), as the paper marks its own.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.data.iqa_sets import PIPAL_MAPPING_CAVEAT
from pipeline.run_table import labels as run_labels
from pipeline.run_table import TASKS, evaluated_runs, paper_columns

HIGHER_BETTER = frozenset({"psnr", "ssim", "plcc", "srcc", "krcc"})
LOWER_BETTER = frozenset({"lpips", "dists", "niqe"})
METRIC_NAMES = {"psnr": "PSNR", "ssim": "SSIM", "lpips": "LPIPS", "dists": "DISTS", "niqe": "NIQE", "plcc": "PLCC",
                "srcc": "SRCC", "krcc": "KRCC"}
DECIMALS = {"psnr": 2, "ssim": 3, "lpips": 3, "dists": 3, "niqe": 3, "plcc": 4, "srcc": 4, "krcc": 4}

PAPER_FILES = {"table1": "table1_classical_sr_x4.csv", "table2": "table2_realworld_sr_x4.csv",
               "table3": "table3_ou_nr_iqa.csv", "table4": "table4_iqa_ablation.csv",
               "table5": "table5_other_restoration.csv"}
CAPTIONS = {
    "table1": "Table 1. Classical x4 SR: PSNR / SSIM (Y channel) and LPIPS / DISTS.",
    "table2": "Table 2. Real-world x4 SR.",
    "table3": "Table 3. Opinion-unaware no-reference IQA: PLCC / SRCC / KRCC with the MOS.",
    "table4": "Table 4. SFD-IQA ablation on the sub-types of PIPAL's training set and KonIQ-10k.",
    "table5": "Table 5. Deraining (Rain100L) and deblurring (GoPro) with NAFNet.",
}
# Our IQA method -> the paper's row of Table 3 it reproduces (our SR runs' columns are in params.yaml's run table).
IQA_COUNTERPARTS = {"sfd_iqa": "SFD-IQA (Ours)", "niqe": "NIQE", "ilniqe": "IL-NIQE", "clipiqa": "CLIPQA"}
# Labels of what is ours besides the trained runs (whose labels are in the run table).
OTHER_LABELS = {"bicubic": "Bicubic", "sfd_iqa": "SFD-IQA", "sfd_iqa_baseline": "SFD-IQA baseline (s_o)",
                "sfd_iqa_featd": "SFD-IQA w/ Feat-D", "sfd_iqa_tgd": "SFD-IQA w/ TG-D (s_aver)",
                "piqe": "PIQE (2015, not in the paper)", "qualiclip": "QualiCLIP (2024, not in the paper)",
                "maclip": "MA-CLIP (2025, after the paper)"}
# Table 4: the SFD-IQA variant each method is -> the paper's column.
TABLE4_COLUMNS = {"sfd_iqa_baseline": "Baseline", "sfd_iqa_featd": "w/ Feat-D", "sfd_iqa_tgd": "w/ TG-D",
                  "sfd_iqa": "SFD-IQA"}

NOT_REPRODUCED_SR = ("not reproduced: a published model this pipeline does not train (evaluate its public "
                     "checkpoint by listing it under <profile>.eval_sr.external, named after this column with "
                     "'-public')")
NOT_REPRODUCED_IQA = "not reproduced: no implementation of this method runs in this pipeline (pyiqa lacks it)"
NOT_TRAINED_RESTORE = "not trained: no run of the run table (runs.restore_*) fills this row for this task"


@dataclass
class Cell:
    metric: str
    ours: float | None = None
    paper: float | None = None
    reason: str | None = None  # why `ours` is n/a
    rank: int | None = None  # 1: best, 2: second best of our values on the metric's line
    note: int | None = None  # the number of `reason` among the table's notes

    @property
    def diff(self) -> float | None:
        return None if self.ours is None or self.paper is None else self.ours - self.paper


@dataclass
class Records:
    """An eval stage's records (reports/metrics/sr.csv or iqa.csv) and the profile they were made in."""
    rows: list[dict]
    profile: str

    def __post_init__(self):
        self.index = {(r["set"], r["subset"], r["method"], r["metric"]): r for r in self.rows}

    def sets(self, table: str) -> list[str]:
        return _unique(r["set"] for r in self.rows if r["table"] == table)

    def subsets(self, table: str) -> list[tuple[str, str]]:
        return _unique((r["set"], r["subset"]) for r in self.rows if r["table"] == table)

    def methods(self, table: str) -> list[str]:
        return _unique(r["method"] for r in self.rows if r["table"] == table)

    def metrics(self, table: str) -> list[str]:
        return _unique(r["metric"] for r in self.rows if r["table"] == table)

    def cell(self, set_name: str, subset: str, method: str, metric: str) -> tuple[float | None, str | None]:
        """(our value, None) or (None, why there is none)."""
        r = self.index.get((set_name, subset, method, metric))
        if r is None:
            where = f"{set_name}/{subset}" if subset else set_name
            return None, f"not evaluated: {method} on {where}"
        return (r["value"], None) if r["value"] is not None else (None, r["reason"])

    def values(self, table: str) -> dict[str, dict[str, dict[str, float | None]]]:
        """{set: {method: {metric: value or None}}} of a table's records, for the figures."""
        out: dict = {}
        for r in (r for r in self.rows if r["table"] == table and not r["subset"]):
            out.setdefault(r["set"], {}).setdefault(r["method"], {})[r["metric"]] = r["value"]
        return out


def read_records(path: Path, profile: str) -> Records | None:
    """The records of an eval stage's CSV, values as floats (None where n/a); None if the file is absent."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        rows = [{**r, "value": float(r["value"]) if r["value"] else None} for r in csv.DictReader(f)]
    return Records(rows, profile)


@dataclass
class Header:
    label: str
    ours_only: bool = False


@dataclass
class Row:
    labels: tuple[str, ...]
    cells: list[Cell]
    ours_only: bool = False


@dataclass
class Table:
    id: str
    caption: str
    row_heads: tuple[str, ...]  # titles of the row-label columns
    columns: list[Header]
    rows: list[Row]
    compare: str  # "row" or "column": where one metric's values line up
    col_groups: list[tuple[str, int]] = field(default_factory=list)  # (label, span) above `columns`
    notes: list[str] = field(default_factory=list)

    def finish(self) -> Table:
        """Rank our values along each metric's line and number the reasons of the n/a cells."""
        lines = [r.cells for r in self.rows] if self.compare == "row" else list(zip(*(r.cells for r in self.rows)))
        for line in lines:
            mark_best(line)
        for cell in (c for r in self.rows for c in r.cells if c.ours is None and c.reason):
            if cell.reason not in self.notes:
                self.notes.append(cell.reason)
            cell.note = self.notes.index(cell.reason) + 1
        return self


def mark_best(cells) -> None:
    """Set `rank` 1 / 2 on the best / second-best `ours` values (ties share a rank); all cells share one metric."""
    values = [c.ours for c in cells if c.ours is not None]
    if not values:
        return
    sign = 1 if cells[0].metric in HIGHER_BETTER else -1
    ordered = sorted(set(values), key=lambda v: -sign * v)
    for cell in cells:
        if cell.ours is not None and cell.ours in ordered[:2]:
            cell.rank = ordered.index(cell.ours) + 1


def fmt(value: float | None, metric: str, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:{'+' if signed else ''}.{DECIMALS.get(metric, 4)}f}"


def our_labels(runs: dict) -> dict[str, str]:
    """The report's label of each of ours: the run table's runs, bicubic and the SFD-IQA methods."""
    return {**OTHER_LABELS, **run_labels(runs)}


def read_paper(paper_dir: Path) -> dict[str, list[dict]]:
    """The paper's tables: {table id: rows}, `value` a float or None where the paper prints `-`."""
    tables = {}
    for table_id, name in PAPER_FILES.items():
        with open(Path(paper_dir) / name, newline="") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            row["value"] = float(row["value"]) if row["value"].strip() else None
        tables[table_id] = rows
    return tables


def _unique(values) -> list:
    return list(dict.fromkeys(values))


def _norm(name: str) -> str:
    """A name's letters and digits, lower case, without a trailing 'public': 'RealESRGAN-public' -> 'realesrgan'."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r"[\W_]*public\W*$", "", name.lower()))


def table_metrics(paper_metrics: list[str], records: Records | None, table: str) -> list[str]:
    """A table's metrics: the paper's, then those only our records of it have (known metrics only)."""
    ours = records.metrics(table) if records else []
    return paper_metrics + [k for k in ours if k in METRIC_NAMES and k not in paper_metrics]


def assign_columns(ours: list[str], paper: list[str], fixed: dict[str, str]) -> dict[str, str]:
    """Our name -> the paper's column or row it fills, one each. A name outside `fixed` that matches a paper
    column (an external checkpoint such as 'ESRGAN-public') comes first, as it is the very model the paper
    evaluated; then our runs fill their `fixed` counterparts where still free."""
    by_norm = {_norm(p): p for p in paper}
    taken: dict[str, str] = {}
    for o in ours:
        column = by_norm.get(_norm(o))
        if o not in fixed and column and column not in taken.values():
            taken[o] = column
    for o in ours:
        if o in fixed and fixed[o] in paper and fixed[o] not in taken.values():
            taken[o] = fixed[o]
    return taken


def sr_table(table_id: str, paper_rows: list[dict], sr: Records | None, missing: str, runs: dict) -> Table:
    """Table 1 or 2: rows (benchmark, metric), one column per method; `missing` says why `sr` is None; `runs` is
    params.yaml's run table (our runs' paper columns and labels)."""
    methods = _unique(r["method"] for r in paper_rows)
    benchmarks = _unique(r["benchmark"] for r in paper_rows)
    paper_metrics = _unique(r["metric"].lower() for r in paper_rows)
    paper = {(r["benchmark"], r["metric"].lower(), r["method"]): r["value"] for r in paper_rows}
    our_sets = sr.sets(table_id) if sr else []
    models = sr.methods(table_id) if sr else []
    to_paper = assign_columns(models, methods, paper_columns(runs)[table_id])
    labels = our_labels(runs)
    extra_models = [m for m in models if m not in to_paper]
    metrics = table_metrics(paper_metrics, sr, table_id)
    from_paper = {p: o for o, p in to_paper.items()}
    columns = [Header(p) for p in methods] + [Header(labels.get(m, m), ours_only=True) for m in extra_models]
    col_models = [from_paper.get(p) for p in methods] + extra_models

    rows = []
    for bench in benchmarks + [s for s in our_sets if s not in benchmarks]:
        for metric in metrics:
            cells = []
            for i, model in enumerate(col_models):
                cell = Cell(metric, paper=paper.get((bench, metric, methods[i])) if i < len(methods) else None)
                cells.append(_fill(cell, sr, missing, NOT_REPRODUCED_SR, model, bench, [(s, "") for s in our_sets]))
            rows.append(Row((bench, METRIC_NAMES.get(metric, metric)), cells,
                            ours_only=bench not in benchmarks or metric not in paper_metrics))
    return Table(table_id, CAPTIONS[table_id], ("Benchmark", "Metric"), columns, rows, "row").finish()


def _fill(cell: Cell, data: Records | None, missing: str, not_reproduced: str, method: str | None, set_name: str,
          evaluated: list[tuple[str, str]], subset: str = "", label: str | None = None) -> Cell:
    """Our value for `cell` (method on set_name[/subset]) from the records, or the reason there is none;
    `evaluated`: the (set, subset) pairs the records have for the table."""
    if data is None:
        cell.reason = missing
    elif method is None:
        cell.reason = not_reproduced
    elif (set_name, subset) not in evaluated:
        cell.reason = f"{label or set_name} is not evaluated in the {data.profile} profile"
    else:
        cell.ours, cell.reason = data.cell(set_name, subset, method, cell.metric)
    return cell


def iqa_table(paper_rows: list[dict], iqa: Records | None, missing: str) -> Table:
    """Table 3: one row per method, columns (dataset x PLCC / SRCC / KRCC)."""
    methods = _unique(r["method"] for r in paper_rows)
    datasets = _unique(r["dataset"] for r in paper_rows)
    metrics = _unique(r["metric"].lower() for r in paper_rows)
    paper = {(r["method"], r["dataset"], r["metric"].lower()): r["value"] for r in paper_rows}
    results = iqa.sets("table3") if iqa else []
    ours = iqa.methods("table3") if iqa else []
    to_paper = assign_columns(ours, methods, IQA_COUNTERPARTS)
    from_paper = {p: o for o, p in to_paper.items()}
    sets = datasets + [s for s in results if s not in datasets]

    rows = []
    for label, method, ours_only in ([(p, from_paper.get(p), False) for p in methods]
                                     + [(OTHER_LABELS.get(o, o), o, True) for o in ours if o not in to_paper]):
        cells = []
        for dataset in sets:
            for metric in metrics:
                cell = Cell(metric, paper=None if ours_only else paper.get((label, dataset, metric)))
                cells.append(_fill(cell, iqa, missing, NOT_REPRODUCED_IQA, method, dataset, [(s, "") for s in results]))
        rows.append(Row((label,), cells, ours_only=ours_only))
    columns = [Header(METRIC_NAMES[m], ours_only=d not in datasets) for d in sets for m in metrics]
    groups = [(d if d in datasets else f"{d} (ours only)", len(metrics)) for d in sets]
    return Table("table3", CAPTIONS["table3"], ("IQA method",), columns, rows, "column", groups).finish()


def ablation_table(paper_rows: list[dict], iqa: Records | None, missing: str) -> Table:
    """Table 4: rows (metric, 'Dataset. Sub-type'), one column per SFD-IQA variant."""
    variants = _unique(r["variant"] for r in paper_rows)
    subsets = _unique(r["subset"] for r in paper_rows)
    paper_metrics = _unique(r["metric"].lower() for r in paper_rows)
    paper = {(r["metric"].lower(), r["subset"].lower(), r["variant"]): r["value"] for r in paper_rows}
    method_of = {column: method for method, column in TABLE4_COLUMNS.items()}
    ours = {f"{d}. {s}".lower(): (d, s) for d, s in (iqa.subsets("table4") if iqa else [])}  # row key -> (set, subset)
    metrics = table_metrics(paper_metrics, iqa, "table4")
    paper_keys = [s.lower() for s in subsets]
    row_keys = [(s.lower(), s, False) for s in subsets] + [(k, ". ".join(ours[k]), True) for k in ours
                                                           if k not in paper_keys]
    rows = []
    for metric in metrics:
        for key, label, ours_only in row_keys:
            set_name, subset = ours.get(key, (label, ""))
            cells = [_fill(Cell(metric, paper=paper.get((metric, key, variant))), iqa, missing, NOT_REPRODUCED_IQA,
                           method_of.get(variant), set_name, list(ours.values()), subset, label)
                     for variant in variants]
            rows.append(Row((METRIC_NAMES.get(metric, metric), label), cells,
                            ours_only=ours_only or metric not in paper_metrics))
    columns = [Header(v) for v in variants]
    table = Table("table4", CAPTIONS["table4"], ("Metric", "Dataset. Sub-type"), columns, rows, "row").finish()
    if any(row.labels[1].startswith("PIPAL. ") for row in rows):
        table.notes.append(PIPAL_MAPPING_CAVEAT)
    return table


def restoration_table(paper_rows: list[dict], restore: Records | None, missing: str, runs: dict) -> Table:
    """Table 5: one row per method (the runs' `table5` column), columns (dataset x metric); a task's dataset column
    holds our run of that task on the first set it was evaluated on (the quick profile's stand-in, if any)."""
    methods = _unique(r["method"] for r in paper_rows)
    datasets = _unique(r["dataset"] for r in paper_rows)
    paper_metrics = _unique(r["metric"].lower() for r in paper_rows)
    paper = {(r["method"], r["dataset"], r["metric"].lower()): r["value"] for r in paper_rows}
    metrics = table_metrics(paper_metrics, restore, "table5")
    entries, ours = dict(evaluated_runs(runs)), {}  # (paper dataset, paper method) -> (our set, our run)
    for set_name, by_run in (restore.values("table5") if restore else {}).items():
        for run in by_run:
            entry = entries.get(run)
            if entry and entry.get("task") in TASKS:
                ours.setdefault((TASKS[entry["task"]].paper_set, entry["columns"]["table5"]), (set_name, run))
    rows = []
    for method in methods:
        cells = []
        for dataset in datasets:
            set_name, run = ours.get((dataset, method), (dataset, None))
            for metric in metrics:
                cell = Cell(metric, paper=paper.get((method, dataset, metric)))
                cells.append(_fill(cell, restore, missing, NOT_TRAINED_RESTORE, run, set_name,
                                   [(s, "") for s, _ in ours.values()]))
        rows.append(Row((method,), cells))
    columns = [Header(METRIC_NAMES[k], ours_only=k not in paper_metrics) for _ in datasets for k in metrics]
    stand_in = {d: s for (d, _), (s, _) in ours.items() if s != d}
    groups = [(f"{d} (ours: {stand_in[d]})" if d in stand_in else d, len(metrics)) for d in datasets]
    return Table("table5", CAPTIONS["table5"], ("Method",), columns, rows, "column", groups).finish()


def build_tables(paper: dict[str, list[dict]], sr: Records | None, iqa: Records | None, runs: dict,
                 restore: Records | None = None,
                 sr_missing: str = "reports/metrics/sr.csv not found (run the eval_sr stage)",
                 iqa_missing: str = "reports/metrics/iqa.csv not found (run the eval_iqa stage)",
                 restore_missing: str = "reports/metrics/restore.csv not found (run the eval_restore stage)"
                 ) -> list[Table]:
    """All five tables of the paper, in order."""
    table3, table4 = iqa_table(paper["table3"], iqa, iqa_missing), ablation_table(paper["table4"], iqa, iqa_missing)
    contradiction = clipiqa_contradiction(paper)
    if contradiction:
        table3.notes.append(contradiction)
        table4.notes.append(contradiction)
    return [sr_table("table1", paper["table1"], sr, sr_missing, runs),
            sr_table("table2", paper["table2"], sr, sr_missing, runs), table3, table4,
            restoration_table(paper["table5"], restore, restore_missing, runs)]


def clipiqa_contradiction(paper: dict[str, list[dict]]) -> str | None:
    """The paper's one inconsistency, from its own numbers: Table 3's CLIP-IQA on KonIQ-10k against Table 4's
    baseline, which is s_o alone, i.e. CLIP-IQA with its one prompt pair, on KonIQ-10k's splits."""
    clip = [r["value"] for r in paper["table3"] if (r["method"], r["dataset"], r["metric"]) == ("CLIPQA", "KonIQ-10k",
                                                                                                 "PLCC")]
    base = [r["value"] for r in paper["table4"] if r["variant"] == "Baseline" and r["metric"] == "PLCC"
            and r["subset"].startswith("KonIQ-10k") and r["value"] is not None]
    if not clip or clip[0] is None or not base:
        return None
    return (f"The paper contradicts itself here: Table 3 gives CLIP-IQA a PLCC of {clip[0]:.3f} on KonIQ-10k, while "
            f"Table 4's baseline (s_o alone, which is CLIP-IQA with one prompt pair) reaches {min(base):.2f}-"
            f"{max(base):.2f} on KonIQ-10k's splits.")
