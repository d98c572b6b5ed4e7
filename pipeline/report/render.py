"""Render `reports/paper_tables.html`: one self-contained file (inline CSS, figures as data URIs, no link to any
other host) that sets our metrics beside the paper's Tables 1-5 and Figs. 1, 2, 6-9.

Results lead: the header is the profile, one summary line and the warnings (random weights, random stand-ins, stale
or missing metrics), then the tables and figures. The appendix says how the numbers were made: the protocol, the
run (revision, date, datasets), the weights every network used (from the metrics files' `weights` maps and
`models/*/weights.json`), the files the download stages verified, the choices the paper does not specify and every
param the report stage declares.
"""
from __future__ import annotations

import csv
import datetime
import json
import subprocess
from pathlib import Path

import jinja2

from pipeline.fileio import write_text
from pipeline.report.choices import choices_table
from pipeline.report.figures import build_figures
from pipeline.report.tables import IQA_COUNTERPARTS, Records, build_tables, fmt, read_paper, read_records

TEMPLATE = "template.html.j2"
TABLE_OF_SET = {"table1": "Table 1, classical SR", "table2": "Table 2, real-world SR"}
SSIM_NOTES = {  # <profile>.eval_sr.ssim (pipeline/metrics/ssim.py)
    "basicsr": "eval_sr: SSIM on BT.601 Y in floating point, as BasicSR's calculate_ssim (the paper's code base), "
               "11 x 11 Gaussian window, crop border = scale",
    "matlab": "eval_sr: SSIM on BT.601 Y rounded to integers, as MATLAB's rgb2ycbcr on uint8 images (and pyiqa), "
              "11 x 11 Gaussian window, crop border = scale",
}
# How the eval stages compute their numbers (pipeline/evaluate.py, pipeline/metrics/).
PROTOCOL_NOTES = (
    "eval_sr: PSNR on the Y channel of YCbCr (ITU-R BT.601, MATLAB rgb2ycbcr; pyiqa color_space='ycbcr'), uint8 "
    "images, crop border = scale; identical images would give 80 dB (pyiqa's eps), never inf",
    "eval_sr: pyiqa LPIPS (AlexNet, v0.1) and DISTS on RGB with the same crop; lower is better",
    "eval_sr: pyiqa NIQE on Y with BasicSR's pristine model (data/weights/eval/niqe_pris_params.mat), same crop; "
    "lower is better",
    "eval_sr: bicubic is MATLAB-compatible bicubic x4 upscaling of the LR image (pyiqa.matlab_utils.imresize)",
    "eval_restore: Table 5 at scale 1 on whole images without a border crop: PSNR and SSIM on Y for deraining "
    "(Rain100L, as the deraining papers report it) and on RGB for deblurring (GoPro, as DeepDeblur and NAFNet), "
    "SSIM in eval_sr's convention; LPIPS and DISTS on RGB",
    "eval_iqa: plain scipy pearsonr / spearmanr / kendalltau (tau-b), no logistic fit",
    "eval_iqa: niqe, ilniqe, piqe, contentsep and mdfs: lower is better, so their scores are negated before "
    "correlating and a positive coefficient means agreement with the MOS; the per-image CSVs hold the raw scores",
    "eval_iqa: Table 4: the SFD-IQA variants (sfd_iqa_baseline = s_o, sfd_iqa_featd = s_o x mean Feat-D map, "
    "sfd_iqa_tgd = s_aver, sfd_iqa = Eq. 10) per subset of scores.csv's `subset` column",
)


def load_json(path: Path) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def git_revision(repo: Path) -> str:
    """`git rev-parse --short HEAD`, with '+dirty' when tracked files have changes (as `git describe --dirty`: the
    pipeline's own untracked outputs, dvc.lock among them, do not count); 'unknown' outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
        return rev + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flatten(params: dict, prefix: str = "") -> list[tuple[str, str]]:
    """Nested params as (dotted key, value) pairs; lists and scalars shown as JSON."""
    out = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += flatten(value, name + ".")
        else:
            out.append((name, show(value)))
    return out


def show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def is_random(description: str) -> bool:
    text = str(description).lower()
    return "random" in text or text.strip() == "none" or text.startswith("none ")


def weights_rows(models_dir: Path, metrics: dict[str, dict | None]) -> list[dict]:
    """[{network, weights, random}] from models/*/weights.json and the `weights` map of each metrics file."""
    rows = []
    for path in sorted(Path(models_dir).glob("*/weights.json")):
        info = json.loads(path.read_text())
        for net, desc in info.items():
            if net != "variant":
                rows.append({"network": f"models/{path.parent.name}: {net}", "weights": show(desc),
                             "random": is_random(desc)})
    for stage, data in metrics.items():
        for name, desc in (data or {}).get("weights", {}).items():
            rows.append({"network": f"{stage}: {name}", "weights": show(desc), "random": is_random(desc)})
    return rows


def download_rows(downloads_dir: Path) -> list[dict]:
    """[{entry, group, file, checksum, source, random}] of every file the download stages verified; a file whose
    checksum was pinned to random stand-ins (its source says so) is flagged like random weights."""
    rows = []
    for path in sorted(Path(downloads_dir).glob("*.json")):
        manifest = json.loads(path.read_text())
        for entry, info in manifest.get("entries", {}).items():
            for f in info["files"]:
                source = f.get("source", "")
                rows.append({"entry": entry, "group": manifest.get("group", path.stem), "file": f["file"],
                             "checksum": f["checksum"], "source": source, "random": is_random(source)})
    return rows


def _count_rows(path: Path) -> int | None:
    if not path.is_file():
        return None
    with open(path, newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def dataset_rows(metrics_dir: Path, sr: Records | None, iqa: Records | None, tsne: dict | None,
                 restore: Records | None = None) -> list[dict]:
    """[{name, use, images}] of every set the records cover; `images` from their per-image CSVs."""
    rows = []
    for table in TABLE_OF_SET:
        for name, by_model in (sr.values(table) if sr else {}).items():
            count = next((n for m in by_model if (n := _count_rows(metrics_dir / "sr" / m / f"{name}.csv"))), None)
            rows.append({"name": name, "use": TABLE_OF_SET[table], "images": count})
    for name, by_model in (restore.values("table5") if restore else {}).items():
        count = next((n for m in by_model if (n := _count_rows(metrics_dir / "restore" / m / f"{name}.csv"))), None)
        rows.append({"name": name, "use": "Table 5, restoration", "images": count})
    for name, methods in (iqa.values("table3") if iqa else {}).items():
        count = next((n for m in methods if (n := _count_rows(metrics_dir / "iqa" / m / f"{name}.csv"))), None)
        subsets = ", ".join(s for d, s in iqa.subsets("table4") if d == name)
        rows.append({"name": name, "use": "Table 3, IQA" + (f"; Table 4 sub-types: {subsets}" if subsets else ""),
                     "images": count})
    if tsne:
        rows.append({"name": "t-SNE points", "use": f"Fig. 9, {tsne.get('n_classes', '?')} classes",
                     "images": tsne.get("n_points")})
    return rows


def summary_line(revision: str, date: str, datasets: int, networks: int, random_networks: int, files: int,
                 random_files: int) -> str:
    """The report's provenance in one line (counts); the appendix has it in full."""
    return (f"git {revision} · {date} · {datasets} sets evaluated · weights of {networks} networks, "
            f"{random_networks} random · {files} downloaded files verified, {random_files} random stand-ins "
            f"· provenance, protocol, choices and params: appendix")


def paper_only_note(paper_t3: list[dict]) -> str:
    """The note naming Table 3's methods that no eval_iqa method reproduces (the README says why)."""
    paper_only = [m for m in dict.fromkeys(r["method"] for r in paper_t3) if m not in IQA_COUNTERPARTS.values()]
    return f"eval_iqa: {', '.join(paper_only)}: not run by this pipeline (the README says why), so only the " \
           "paper's values exist for them"


def build_context(params: dict, *, metrics_dir: Path, figures_dir: Path, paper_dir: Path, models_dir: Path,
                  repo: Path, now: datetime.datetime | None = None) -> dict:
    metrics_dir = Path(metrics_dir)
    sr, iqa, restore, tsne = (load_json(metrics_dir / f"{n}.json") for n in ("sr", "iqa", "restore", "tsne"))
    metrics = {"eval_sr": sr, "eval_iqa": iqa, "eval_restore": restore, "tsne": tsne}
    paper = read_paper(paper_dir)
    profile = params.get("profile", "unknown")
    sr_records, iqa_records, restore_records = (read_records(metrics_dir / f"{n}.csv", (d or {}).get("profile", "?"))
                                                for n, d in (("sr", sr), ("iqa", iqa), ("restore", restore)))
    weights = weights_rows(models_dir, metrics)
    downloads = download_rows(metrics_dir / "downloads")
    stale = [f"{stage} ran with profile {data['profile']!r}" for stage, data in metrics.items()
             if data and data.get("profile") not in (None, profile)]
    missing = [f"reports/metrics/{n}" for n, d in (("sr.csv", sr_records), ("iqa.csv", iqa_records),
                                                     ("restore.csv", restore_records), ("tsne.json", tsne))
               if d is None]
    revision, date = git_revision(repo), (now or datetime.datetime.now(datetime.UTC)).strftime("%Y-%m-%d %H:%M UTC")
    datasets = dataset_rows(metrics_dir, sr_records, iqa_records, tsne, restore_records)
    random_weights = [w["network"] for w in weights if w["random"]]
    random_files = [d["file"] for d in downloads if d["random"]]
    return {
        "profile": profile,
        "summary": summary_line(revision, date, len(datasets), len(weights), len(random_weights), len(downloads),
                                len(random_files)),
        "revision": revision,
        "date": date,
        "weights": weights,
        "random_weights": random_weights,
        "random_files": random_files,
        "downloads": downloads,
        "datasets": datasets,
        "stale": stale,
        "missing": missing,
        "notes": [*PROTOCOL_NOTES, paper_only_note(paper["table3"]),
                  SSIM_NOTES.get(((params.get(profile) or {}).get("eval_sr") or {}).get("ssim"),
                                 "eval_sr: SSIM's convention is not in the params")],
        "tables": build_tables(paper, sr_records, iqa_records, params.get("runs", {}), restore_records),
        "figures": build_figures(sr_records, iqa_records, tsne, paper, Path(figures_dir), params.get("runs", {})),
        "choices": choices_table(params, profile),
        "params": flatten(params),
    }


def render_html(context: dict) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(fmt=fmt, show=show)
    return env.get_template(TEMPLATE).render(**context)


def render_report(out: Path, params: dict, *, metrics_dir: Path = Path("reports/metrics"),
                  figures_dir: Path = Path("reports/figures"), paper_dir: Path = Path("reports/paper"),
                  models_dir: Path = Path("models"), repo: Path = Path("."),
                  now: datetime.datetime | None = None) -> Path:
    """Write the report to `out` (atomically) and return its path."""
    context = build_context(params, metrics_dir=metrics_dir, figures_dir=figures_dir, paper_dir=paper_dir,
                            models_dir=models_dir, repo=repo, now=now)
    write_text(out, render_html(context))
    return Path(out)
