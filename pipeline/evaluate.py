"""The evaluation stages' work: Tables 1-2 (`eval_sr`), Table 5 (`eval_restore`) and Tables 3-4 (`eval_iqa`), in the
formats the report reads.

eval_sr: each model of a table super-resolves the LR images of that table's sets (`bicubic` is MATLAB's bicubic x4,
our models are models/<name>/generator.safetensors, external checkpoints are listed in params) ->
`data/results/<model>/<set>/<name>.png`, per-image metrics `reports/metrics/sr/<model>/<set>.csv`
(image,psnr,ssim,lpips,dists,niqe), their means as records (below) in `reports/metrics/sr.csv`.

eval_restore: Table 5's runs restore their task's test sets at scale 1 the same way (score_set), PSNR and SSIM on the
channel each benchmark uses -> `data/restore_results/`, `reports/metrics/restore/`, `reports/metrics/restore.csv`.

eval_iqa: SFD-IQA (all four Table 4 variants from one pass per image), the no-reference methods of Table 3 that
pyiqa implements, and ContentSep and MDFS (pipeline.metrics) score every image of the IQA sets ->
`reports/metrics/iqa/<method>/<set>.csv` (image,score,mos) and records of PLCC/SRCC/KRCC per set (Table 3), and
per subset (Table 4) for the SFD-IQA variants, in `reports/metrics/iqa.csv`.

Records are long rows (table, set, subset, method, metric, value, reason): one number each, or an empty value and
the reason it could not be computed honestly here (missing weights, an undefined correlation). Data only: what
the numbers mean is the report's to say. `sr.json` / `iqa.json` hold the same numbers nested (results: set,
method, metric; subsets: set, subset, method, metric) for `dvc metrics show` and `dvc exp show`, with the profile
and the weights each method used.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from pyiqa.matlab_utils import imresize
from tqdm import tqdm

from pipeline.checkpoint import CheckpointError
from pipeline.crops import crop_panel
from pipeline.data.iqa_sets import IQARow
from pipeline.data.synthesize import OUT_ROOTS, find_set
from pipeline.fileio import list_images, read_image, write_image, write_json, write_text
from pipeline.metrics.contentsep import load_contentsep
from pipeline.metrics.correlation import correlations
from pipeline.metrics.dipiq import load_dipiq
from pipeline.metrics.dualformer import SETS as DUALFORMER_SETS
from pipeline.metrics.dualformer import load_dualformer
from pipeline.metrics.mdfs import load_mdfs
from pipeline.metrics.niqe_params import NIQE_MAT
from pipeline.metrics.rankiqa import load_rankiqa
from pipeline.metrics.recycled import SETS as RECYCLED_SETS
from pipeline.metrics.recycled import load_recycled
from pipeline.metrics.pyiqa_metrics import (
    NA,
    MetricUnavailable,
    create_metric,
    score_or_reason,
    weight_files,
)
from pipeline.metrics.sr_metrics import NIQE_MIN_SIZE, SR_METRICS, SRMetrics
from pipeline.param_schema import PYIQA_METHODS
from pipeline.run_table import SR_TABLES, TASKS, evaluated_runs
from pipeline.sfd_iqa import load_sfd_iqa
from pipeline.sr import read_generator, upscale_image
from pipeline.tensor_image import to_tensor, to_uint8
from pipeline.trainer import default_device

SR_SET_ROOTS, IQA_SETS, MODELS = (OUT_ROOTS["sr"], OUT_ROOTS["real_pairs"]), OUT_ROOTS["iqa"], Path("models")
RESTORE_SETS = OUT_ROOTS["restore"]
RESULTS, RESTORE_RESULTS, METRICS = Path("data/results"), Path("data/restore_results"), Path("reports/metrics")
TORCH_HOME, NIQE_PARAMS = Path("data/weights/eval/torch"), NIQE_MAT

BICUBIC = "bicubic"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # model names become folder names
SR_COLUMNS = ("image", *SR_METRICS)
IQA_COLUMNS = ("image", "score", "mos")
# SFD-IQA's variant (pipeline.sfd_iqa, Table 4's columns) -> the method it is recorded as
SFD_IQA_METHODS = {"full": "sfd_iqa", "baseline": "sfd_iqa_baseline", "featd": "sfd_iqa_featd", "tgd": "sfd_iqa_tgd"}
# Table 3's methods outside pyiqa -> their loaders, called with the files of the method's eval_iqa param
OTHER_IQA = {"contentsep": load_contentsep, "mdfs": load_mdfs, "recycled": load_recycled,
             "dualformer": load_dualformer, "rankiqa": load_rankiqa, "dipiq": load_dipiq}
# Methods whose network depends on the set (RecycleD, DualFormer: a critic per set) -> the sets they have one for;
# they are called with the set's name and are n/a on the other sets
PER_SET_IQA = {"recycled": RECYCLED_SETS, "dualformer": DUALFORMER_SETS}
IQA_LOWER_BETTER = ("niqe", "ilniqe", "piqe", "contentsep", "mdfs")  # RecycleD, DualFormer, RankIQA, dipIQ: higher

RECORD_COLUMNS = ("table", "set", "subset", "method", "metric", "value", "reason")
CORRELATIONS = ("plcc", "srcc", "krcc")
BICUBIC_WEIGHTS = "no network: MATLAB-compatible bicubic x4 upscaling of the LR image (pyiqa.matlab_utils.imresize)"


def _cell(value) -> str:
    return value if isinstance(value, str) else f"{value:.10g}"  # n/a or text as it is; SFD-IQA scores can be tiny


def write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([row[columns[0]], *(_cell(row[c]) for c in columns[1:])] for row in rows)
    write_text(path, buf.getvalue())


def record(table: str, set_name: str, subset: str, method: str, metric: str, value, reason: str | None) -> dict:
    """One record; `value` NA (or None) makes it an n/a with its `reason`."""
    if value in (NA, None):
        return dict(zip(RECORD_COLUMNS, (table, set_name, subset, method, metric, "", reason or "no reason recorded")))
    return dict(zip(RECORD_COLUMNS, (table, set_name, subset, method, metric, float(value), "")))


def write_records(metrics_dir: Path, name: str, records: list[dict], profile: str, weights: dict) -> None:
    """`<name>.csv` (the records) and `<name>.json` (their numbers nested, for DVC's metrics)."""
    write_csv(metrics_dir / f"{name}.csv", RECORD_COLUMNS,  # values as repr: they read back as the same floats
              [{**r, "value": repr(r["value"]) if r["value"] != "" else ""} for r in records])
    nested: dict = {"results": {}, "subsets": {}}  # per set, and per subset of a set
    for r in (r for r in records if r["value"] != ""):
        node = nested["subsets"].setdefault(r["set"], {}).setdefault(r["subset"], {}) if r["subset"] else \
            nested["results"].setdefault(r["set"], {})
        node.setdefault(r["method"], {})[r["metric"]] = r["value"]
    write_json(metrics_dir / f"{name}.json", {"profile": profile, "weights": weights, "results": nested["results"],
                                              **({"subsets": nested["subsets"]} if nested["subsets"] else {})})


def correlation_or_na(scores, mos, lower_better: bool, na: dict, where: str) -> dict[str, float] | str:
    try:
        return correlations(scores, mos, lower_better)
    except ValueError as e:
        na[where] = str(e)
        return NA


# ------------------------------------------------------------------------------------------------- eval_sr --

class SRModel(NamedTuple):
    name: str
    weights: Path | None  # None: bicubic
    table: str
    external: bool = False
    key: str | None = None  # the wrapper key an external checkpoint is read from (its authors' param_key)
    prior: Path | None = None  # the weights of the network that conditions it (SFTGAN's segmentation)


def sr_models(cfg: dict, tables: dict[str, list[str]], models_dir: Path = MODELS) -> list[SRModel]:
    """The models each table evaluates: `bicubic`, our runs `tables[table]` (models/<run>), then the external
    checkpoints."""
    models = [SRModel(name, None if name == BICUBIC else models_dir / name / "generator.safetensors", table)
              for table in SR_TABLES for name in (BICUBIC, *tables[table])]
    models += [SRModel(e["name"], Path(e["weights"]), e["table"], external=True, key=e.get("key"),
                       prior=Path(e["prior"]) if e.get("prior") else None) for e in cfg["external"]]
    seen = set()
    for m in models:
        if m.table not in SR_TABLES:
            raise ValueError(f"eval_sr: model {m.name} has table {m.table!r}, expected one of {SR_TABLES}")
        if not MODEL_NAME.match(m.name):
            raise ValueError(f"eval_sr: model name {m.name!r} must match {MODEL_NAME.pattern} (it names folders)")
        if (m.name, m.table) in seen:
            raise ValueError(f"eval_sr: model {m.name} is listed twice for {m.table}")
        seen.add((m.name, m.table))
    return models


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB-compatible bicubic upscaling of an H x W x 3 uint8 image, rounded to uint8."""
    return to_uint8(imresize(to_tensor(lr), scale=scale))


def load_upscaler(model: SRModel, scale: int, tile: int, overlap: int,
                  device: torch.device) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(LR uint8 -> SR uint8, a description of the weights) for one model."""
    if model.weights is None:
        return (lambda lr: bicubic_upscale(lr, scale)), BICUBIC_WEIGHTS
    net, meta = read_generator(model.weights, model.key, model.prior)
    net = net.to(device)
    if net.scale != scale:
        raise CheckpointError(f"{model.weights} is a x{net.scale} network; the evaluation is x{scale}")
    if model.external:
        description = f"public checkpoint {model.weights}" + (f" (its {model.key!r} weights)" if model.key else "") \
            + (f", conditioned by {model.prior}" if model.prior else "")
    else:
        description = f"{model.weights}" + (f" (source: {meta['source']})" if "source" in meta else "")
        info = model.weights.with_name("weights.json")
        if info.is_file():
            used = json.loads(info.read_text())
            description += f"; trained with CLIP {used.get('clip')}, VGG19 {used.get('vgg19')}"
    return (lambda lr: upscale_image(net, lr, tile, overlap, device)), description


def set_means(rows: list[dict], na: dict) -> dict[str, float | str]:
    """Each metric's mean over a set; n/a if any image lacks it."""
    means = {}
    for name in SR_METRICS:
        values = [r[name] for r in rows]
        if NA in values:
            if name == "niqe" and name not in na:
                na[name] = (f"NIQE is undefined for some images: under {NIQE_MIN_SIZE} px per side after the border "
                            f"crop, or flat")
            means[name] = NA
        else:
            means[name] = float(np.mean(values))
    return means


def evaluate_sr(cfg: dict, tables: dict[str, list[str]], profile: str, *, sets_dirs: tuple[Path, ...] = SR_SET_ROOTS,
                models_dir: Path = MODELS, results_dir: Path = RESULTS, metrics_dir: Path = METRICS,
                torch_home: Path = TORCH_HOME, niqe_params: Path = NIQE_PARAMS,
                device: torch.device | None = None) -> dict:
    """Run eval_sr with the `eval_sr` params of one profile (and the task's `scale`) on the runs of each table
    (run_table.run_tables); writes the outputs and returns sr.json's content."""
    device = device or default_device()
    scale = cfg["scale"]
    table_of = {}
    for table in SR_TABLES:
        for set_name in cfg[table]["sets"]:
            if set_name in table_of:
                raise ValueError(f"eval_sr: set {set_name} is listed in both tables")
            table_of[set_name] = table
    models = sr_models(cfg, tables, models_dir)
    metrics = SRMetrics(scale, torch_home, niqe_params, device, ssim=cfg["ssim"])
    summary = {"profile": profile, "results": {s: {} for s in table_of}, "na": dict(metrics.na), "weights": {},
               "table": table_of}
    upscalers = [load_upscaler(m, scale, cfg["tile"], cfg["tile_overlap"], device) for m in models]  # every
    # a name with other weights in each table (LDL's two public models) is reported per table
    described = {(m.name, weights) for m, (_, weights) in zip(models, upscalers)}
    per_table = {name for name, _ in described if sum(n == name for n, _ in described) > 1}
    for model, (upscale, weights) in zip(models, upscalers):  # checkpoint is checked before the work starts
        summary["weights"][f"{model.name} ({model.table})" if model.name in per_table else model.name] = weights
        for set_name in cfg[model.table]["sets"]:
            rows = score_set(model.name, upscale, find_set(set_name, sets_dirs), scale, metrics,
                             results_dir / model.name / set_name, metrics_dir / "sr" / model.name / f"{set_name}.csv")
            summary["results"][set_name][model.name] = set_means(rows, summary["na"])
    write_records(metrics_dir, "sr", sr_records(summary), profile, summary["weights"])
    return summary


def summary_lines(summary: dict) -> list[str]:
    """An eval_sr / eval_restore summary as the lines the stage prints: each set's and model's means, then the
    metrics that are n/a and why."""
    return [f"{set_name:>16} {model:>20}  " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in values.items())
            for set_name, by_model in summary["results"].items() for model, values in by_model.items()] + \
        [f"n/a {metric}: {reason}" for metric, reason in summary["na"].items()]


def score_set(model: str, restore: Callable[[np.ndarray], np.ndarray], set_dir: Path, scale: int,
              metrics: SRMetrics, results: Path, csv_path: Path) -> list[dict]:
    """One model on one test set: each `LR_x<scale>` image restored, written to `results`, scored against its HR
    image; the per-image rows, also written to `csv_path`."""
    hr_paths = list_images(set_dir / "HR")
    if not hr_paths:
        raise FileNotFoundError(f"no HR images in {set_dir / 'HR'}")
    rows = []
    for hr_path in tqdm(hr_paths, desc=f"{model}/{set_dir.name}", unit="img"):
        out = restore(read_image(set_dir / f"LR_x{scale}" / hr_path.name))
        write_image(results / f"{hr_path.stem}.png", out)
        rows.append({"image": hr_path.name, **metrics(out, read_image(hr_path))})
    write_csv(csv_path, SR_COLUMNS, rows)
    return rows


def sr_records(summary: dict) -> list[dict]:
    """Every (set, model, metric) of an eval_sr or eval_restore summary as a record, an n/a with its metric's
    reason."""
    return [record(summary["table"][set_name], set_name, "", model, metric, value, summary["na"].get(metric))
            for set_name, by_model in summary["results"].items() for model, means in by_model.items()
            for metric, value in means.items()]


# -------------------------------------------------------------------------------------------- eval_restore --

def evaluate_restore(cfg: dict, runs: dict[str, list[str]], profile: str, *, sets_dir: Path = RESTORE_SETS,
                     models_dir: Path = MODELS, results_dir: Path = RESTORE_RESULTS, metrics_dir: Path = METRICS,
                     torch_home: Path = TORCH_HOME, niqe_params: Path = NIQE_PARAMS,
                     device: torch.device | None = None) -> dict:
    """Table 5: the runs of each restoration task (`runs`: task -> runs, from the run table) restore that task's
    test sets (`cfg[task]["sets"]`, scale 1) -> `data/restore_results/<run>/<set>/`, per-image metrics in
    `reports/metrics/restore/<run>/<set>.csv`, their means as table5 records in `reports/metrics/restore.csv`.
    PSNR and SSIM on the channel the task's benchmark uses (run_table.TASKS), no border crop."""
    device = device or default_device()
    summary = {"profile": profile, "results": {}, "na": {}, "weights": {}, "table": {}}
    for task, task_runs in runs.items():
        metrics = SRMetrics(0, torch_home, niqe_params, device, ssim=cfg["ssim"], channel=TASKS[task].channel)
        summary["na"].update(metrics.na)
        models = [SRModel(run, models_dir / run / "generator.safetensors", "table5") for run in task_runs]
        restorers = [load_upscaler(m, 1, cfg["tile"], cfg["tile_overlap"], device) for m in models]
        for model, (restore, weights) in zip(models, restorers):
            summary["weights"][model.name] = weights
            for set_name in cfg[task]["sets"]:
                rows = score_set(model.name, restore, sets_dir / set_name, 1, metrics,
                                 results_dir / model.name / set_name,
                                 metrics_dir / "restore" / model.name / f"{set_name}.csv")
                summary["results"].setdefault(set_name, {})[model.name] = set_means(rows, summary["na"])
                summary["table"][set_name] = "table5"
    write_records(metrics_dir, "restore", sr_records(summary), profile, summary["weights"])
    return summary


def sr_figure(sets: list[str], models: list[str], compare: list[str], out: Path, size: int, *,
              sets_dirs: tuple[Path, ...] = SR_SET_ROOTS, results_dir: Path = RESULTS) -> None:
    """Figs. 6-7: per test set, its first image as each model super-resolved it (bicubic first) and the HR image,
    cropped where the two models `compare` (a baseline and ours) differ most; without one of them, the first and
    last model."""
    pair = tuple(compare) if set(compare) <= set(models) else (models[0], models[-1])
    rows = []
    for set_name in sets:
        set_dir = find_set(set_name, sets_dirs)
        hr_path = list_images(set_dir / "HR")[0]
        images = {m: read_image(results_dir / m / set_name / f"{hr_path.stem}.png") for m in models}
        rows.append((f"{set_name}/{hr_path.name}", {**images, "HR": read_image(hr_path)}, pair))
    crop_panel(rows, "HR", size, out)


def restore_figure(cfg: dict, runs: dict[str, list[str]], run_table: dict, out: Path, size: int = 96, *,
                   sets_dir: Path = RESTORE_SETS, results_dir: Path = RESTORE_RESULTS) -> None:
    """Table 5's visual comparison: per task, the first image of its first test set, as input, each run's output
    (labelled by its Table 5 column) and ground truth, cropped where the task's first and last run (the fidelity
    model and + Ours) differ most."""
    entries, rows = dict(evaluated_runs(run_table)), []
    for task, task_runs in runs.items():
        set_name = cfg[task]["sets"][0]
        hr_path = list_images(sets_dir / set_name / "HR")[0]
        images = {"input": read_image(sets_dir / set_name / "LR_x1" / hr_path.name)}
        for run in task_runs:
            images[entries[run]["columns"]["table5"] or run] = read_image(results_dir / run / set_name /
                                                                          f"{hr_path.stem}.png")
        images["ground truth"] = read_image(hr_path)
        names = list(images)
        rows.append((f"{task}: {set_name}/{hr_path.name}", images, (names[1], names[-2])))
    crop_panel(rows, "ground truth", size, out)


# ------------------------------------------------------------------------------------------------ eval_iqa --

def read_scores(path: Path) -> list[IQARow]:
    """The rows of an IQA set's scores.csv (image,mos,subset,split)."""
    with open(path, newline="", encoding="utf-8") as f:
        return [IQARow(r["image"], float(r["mos"]), r.get("subset") or "", r.get("split") or "")
                for r in csv.DictReader(f)]


def iqa_scorers(cfg: dict, alpha1: float, alpha2: float, torch_home: Path, niqe_params: Path, device: torch.device,
                summary: dict) -> list[Callable[[torch.Tensor, str], dict[str, float | str]]]:
    """Functions (image, set name) -> {method: score} for every method that can run (on that set); the others go
    to summary["na"]. A score that is a str is why the method cannot score that image: it is n/a on the set."""
    scorers = []
    path = Path(cfg["sfd_iqa"])
    if path.is_file():
        model = load_sfd_iqa(path, clip_position=cfg["clip_position"], alpha1=alpha1, alpha2=alpha2,
                             max_pixels=cfg["max_pixels"], tile=cfg["tile"], tile_margin=cfg["tile_margin"]).to(device)
        for variant, method in SFD_IQA_METHODS.items():
            summary["weights"][method] = (f"Feat-D and LPP of {path}, CLIP {model.encoder.arch} with "
                                          f"{model.encoder.weights_description} weights, attention-pool position "
                                          f"embedding {model.encoder.position}; variant {variant}, "
                                          f"alpha1 {alpha1}, alpha2 {alpha2}")
        scorers.append(lambda x, _: {SFD_IQA_METHODS[v]: s.item() for v, s in model.scores(x).items()})
    else:
        for method in SFD_IQA_METHODS.values():
            summary["na"][method] = f"SFD-IQA checkpoint not found: {path} (the train_real stage writes it)"
    for name in cfg["pyiqa_methods"]:
        if name not in PYIQA_METHODS:
            raise ValueError(f"eval_iqa: pyiqa method {name!r} is not one of the opinion-unaware methods in pyiqa it "
                             f"runs: {PYIQA_METHODS}")
        try:
            metric = create_metric(name, torch_home, device, niqe_params)
        except MetricUnavailable as e:
            summary["na"][name] = e.reason
            continue
        files = ", ".join(str(f) for f in weight_files(name, torch_home, niqe_params))
        summary["weights"][name] = f"pyiqa {name} with {files}"
        scorers.append(partial(pyiqa_score, name, metric))
    for method, load in OTHER_IQA.items():
        files = cfg[method]
        try:
            metric = load(**files, device=device)
        except MetricUnavailable as e:
            summary["na"][method] = e.reason
            continue
        summary["weights"][method] = ", ".join(f"{role} {path}" for role, path in files.items())
        scorers.append(partial(other_iqa_score, method, metric))
    return scorers


def pyiqa_score(name: str, metric: Callable, x: torch.Tensor, _set_name: str) -> dict[str, float | str]:
    """A pyiqa method's score of one image, or why it has none: NIQE needs a 96 px block and a non-flat image."""
    if name == "niqe" and min(x.shape[-2:]) < NIQE_MIN_SIZE:
        return {name: f"a {x.shape[-1]} x {x.shape[-2]} image holds no {NIQE_MIN_SIZE} px NIQE block"}
    return {name: score_or_reason(metric, x)}


def other_iqa_score(method: str, metric: Callable, x: torch.Tensor, set_name: str) -> dict[str, float | str]:
    """An OTHER_IQA method's score of one image, or why it cannot score it; nothing on a set it has no
    configuration for."""
    if method in PER_SET_IQA and set_name not in PER_SET_IQA[method]:
        return {}
    try:
        return {method: (metric(x, set_name) if method in PER_SET_IQA else metric(x)).item()}
    except MetricUnavailable as e:
        return {method: e.reason}


def iqa_methods(cfg: dict) -> tuple[str, ...]:
    """Every method eval_iqa scores, in the order of its results."""
    return *SFD_IQA_METHODS.values(), *cfg["pyiqa_methods"], *OTHER_IQA


def evaluate_iqa(cfg: dict, profile: str, alpha1: float, alpha2: float, *, iqa_dir: Path = IQA_SETS,
                 metrics_dir: Path = METRICS, torch_home: Path = TORCH_HOME, niqe_params: Path = NIQE_PARAMS,
                 device: torch.device | None = None) -> dict:
    """Run eval_iqa with the `eval_iqa` params of one profile; writes the outputs and returns iqa.json's content."""
    device = device or default_device()
    sets = {name: read_scores(iqa_dir / name / "scores.csv") for name in cfg["sets"]}
    summary = {"profile": profile, "results": {}, "subsets": {}, "na": {}, "weights": {}}
    scorers = iqa_scorers(cfg, alpha1, alpha2, torch_home, niqe_params, device, summary)
    methods = [m for m in iqa_methods(cfg) if m not in summary["na"]]
    for set_name, rows in sets.items():
        scores = {m: [] for m in methods}
        unscored = {}  # method -> why it cannot score one of the set's images
        for row in tqdm(rows, desc=f"eval_iqa {set_name}", unit="img"):
            x = to_tensor(read_image(iqa_dir / set_name / "images" / row.image)).to(device)
            with torch.inference_mode():
                for scorer in scorers:
                    for method, value in scorer(x, set_name).items():
                        if isinstance(value, str):
                            unscored.setdefault(method, f"{method} cannot score {row.image}: {value}")
                        else:
                            scores[method].append(value)
        mos = [r.mos for r in rows]
        results = summary["results"][set_name] = {}
        for method in iqa_methods(cfg):
            if method in scores and method in PER_SET_IQA and set_name not in PER_SET_IQA[method]:
                summary["na"][f"{method} on {set_name}"] = (
                    f"{method} has a configuration for {', '.join(PER_SET_IQA[method])} only, not {set_name}")
                results[method] = NA
                continue
            if method not in scores:
                results[method] = NA
                continue
            if method in unscored:
                summary["na"][f"{method} on {set_name}"] = unscored[method]
                results[method] = NA
                continue
            write_csv(metrics_dir / "iqa" / method / f"{set_name}.csv", IQA_COLUMNS,
                      [{"image": r.image, "score": s, "mos": r.mos} for r, s in zip(rows, scores[method])])
            results[method] = correlation_or_na(scores[method], mos, method in IQA_LOWER_BETTER, summary["na"],
                                                f"{method} on {set_name}")
        subsets = sorted({r.subset for r in rows if r.subset})
        if subsets and SFD_IQA_METHODS["full"] in scores:
            summary["subsets"][set_name] = {}
            for subset in subsets:
                index = [i for i, r in enumerate(rows) if r.subset == subset]
                summary["subsets"][set_name][subset] = {
                    method: correlation_or_na([scores[method][i] for i in index], [mos[i] for i in index], False,
                                              summary["na"], f"{method} on {set_name}/{subset}")
                    for method in SFD_IQA_METHODS.values()}
    write_records(metrics_dir, "iqa", iqa_records(summary), profile, summary["weights"])
    return summary


def iqa_records(summary: dict) -> list[dict]:
    """Every correlation of an eval_iqa summary as a record: Table 3's per set, Table 4's per subset; an n/a with
    the reason of its cell, else of its method."""
    na = summary["na"]

    def rows(table: str, set_name: str, subset: str, by_method: dict) -> list[dict]:
        where = f"{set_name}/{subset}" if subset else set_name
        return [record(table, set_name, subset, method, metric, NA if corr == NA else corr[metric],
                       na.get(f"{method} on {where}") or na.get(method))
                for method, corr in by_method.items() for metric in CORRELATIONS]

    return [*(r for s, by_method in summary["results"].items() for r in rows("table3", s, "", by_method)),
            *(r for s, by_subset in summary["subsets"].items() for subset, by_method in by_subset.items()
              for r in rows("table4", s, subset, by_method))]
