"""The paper's Tables 1-5 beside ours: rows and columns as the paper prints them, each cell holding our value,
the paper's value and their difference.

Our metrics come from the eval stages' records (`reports/metrics/sr.csv`, `iqa.csv`: one number, or an n/a and its
reason, a row), the paper's from its tables as long CSVs (`reports/paper/table*.csv`, one number a row, `-` cells
empty): each table is a pivot of both. A model or
method of ours fills the paper's column (or row) of its counterpart; ours without a counterpart (bicubic, the PSNR
model, the ablation variants, quick-profile sets) are added after the paper's, marked "ours only". Every cell we
could not fill says why. The best and second-best of our values are marked along each metric's line (a row where
the paper's metrics are rows, a column where they are columns), as the paper marks its own. A table prints as
blocks (`layout`): ours first, split to fit an A4 landscape page, then the paper's values where we have none.
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
IQA_COUNTERPARTS = {"sfd_iqa": "SFD-IQA (Ours)", "niqe": "NIQE", "ilniqe": "IL-NIQE", "clipiqa": "CLIPQA",
                    "contentsep": "ContentSep", "mdfs": "MDFS", "recycled": "RecycleD", "dualformer": "DualFormer",
                    "rankiqa": "RankIQA", "dipiq": "dipIQ"}
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
# Comparison methods of Tables 1-2 that no public checkpoint lets this pipeline run, and why (checked in their
# repositories; the README lists every comparison method).
NOT_RUNNABLE_SR = {
    "SRGAN": "not reproduced: SRGAN's authors published no weights (RankSRGAN's folder holds a BasicSR "
             "re-implementation whose layout no code there reads)",
    "SeD": "not reproduced: SeD publishes no SR weights (lbc12345/SeD links only its PSNR-oriented "
           "initialisations; its issue #25 asks for them)",
}
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
    group: str | None = None  # the label above it (a dataset of Tables 3 and 5); a group folds and splits whole


@dataclass
class Row:
    labels: tuple[str, ...]
    cells: list[Cell]
    ours_only: bool = False


@dataclass
class Grid:
    """One printed block of a table: some of its rows and columns, with our cells, or (`paper_only`) the paper's
    values alone where we have nothing; `notes`: the table's notes that say why a paper-only block has no values of
    ours."""
    caption: str
    row_heads: tuple[str, ...]
    columns: list[Header]
    rows: list[Row]
    paper_only: bool = False
    notes: list[int] = field(default_factory=list)

    @property
    def col_groups(self) -> list[tuple[str, int]]:
        return spans(self.columns)


@dataclass
class Table:
    id: str
    caption: str
    row_heads: tuple[str, ...]  # titles of the row-label columns
    columns: list[Header]
    rows: list[Row]
    compare: str  # "row" or "column": where one metric's values line up
    notes: list[str] = field(default_factory=list)
    grids: list[Grid] = field(default_factory=list)  # how it prints: ours first, then the paper-only block

    @property
    def col_groups(self) -> list[tuple[str, int]]:
        return spans(self.columns)

    def finish(self) -> Table:
        """Rank our values along each metric's line, number the reasons of the n/a cells and lay the table out."""
        lines = [r.cells for r in self.rows] if self.compare == "row" else list(zip(*(r.cells for r in self.rows)))
        for line in lines:
            mark_best(line)
        for cell in (c for r in self.rows for c in r.cells if c.ours is None and c.reason):
            if cell.reason not in self.notes:
                self.notes.append(cell.reason)
            cell.note = self.notes.index(cell.reason) + 1
        self.grids = layout(self)
        return self


def spans(columns: list[Header]) -> list[tuple[str, int]]:
    """(group label, span) of consecutive columns of one group; [] when the columns have no groups."""
    out: list[tuple[str, int]] = []
    for h in columns:
        if out and out[-1][0] == h.group:
            out[-1] = (h.group, out[-1][1] + 1)
        else:
            out.append((h.group, 1))
    return out if any(h.group for h in columns) else []


# Columns a printed block holds at most, so that a table fits an A4 landscape page (the browser test checks it):
# our cells stack three numbers, paper-only cells one.
MAX_COLUMNS, MAX_PAPER_COLUMNS = 10, 13


def layout(table: Table) -> list[Grid]:
    """The blocks a table prints as. Rows and columns that hold none of our values fold into one paper-only block
    (the paper's values alone), so our values lead; in a table whose metrics are rows a row folds with its
    benchmark or subset, a column with its group. Blocks wider than the page split by columns."""
    def row_unit(r: Row) -> tuple[str, ...]:  # a metric's line folds with its benchmark or subset, not alone
        metric = METRIC_NAMES.get(r.cells[0].metric, r.cells[0].metric) if table.compare == "row" else None
        return tuple(label for label in r.labels if label != metric)

    col_unit = [h.group or i for i, h in enumerate(table.columns)]
    ours_units = {row_unit(r) for r in table.rows if any(c.ours is not None for c in r.cells)}
    ours_cols = {col_unit[j] for r in table.rows for j, c in enumerate(r.cells) if c.ours is not None}
    main_rows = [i for i, r in enumerate(table.rows) if row_unit(r) in ours_units]
    main_cols = [j for j in range(len(table.columns)) if col_unit[j] in ours_cols]
    grids = _split(table, main_rows, main_cols, False, MAX_COLUMNS) if main_rows and main_cols else []
    shown = {(i, j) for i in main_rows for j in main_cols}
    folded = {(i, j) for i, r in enumerate(table.rows) for j, c in enumerate(r.cells)
              if c.paper is not None and (i, j) not in shown}
    if folded:
        grids += _split(table, sorted({i for i, _ in folded}), sorted({j for _, j in folded}), True,
                        MAX_PAPER_COLUMNS, shown)
    return grids


def _pack(units: list[list[int]], cap: int) -> list[list[int]]:
    """Consecutive units in parts of at most `cap` columns (a unit wider than `cap` is a part of its own)."""
    parts: list[list[int]] = []
    for unit in units:
        if parts and len(parts[-1]) + len(unit) <= cap:
            parts[-1] += unit
        else:
            parts.append(list(unit))
    return parts


def _split(table: Table, rows: list[int], cols: list[int], paper_only: bool, most: int,
           shown: set[tuple[int, int]] = frozenset()) -> list[Grid]:
    """Blocks of `rows` x `cols` of `table`, cut between column groups into as few parts of <= `most` columns as
    can be, as even as can be; a cell in `shown` (printed beside ours in a block above) is None."""
    units: list[list[int]] = []
    for j in cols:
        if units and table.columns[j].group and table.columns[units[-1][-1]].group == table.columns[j].group:
            units[-1].append(j)
        else:
            units.append([j])
    fewest = len(_pack(units, most))
    parts = next(p for cap in range(-(-len(cols) // fewest), most + 1) if len(p := _pack(units, cap)) == fewest)
    notes = sorted({table.rows[i].cells[j].note for i in rows for j in cols
                    if (i, j) not in shown and table.rows[i].cells[j].note}) if paper_only else []
    grids = []
    for k, part in enumerate(parts):
        where = f" (columns {k + 1} of {len(parts)})" if len(parts) > 1 else ""
        caption = (f"{table.caption.split('.')[0]}{where}. Paper only: the paper's values where we have none"
                   if paper_only else table.caption.replace(".", where + ".", 1))
        grids.append(Grid(caption, table.row_heads, [table.columns[j] for j in part],
                          [Row(table.rows[i].labels, [None if (i, j) in shown else table.rows[i].cells[j]
                                                      for j in part], table.rows[i].ours_only) for i in rows],
                          paper_only, notes))
    return grids


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
                cells.append(_fill(cell, sr, missing, NOT_RUNNABLE_SR.get(columns[i].label, NOT_REPRODUCED_SR),
                                   model, bench, [(s, "") for s in our_sets]))
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
    columns = [Header(METRIC_NAMES[m], ours_only=d not in datasets, group=d if d in datasets else f"{d} (ours only)")
               for d in sets for m in metrics]
    return Table("table3", CAPTIONS["table3"], ("IQA method",), columns, rows, "column").finish()


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
    stand_in = {d: s for (d, _), (s, _) in ours.items() if s != d}
    columns = [Header(METRIC_NAMES[k], ours_only=k not in paper_metrics,
                      group=f"{d} (ours: {stand_in[d]})" if d in stand_in else d) for d in datasets for k in metrics]
    return Table("table5", CAPTIONS["table5"], ("Method",), columns, rows, "column").finish()


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
