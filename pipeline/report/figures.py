"""The report's figures as PNG data URIs: Fig. 1 (perception-distortion plane, Table 1), Fig. 2 (relative PLCC,
Table 3), Fig. 8 (the SR ablation) and Fig. 9 (the t-SNE stage's PNG with its silhouettes).

Figures are drawn with matplotlib's object API (no pyplot state, no display) and embedded in the HTML, so the
report is one file that opens offline. Where our LPIPS is n/a (its weights are not available offline), the
perception axis is NIQE and the caption says so; the paper's reference marks only exist on the LPIPS plane.
"""
from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from pathlib import Path

from matplotlib import colormaps
from matplotlib.figure import Figure

from pipeline.report.tables import IQA_COUNTERPARTS, METRIC_NAMES, OTHER_LABELS, Records, assign_columns, our_labels
from pipeline.run_table import evaluated_runs

REFERENCE_BENCHMARK = "DIV2K100"  # the paper's ablation set, also our reference panel for Fig. 1


@dataclass
class ReportFigure:
    id: str
    title: str
    caption: str
    uri: str | None = None  # data:image/png;base64,... or None when there is nothing to draw
    note: str = ""  # why the figure is missing or what stands in for what

    @property
    def name(self) -> str:
        """Its name in the report's contents: the paper's figure number, else its title up to the colon."""
        return self.id.replace("fig", "Fig. ") if self.id.startswith("fig") else self.title.split(":")[0]


def png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return png_uri(buf.getvalue())


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _perception_metric(points: dict[str, dict]) -> str | None:
    """LPIPS when any point has it, else NIQE, else None."""
    for metric in ("lpips", "niqe"):
        if any(_number(m.get(metric)) is not None for m in points.values() if isinstance(m, dict)):
            return metric
    return None


def _scatter_ours(ax, points: dict[str, dict], y_metric: str, labels: dict[str, str]) -> int:
    """Our models as labelled dots; returns how many had both values."""
    drawn = 0
    for i, (model, m) in enumerate(points.items()):
        x, y = (_number(m.get("psnr")), _number(m.get(y_metric))) if isinstance(m, dict) else (None, None)
        if x is None or y is None:
            continue
        ax.scatter(x, y, s=60, color=f"C{i % 10}", zorder=3)
        ax.annotate(labels.get(model, model), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
        drawn += 1
    return drawn


def _scatter_paper(ax, paper_rows: list[dict], benchmark: str) -> None:
    values = {}
    for r in paper_rows:
        if r["benchmark"] == benchmark and r["value"] is not None:
            values.setdefault(r["method"], {})[r["metric"].lower()] = r["value"]
    for method, m in values.items():
        if "psnr" in m and "lpips" in m:
            ax.scatter(m["psnr"], m["lpips"], s=40, facecolors="none", edgecolors="0.45", marker="D", zorder=2)
            ax.annotate(method, (m["psnr"], m["lpips"]), textcoords="offset points", xytext=(4, -9), fontsize=7,
                        color="0.4")


def perception_distortion(sr: Records | None, paper_t1: list[dict], labels: dict[str, str]) -> ReportFigure:
    """Fig. 1: each Table 1 set of ours on the PSNR-LPIPS plane (PSNR-NIQE where our LPIPS is n/a); the paper's
    methods as hollow grey diamonds on LPIPS panels of its benchmarks, with DIV2K100 always shown."""
    results = sr.values("table1") if sr else {}
    sets = list(results)
    panels = sets + ([REFERENCE_BENCHMARK] if REFERENCE_BENCHMARK not in sets else [])
    fig = Figure(figsize=(4.2 * len(panels), 3.6), layout="constrained")
    niqe_panels = []
    for ax, name in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        y_metric = (_perception_metric(results[name]) if name in sets else None) or "lpips"
        if name in sets and not _scatter_ours(ax, results[name], y_metric, labels):
            ax.text(0.5, 0.5, "no PSNR and LPIPS or NIQE of ours", transform=ax.transAxes, ha="center", fontsize=9)
        if y_metric == "lpips":
            _scatter_paper(ax, paper_t1, name)
        else:
            niqe_panels.append(name)
        ax.set_title(name if name in sets else f"{name}: paper only", fontsize=10)
        ax.set_xlabel("PSNR (dB) \u2192 better")
        ax.set_ylabel(f"{METRIC_NAMES[y_metric]} \u2190 better")
        ax.grid(alpha=0.3)
    notes = []
    if niqe_panels:
        notes.append(f"Our LPIPS is n/a on {', '.join(niqe_panels)}, so the perception axis there is NIQE "
                     "(no-reference, lower is better); the paper's Table 1 has no NIQE, so its methods are not drawn "
                     "there.")
    if not sets:
        notes.append("No Table 1 results of ours: " + ("reports/metrics/sr.csv not found." if sr is None
                                                       else "sr.csv has no set for table1."))
    caption = ("Filled dots: our models; hollow grey diamonds: the paper's Table 1 values on that benchmark (the "
               "paper's Fig. 1 also sizes its points by DISTS). Lower right is better.")
    return ReportFigure("fig1", "Fig. 1. Perception-distortion trade-off (Table 1)", caption, figure_uri(fig),
                        " ".join(notes))


def _relative_plcc(values: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """{dataset: {method: PLCC / max |PLCC| over the methods on that dataset}} (the best positive is 1)."""
    out = {}
    for dataset, by_method in values.items():
        scale = max((abs(v) for v in by_method.values()), default=0.0)
        if scale > 0:
            out[dataset] = {m: v / scale for m, v in by_method.items()}
    return out


def _bars(ax, rel: dict[str, dict[str, float]], colours: dict[str, tuple]) -> None:
    methods = list(dict.fromkeys(m for by_m in rel.values() for m in by_m))
    width = 0.8 / max(len(methods), 1)
    for j, method in enumerate(methods):
        xs = [i + (j - (len(methods) - 1) / 2) * width for i, d in enumerate(rel) if method in rel[d]]
        ys = [rel[d][method] for d in rel if method in rel[d]]
        ax.bar(xs, ys, width=width, color=colours[method], label=method)
    ax.set_xticks(range(len(rel)), list(rel), fontsize=8)
    ax.axhline(0, color="0.3", lw=0.6)
    ax.set_ylabel("relative PLCC")
    ax.grid(axis="y", alpha=0.3)


def relative_plcc(iqa: Records | None, paper_t3: list[dict]) -> ReportFigure:
    """Fig. 2: PLCC relative to the best method per dataset, the paper's Table 3 beside ours."""
    paper: dict[str, dict[str, float]] = {}
    for r in paper_t3:
        if r["metric"] == "PLCC" and r["value"] is not None:
            paper.setdefault(r["dataset"], {})[r["method"]] = r["value"]
    ours: dict[str, dict[str, float]] = {}
    results = iqa.values("table3") if iqa else {}
    methods = list(dict.fromkeys(m for by_m in results.values() for m in by_m))
    names = assign_columns(methods, [r["method"] for r in paper_t3], IQA_COUNTERPARTS)
    for dataset, by_method in results.items():
        for method, corr in by_method.items():
            plcc = _number(corr.get("plcc")) if isinstance(corr, dict) else None
            if plcc is not None:
                ours.setdefault(dataset, {})[names.get(method, OTHER_LABELS.get(method, method))] = plcc
    all_methods = list(dict.fromkeys([m for d in paper.values() for m in d] + [m for d in ours.values() for m in d]))
    colours = {m: colormaps["tab20"](i % 20) for i, m in enumerate(all_methods)}
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    ax_paper, ax_ours = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    _bars(ax_paper, _relative_plcc(paper), colours)
    ax_paper.set_title("Paper (Table 3)", fontsize=10)
    rel_ours = _relative_plcc(ours)
    if rel_ours:
        _bars(ax_ours, rel_ours, colours)
    else:
        ax_ours.text(0.5, 0.5, "no PLCC of ours", transform=ax_ours.transAxes, ha="center")
        ax_ours.set_axis_off()
    ax_ours.set_title("Ours", fontsize=10)
    handles = {label: h for ax in (ax_paper, ax_ours) for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=8, fontsize=8, frameon=False)
    caption = ("PLCC of each method divided by the largest |PLCC| among the methods shown on that dataset, so the "
               "best method reaches 1. NIQE-like scores are correlated negated (see the IQA notes).")
    note = "" if iqa else "reports/metrics/iqa.csv not found (run the eval_iqa stage): only the paper's bars."
    return ReportFigure("fig2", "Fig. 2. Relative PLCC of OU NR-IQA methods (Table 3)", caption, figure_uri(fig),
                        note)


def ablation_models(runs: dict) -> list[str]:
    """Fig. 8's points: bicubic and Table 1's RRDBNet runs (the PSNR model and the GAN variants)."""
    return ["bicubic", *(run for run, entry in evaluated_runs(runs)
                         if entry["backbone"] == "rrdbnet" and "table1" in (entry.get("columns") or {}))]


def ablation(sr: Records | None, models: list[str], labels: dict[str, str]) -> ReportFigure:
    """Fig. 8: `models` (bicubic, the PSNR model and the GAN variants) on the PSNR-LPIPS (else PSNR-NIQE) plane."""
    title = "Fig. 8. Effects of Feat-D and TG-D on perceptual SR"
    results = sr.values("table1") if sr else {}
    sets = list(results)
    if not sets:
        why = "reports/metrics/sr.csv not found" if sr is None else "sr.csv has no Table 1 set"
        return ReportFigure("fig8", title, "", None, f"{why} (run the eval_sr stage).")
    name = REFERENCE_BENCHMARK if REFERENCE_BENCHMARK in sets else sets[0]
    points = {m: results[name][m] for m in models if m in results[name]}
    y_metric = _perception_metric(points)
    if y_metric is None:
        return ReportFigure("fig8", title, "", None, f"Neither LPIPS nor NIQE of ours on {name}.")
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = fig.subplots()
    _scatter_ours(ax, points, y_metric, labels)
    ax.set_title(name, fontsize=10)
    ax.set_xlabel("PSNR (dB) \u2192 better")
    ax.set_ylabel(f"{METRIC_NAMES[y_metric]} \u2190 better")
    ax.grid(alpha=0.3)
    caption = (f"Our runs on {name}: the ESRGAN baseline (image discriminator), w/ Feat-D, w/ TG-D and SFD (both), "
               "with bicubic and the PSNR-oriented starting model for scale. The paper draws Fig. 8 on DIV2K100 and "
               "publishes no numbers for it.")
    note = "" if y_metric == "lpips" else "Our LPIPS is n/a, so the perception axis is NIQE (lower is better)."
    return ReportFigure("fig8", title, caption, figure_uri(fig), note)


def _scores(scores: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in scores.items())


def tsne(png: Path, meta: dict | None) -> ReportFigure:
    """Fig. 9: the t-SNE stage's own PNG, embedded, with its silhouettes in the caption."""
    if meta:
        caption = (f"Silhouette scores of the 2-D embeddings (higher: categories better separated): "
                   f"{_scores(meta.get('silhouette', {}))}; {meta.get('n_points', '?')} points in "
                   f"{meta.get('n_classes', '?')} classes. ")
        if meta.get("silhouette_features"):
            caption += ("Silhouette of the pooled features themselves (independent of the t-SNE layout): "
                        f"{_scores(meta['silhouette_features'])}. ")
        caption += f"Features: {meta.get('source', 'not stated')}."
    else:
        caption = "reports/metrics/tsne.json not found: no silhouette scores."
    return stage_png("fig9", "Fig. 9. t-SNE of vanilla discriminator features vs Feat-D features", caption, png,
                     "tsne")


SR_CROPS = {"fig6": ("table1", "Fig. 6. Visual comparison of GAN-based x4 SR (classical)"),
            "fig7": ("table2", "Fig. 7. Visual comparison of GAN-based real-world x4 SR")}


def stage_png(figure: str, title: str, caption: str, png: Path, stage: str) -> ReportFigure:
    """A figure a stage drew, embedded; a note naming the stage when its PNG is missing."""
    if not Path(png).is_file():
        return ReportFigure(figure, title, "", None, f"{png} not found (run the {stage} stage).")
    return ReportFigure(figure, title, caption, png_uri(Path(png).read_bytes()))


def sr_crops(figure: str, png: Path) -> ReportFigure:
    """Figs. 6-7: the eval_sr stage's PNG of one table's zoomed crops."""
    table, title = SR_CROPS[figure]
    caption = (f"Per test set of {table.replace('table', 'Table ')}, its first image as each model super-resolved "
               "it (bicubic first; columns named by run) and HR, cropped where the baseline and ours named in "
               "<profile>.eval_sr.crops differ most; each crop's PSNR (RGB, dB) against HR.")
    return stage_png(figure, title, caption, png, "eval_sr")


def restore_crops(png: Path) -> ReportFigure:
    """Table 5's visual comparison: the eval_restore stage's PNG of restored crops."""
    caption = ("Per task, the first test image: its input, each run's output and the ground truth, cropped where "
               "the fidelity model and + Ours differ most; each crop's PSNR (RGB, dB) against the ground truth.")
    return stage_png("table5-crops", "Table 5 crops: restored images of deraining and deblurring", caption, png,
                     "eval_restore")


def build_figures(sr: Records | None, iqa: Records | None, tsne_meta: dict | None, paper: dict[str, list[dict]],
                  figures_dir: Path, runs: dict) -> list[ReportFigure]:
    """Figs. 1, 2, 6, 7, 8, 9 and Table 5's crops from the records and the PNGs in `figures_dir`; `runs` is
    params.yaml's run table (our runs' labels and Fig. 8's points)."""
    labels, figures_dir = our_labels(runs), Path(figures_dir)
    return [perception_distortion(sr, paper["table1"], labels), relative_plcc(iqa, paper["table3"]),
            *(sr_crops(f, figures_dir / f"sr_crops_{table}.png") for f, (table, _) in SR_CROPS.items()),
            ablation(sr, ablation_models(runs), labels), tsne(figures_dir / "tsne.png", tsne_meta),
            restore_crops(figures_dir / "restore_crops.png")]
