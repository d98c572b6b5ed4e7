"""The report: tables beside the paper's, n/a reasons, best marks, a self-contained page, the choices list."""
import csv
import datetime
import json
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from pipeline.report.choices import CHOICES, choices_table, resolve
from pipeline.evaluate import iqa_records, record, sr_records, write_records
from pipeline.report.render import flatten, git_revision, paper_only_note, render_report
from pipeline.report.tables import (NOT_TRAINED_RESTORE, Cell, Header, Row, Table, build_tables, mark_best,
                                    read_paper, read_records)
from stages.report import reads

ROOT = Path(__file__).resolve().parents[1]
RUNS = yaml.safe_load((ROOT / "params.yaml").read_text())["runs"]
LPIPS_REASON = ("weights not available: data/weights/torch/hub/pyiqa/LPIPS_v0.1_alex-df73285e.pth "
                "(run the paper profile's download stage online)")
CLIPIQA_REASON = "weights not available: data/weights/torch/hub/pyiqa/CLIP-IQA.pth"
QUICK_IMAGES = ("chelsea", "grace_hopper", "moon", "rocket")


def _sr_entry(psnr, ssim, lpips, niqe):
    return {"psnr": psnr, "ssim": ssim, "lpips": lpips, "dists": "n/a" if lpips == "n/a" else lpips + 0.02,
            "niqe": niqe}


def _corr(p):
    return {"plcc": p, "srcc": p - 0.05, "krcc": p - 0.1}


def write_fixture(root: Path, images=QUICK_IMAGES) -> dict:
    """Metrics in the eval/tsne stages' formats under `root`, written by the eval stages' own writer from summaries
    as theirs: reports/metrics/{sr,iqa}.{csv,json} and tsne.json with per-image CSVs, reports/figures/tsne.png,
    models/<run>/weights.json. Returns the params of a quick run."""
    metrics, rng = root / "reports" / "metrics", np.random.default_rng(0)
    quick = {m: _sr_entry(24.0 + i, 0.6 + i / 100, "n/a", 7.0 - i / 2)
             for i, m in enumerate(("bicubic", "psnr", "esrgan", "featd", "tgd", "sfd"))}
    sr = {"profile": "quick",
          "results": {"quick_test": quick,
                      "Set5": {"sfd": _sr_entry(31.0, 0.870, 0.070, 5.0), "esrgan": _sr_entry(30.0, 0.850, 0.060, 4.0),
                               "ESRGAN-public": _sr_entry(30.4, 0.852, 0.080, 4.5)},
                      "quick_real": {m: _sr_entry(22.0 + i, 0.5, "n/a", 8.0 - i) for i, m in
                                     enumerate(("bicubic", "psnr", "real"))}},
          "na": {"lpips": LPIPS_REASON, "dists": LPIPS_REASON.replace("LPIPS_v0.1_alex-df73285e", "DISTS_weights")},
          "weights": {"sfd": "generator trained with CLIP random (seed 0), VGG19 none", "bicubic": "no network"},
          "table": {"quick_test": "table1", "Set5": "table1", "quick_real": "table2"}}
    for set_name, by_model in sr["results"].items():
        for model, values in by_model.items():
            rows = [{"image": f"{n}.png", **{k: (round(v + rng.normal(0, 0.5), 4) if v != "n/a" else "n/a")
                                               for k, v in values.items()}} for n in images]
            _write_csv(metrics / "sr" / model / f"{set_name}.csv", ["image", "psnr", "ssim", "lpips", "dists", "niqe"],
                       rows)
    iqa = {"profile": "quick",
           "results": {"quick_distortions": {"sfd_iqa": _corr(0.6), "niqe": _corr(0.7), "clipiqa": "n/a",
                                             "sfd_iqa_baseline": _corr(0.3)}},
           "subsets": {"quick_distortions": {"jpeg": {"sfd_iqa_baseline": _corr(0.2), "sfd_iqa_featd": _corr(0.4),
                                                      "sfd_iqa_tgd": _corr(0.3), "sfd_iqa": _corr(0.5)}},
                       "KonIQ-10k": {"train": {"sfd_iqa_baseline": _corr(0.69), "sfd_iqa_featd": "n/a",
                                               "sfd_iqa": _corr(0.76)}}},
           "na": {"clipiqa": CLIPIQA_REASON, "sfd_iqa_featd on KonIQ-10k/train": "fewer than 3 scores"},
           "weights": {"sfd_iqa": "models/real/sfd_iqa.safetensors, CLIP random (seed 0)"}}
    for method in ("sfd_iqa", "niqe", "sfd_iqa_baseline"):
        mos = np.repeat(np.arange(5, 0, -1.0), len(images))
        rows = [{"image": f"{n}_jpeg_{k}.png", "score": round(float(m + rng.normal(0, 1.0)), 4), "mos": m}
                for (k, n), m in zip(((k, n) for n in images for k in range(1, 6)), mos)]
        _write_csv(metrics / "iqa" / method / "quick_distortions.csv", ["image", "score", "mos"], rows)
    tsne = {"profile": "quick", "silhouette": {"image_d": 0.05, "featd": 0.31}, "n_points": 48, "n_classes": 4,
            "weights": {"featd": "models/sfd/sfd_iqa.safetensors"}, "source": "esrgan image_d vs sfd Feat-D"}
    restore = {("quick_rain_test", "nafnet_derain"): 30.5, ("quick_rain_test", "derain_vd"): 29.5,
               ("quick_rain_test", "derain_sfd"): 29.8, ("quick_blur_test", "nafnet_deblur"): 27.25,
               ("quick_blur_test", "deblur_sfd"): 26.5}  # deblur_vd not trained
    write_records(metrics, "restore", [
        record("table5", set_name, "", run, metric, value, LPIPS_REASON if value is None else None)
        for (set_name, run), psnr in restore.items()
        for metric, value in (("psnr", psnr), ("ssim", 0.8), ("lpips", None), ("dists", None))], "quick", {})
    for (set_name, run), psnr in restore.items():
        _write_csv(metrics / "restore" / run / f"{set_name}.csv", ["image", "psnr"],
                   [{"image": f"{n}.png", "psnr": psnr} for n in images])
    write_records(metrics, "sr", sr_records(sr), "quick", sr["weights"])
    write_records(metrics, "iqa", iqa_records(iqa), "quick", iqa["weights"])
    (metrics / "tsne.json").write_text(json.dumps(tsne))
    (metrics / "downloads").mkdir()  # the download stages' manifests (stages/download.py)
    (metrics / "downloads" / "weights.json").write_text(json.dumps({"profile": "quick", "group": "weights", "entries": {
        "vgg19": {"kind": "weights", "target": "data/weights/torch/hub/checkpoints/vgg19-dcbb9e9d.pth",
                  "files": [{"file": "vgg19-dcbb9e9d.pth", "checksum": "sha256-prefix dcbb9e9d",
                             "source": "torchvision file name"}]},
        "clip_rn50_openai": {"kind": "weights", "target": "data/weights/clip/x.safetensors",
                             "files": [{"file": "open_clip_model.safetensors", "checksum": "sha256 " + "0" * 64,
                                        "source": "stand-in (random values)"}]}}}))
    figures = root / "reports" / "figures"
    figures.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(figures / "tsne.png")
    for name in ("restore_crops", "sr_crops_table1", "sr_crops_table2"):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(figures / f"{name}.png")
    (root / "models" / "sfd").mkdir(parents=True)
    (root / "models" / "sfd" / "weights.json").write_text(json.dumps({"clip": "random (seed 0)", "vgg19": "none",
                                                                      "variant": "sfd"}))
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def _write_csv(path: Path, fields, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


def render_fixture(root: Path, before=None) -> Path:
    """The report of write_fixture's metrics; `before(root)` may change them first."""
    params = write_fixture(root)
    if before:
        before(root)
    return render_report(root / "reports" / "paper_tables.html", params, metrics_dir=root / "reports" / "metrics",
                         figures_dir=root / "reports" / "figures", paper_dir=ROOT / "reports" / "paper",
                         models_dir=root / "models", repo=root,
                         now=datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC))


class Page(HTMLParser):
    """Every element's attributes and the text inside elements with an id."""

    def __init__(self):
        super().__init__()
        self.attrs, self.ids, self.open = [], {}, []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs.append((tag, attrs))
        if tag not in ("br", "img", "meta", "link", "input"):
            self.open.append(attrs.get("id"))
            if attrs.get("id"):
                self.ids[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if self.open:
            self.open.pop()

    def handle_data(self, data):
        for i in filter(None, self.open):
            self.ids[i] += data


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    html = render_fixture(root).read_text()
    parser = Page()
    parser.feed(html)
    return html, parser


def _fixture_tables(tmp_path):
    write_fixture(tmp_path)
    sr, iqa = (read_records(tmp_path / "reports" / "metrics" / f"{n}.csv", "quick") for n in ("sr", "iqa"))
    return {t.id: t for t in build_tables(read_paper(ROOT / "reports" / "paper"), sr, iqa, RUNS)}


def _row(table, *labels):
    return next(r for r in table.rows if r.labels == labels)


def _col(table, label):
    return [h.label for h in table.columns].index(label)


def test_every_table_and_figure_of_the_paper_appears(page):
    _, parser = page
    for i in range(1, 6):
        assert f"table{i}" in parser.ids and f"table{i}-table" in parser.ids
        assert f"Table {i}." in parser.ids[f"table{i}-table"]
    for i in (1, 2, 6, 7, 8, 9):
        assert f"Fig. {i}." in parser.ids[f"fig{i}"]
    images = [a["src"] for tag, a in parser.attrs if tag == "img"]
    assert len(images) == 7 and all(src.startswith("data:image/png;base64,") for src in images)  # + Table 5 crops


def test_no_src_or_href_leaves_the_file(page):
    _, parser = page
    links = [(k, v) for _, attrs in parser.attrs for k, v in attrs.items() if k in ("src", "href", "srcset", "action")]
    assert links, "the page has anchors and images"
    for key, value in links:
        assert value.startswith(("data:", "#")), (key, value[:80])
    targets = {v[1:] for k, v in links if v.startswith("#")}
    assert targets <= set(page[1].ids), targets - set(page[1].ids)
    assert "@import" not in page[0] and "url(" not in page[0]


def test_na_cell_shows_its_reason(page):
    html, parser = page
    assert LPIPS_REASON in unescape(html)
    assert "n/a" in parser.ids["table5-table"]
    note = next(i for i, text in parser.ids.items() if i.startswith("table1-note-") and text == LPIPS_REASON)
    assert any(tag == "a" and a.get("href") == f"#{note}" for tag, a in parser.attrs)
    table5_notes = {v for k, v in parser.ids.items() if k.startswith("table5-note-")}
    assert LPIPS_REASON in table5_notes and NOT_TRAINED_RESTORE in table5_notes
    assert CLIPIQA_REASON in {v for k, v in parser.ids.items() if k.startswith("table3-note-")}


def test_header_says_profile_weights_and_revision(page):
    html, parser = page
    assert "profile: quick" in html
    assert "unknown" in html  # the fixture folder is not a git work tree
    assert "random (seed 0)" in parser.ids["weights"] and "models/sfd: clip" in parser.ids["weights"]
    assert "2026-11-01" in html
    assert "vgg19-dcbb9e9d.pth" in parser.ids["downloads"] and "torchvision file name" in parser.ids["downloads"]
    assert "Random stand-ins.</strong> 1 downloaded file(s)" in html  # the pin of clip_rn50_openai says random
    downloads = html[html.index('id="downloads"'):]
    row_of = lambda file: downloads[downloads.rindex("<tr", 0, downloads.index(file)):]  # noqa: E731
    assert row_of("open_clip_model.safetensors").startswith('<tr class="random">')  # highlighted in the appendix
    assert row_of("vgg19-dcbb9e9d.pth").startswith('<tr class="">')                 # its source does not say random
    assert "lambda4" in parser.ids["params"] and "prompt_logit_scale" in parser.ids["choices"]


def test_results_lead_and_provenance_is_in_the_appendix(page):
    html, parser = page
    order = [html.index(f'id="{i}"') for i in ("summary", "table1-table", "table5-table", "fig9", "appendix",
                                                 "protocol", "weights", "downloads", "choices", "params")]
    assert order == sorted(order)
    assert "4 random" in parser.ids["summary"] and "7 sets evaluated" in parser.ids["summary"]
    assert "1 random stand-ins" in parser.ids["summary"] and "appendix" in parser.ids["summary"]


def test_lines_without_ours_fold_into_a_paper_only_block(tmp_path):
    t1 = _fixture_tables(tmp_path)["table1"]
    main, paper_only = t1.grids[0], t1.grids[-1]
    assert not main.paper_only and paper_only.paper_only and len(t1.grids) == 2
    # Ours: the benchmarks we evaluated (Set5, quick_test), the columns we fill; no paper-only column among them.
    assert {r.labels[0] for r in main.rows} == {"Set5", "quick_test"}
    assert "SRGAN" not in [h.label for h in main.columns] and "RRDB+Ours" in [h.label for h in main.columns]
    # Paper only: every paper value not shown above, once; the cells shown above are None.
    row = next(r for r in paper_only.rows if r.labels == ("Set5", "PSNR"))
    by_label = dict(zip((h.label for h in paper_only.columns), row.cells))
    assert by_label["SRGAN"].paper == 30.52 and by_label["RRDB+Ours"] is None
    set14 = next(r for r in paper_only.rows if r.labels == ("Set14", "PSNR"))
    assert dict(zip((h.label for h in paper_only.columns), set14.cells))["RRDB+Ours"].paper == 27.79
    assert all(h.label not in ("Bicubic", "w/ Feat-D") for h in paper_only.columns)  # nothing of the paper's there
    notes = [t1.notes[n - 1] for n in paper_only.notes]
    assert any(n.startswith("not reproduced") for n in notes) and "Set14 is not evaluated in the quick profile" in notes
    assert not any(n.startswith("not evaluated: bicubic") for n in notes)  # a reason of a cell outside the block
    # Table 4's metrics are its first row label: a row folds with its sub-type, whatever the metric
    t4 = _fixture_tables(tmp_path / "t4")["table4"]
    main, paper_only = t4.grids
    assert {r.labels[1] for r in main.rows} == {"KonIQ-10k. Train", "quick_distortions. jpeg"}
    assert {r.labels[0] for r in main.rows} == {"PLCC", "SRCC", "KRCC"}
    assert {r.labels[1] for r in paper_only.rows} == {"PIPAL. Trad.SR", "PIPAL. PSNR.SR", "PIPAL. GAN.SR",
                                                      "KonIQ-10k. Val", "KonIQ-10k. Test"}


def test_a_wide_table_splits_between_its_column_groups():
    columns = [Header(k, group=d) for d in ("A", "B", "C", "D", "E") for k in ("PLCC", "SRCC", "KRCC")]
    rows = [Row((m,), [Cell("plcc", ours=0.5, paper=0.4) for _ in columns]) for m in ("x", "y")]
    grids = Table("table3", "Table 3. IQA.", ("IQA method",), columns, rows, "column").finish().grids
    assert [g.col_groups for g in grids] == [[("A", 3), ("B", 3), ("C", 3)], [("D", 3), ("E", 3)]]
    assert [g.caption for g in grids] == ["Table 3 (columns 1 of 2). IQA.", "Table 3 (columns 2 of 2). IQA."]
    assert all(not g.paper_only and len(g.rows) == 2 for g in grids)


def test_best_per_line_respects_the_metric_direction(tmp_path):
    t1 = _fixture_tables(tmp_path)["table1"]
    psnr, lpips = _row(t1, "Set5", "PSNR"), _row(t1, "Set5", "LPIPS")
    public, ours, baseline = _col(t1, "ESRGAN"), _col(t1, "RRDB+Ours"), _col(t1, "ESRGAN baseline")
    assert (psnr.cells[ours].rank, psnr.cells[public].rank, psnr.cells[baseline].rank) == (1, 2, None)
    assert (lpips.cells[baseline].rank, lpips.cells[ours].rank, lpips.cells[public].rank) == (1, 2, None)
    assert psnr.cells[ours].paper == 31.63 and psnr.cells[ours].diff == pytest.approx(31.0 - 31.63)
    # A paper column nobody reproduces is n/a with its reason, and is never ranked.
    srgan, ranksrgan = psnr.cells[_col(t1, "SRGAN")], psnr.cells[_col(t1, "RankSRGAN")]
    assert srgan.ours is None and srgan.rank is None and "SRGAN's authors published no weights" in srgan.reason
    # a method with public weights says how to evaluate them
    assert ranksrgan.ours is None and "listing it under <profile>.eval_sr.external" in ranksrgan.reason


def test_mark_best_directions_and_ties():
    for metric, values, ranks in (("ssim", [0.7, 0.9, 0.8, None], [None, 1, 2, None]),
                                  ("dists", [0.2, 0.1, 0.3, 0.1], [2, 1, None, 1]),
                                  ("niqe", [5.0, None, 4.0], [2, None, 1]),
                                  ("srcc", [0.1, -0.5, 0.3], [2, None, 1])):
        cells = [Cell(metric, ours=v) for v in values]
        mark_best(cells)
        assert [c.rank for c in cells] == ranks, metric


def test_counterparts_and_ours_only_lines(tmp_path):
    t = _fixture_tables(tmp_path)
    t1, t2, t3, t4 = t["table1"], t["table2"], t["table3"], t["table4"]
    assert _row(t1, "quick_test", "PSNR").ours_only and not _row(t1, "Set5", "PSNR").ours_only
    assert _row(t1, "Set5", "NIQE").ours_only  # the paper's Table 1 has no NIQE
    assert [h.label for h in t1.columns if h.ours_only] == ["Bicubic", "RRDB PSNR (L1)", "ESRGAN baseline",
                                                            "w/ Feat-D", "w/ TG-D"]
    assert _row(t2, "quick_real", "PSNR").cells[_col(t2, "SFD")].ours == 24.0
    set14 = _row(t1, "Set14", "PSNR").cells[_col(t1, "RRDB+Ours")]
    assert set14.reason == "Set14 is not evaluated in the quick profile"
    niqe, sfd_iqa = _row(t3, "NIQE"), _row(t3, "SFD-IQA (Ours)")
    quick_plcc = next(i for i, h in enumerate(t3.columns) if h.ours_only)
    assert niqe.cells[quick_plcc].ours == 0.7 and niqe.cells[quick_plcc].rank == 1
    assert sfd_iqa.cells[quick_plcc].rank == 2 and sfd_iqa.cells[0].paper == 0.4252
    assert _row(t3, "CLIPQA").cells[quick_plcc].reason == CLIPIQA_REASON
    assert _row(t3, "SFD-IQA baseline (s_o)").ours_only
    konIQ = _row(t4, "PLCC", "KonIQ-10k. Train")
    assert [c.ours for c in konIQ.cells] == [0.69, None, None, 0.76] and konIQ.cells[3].paper == 0.7581
    assert konIQ.cells[1].reason == "fewer than 3 scores"
    assert konIQ.cells[2].reason == "not evaluated: sfd_iqa_tgd on KonIQ-10k/train"
    jpeg = _row(t4, "SRCC", "quick_distortions. jpeg")
    assert jpeg.ours_only and [c.rank for c in jpeg.cells] == [None, 2, None, 1]
    assert _row(t4, "KRCC", "PIPAL. Trad.SR").ours_only  # the paper's Table 4 has no KRCC


def test_missing_metrics_files_give_na_everywhere(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = render_report(tmp_path / "r.html", params, metrics_dir=tmp_path / "none", figures_dir=tmp_path / "none",
                        paper_dir=ROOT / "reports" / "paper", models_dir=tmp_path / "none", repo=tmp_path)
    html = out.read_text()
    assert "reports/metrics/sr.csv not found (run the eval_sr stage)" in html
    assert "reports/metrics/iqa.csv not found (run the eval_iqa stage)" in html
    assert "tsne.png not found (run the tsne stage)" in html
    tables = build_tables(read_paper(ROOT / "reports" / "paper"), None, None, RUNS)
    assert all(c.ours is None and c.reason for t in tables for r in t.rows for c in r.cells)


def test_choices_resolve_in_params_for_both_profiles():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for profile in ("quick", "paper"):
        declared = {k: params[k] for k in reads({**params, "profile": profile})}
        assert set(declared) == set(params) - ({"quick", "paper"} - {profile})
        rows = choices_table(declared, profile)
        assert len(rows) == len(CHOICES)
        assert not [r["key"] for r in rows if r["value"] == "missing from params.yaml"], profile
    assert resolve(params, "model.featd.widths", "paper") == params["paper"]["model"]["featd"]["widths"]
    assert resolve(params, "lambda3", "quick") == params["lambda3"]
    assert choices_table({}, "quick")[0]["value"] == "missing from params.yaml"


def test_report_stage_declares_every_shared_param_and_the_active_profiles_sections():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(reads(params)) == set(params) - {"paper"}


def test_flatten_and_git_revision(tmp_path):
    assert flatten({"a": 1, "b": {"c": [1, 2], "d": {"e": "x"}}}) == [("a", "1"), ("b.c", "[1, 2]"), ("b.d.e", "x")]
    assert git_revision(tmp_path) == "unknown"
    rev = git_revision(ROOT)
    assert rev != "unknown" and len(rev.split("+")[0]) >= 7


def test_git_revision_is_dirty_for_changed_tracked_files_only(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("commit", "-qm", "c")
    rev = git_revision(tmp_path)
    assert len(rev) >= 7 and "+" not in rev
    (tmp_path / "dvc.lock").write_text("outputs of a run\n")  # untracked, as after `dvc repro` in a clean clone
    assert git_revision(tmp_path) == rev
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_revision(tmp_path) == rev + "+dirty"


def test_analysis_notebook_runs_on_fixture_metrics(tmp_path):
    import nbformat
    import papermill

    write_fixture(tmp_path)
    out = tmp_path / "executed.ipynb"
    papermill.execute_notebook(str(ROOT / "reports" / "analysis.ipynb"), str(out), kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path),
                               parameters={"metrics_dir": str(tmp_path / "reports" / "metrics"),
                                           "results_dir": str(tmp_path / "none"),
                                           "iqa_dir": str(ROOT / "data" / "iqa")})
    outputs = [o for c in nbformat.read(out, 4).cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "every metrics file found" in text
    assert "No SR images of" in text  # SR outputs absent: said, not crashed
    assert "quick_test: PSNR - bicubic PSNR (dB)" in text and "srcc recomputed" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 3


def test_the_papers_clipiqa_contradiction_is_noted_beside_tables_3_and_4():
    tables = {t.id: t for t in build_tables(read_paper(ROOT / "reports" / "paper"), None, None, RUNS)}
    note = ("The paper contradicts itself here: Table 3 gives CLIP-IQA a PLCC of 0.433 on KonIQ-10k, while Table 4's "
            "baseline (s_o alone, which is CLIP-IQA with one prompt pair) reaches 0.69-0.71 on KonIQ-10k's splits.")
    assert note in tables["table3"].notes and note in tables["table4"].notes
    assert note not in tables["table1"].notes


def test_pipals_sub_type_rows_are_marked_as_resting_on_an_unconfirmed_mapping(tmp_path):
    tables = {t.id: t for t in build_tables(read_paper(ROOT / "reports" / "paper"), None, None, RUNS)}
    caveat = [n for n in tables["table4"].notes if n.startswith("PIPAL's sub-type rows rest on an unconfirmed")]
    assert len(caveat) == 1 and "HaomingCai/PIPAL-dataset issue #13" in caveat[0]
    assert not any("unconfirmed mapping" in n for t in ("table1", "table3") for n in tables[t].notes)
    assert "PIPAL&#39;s sub-type rows rest on an unconfirmed mapping" in render_fixture(tmp_path).read_text()


def test_the_report_says_which_ssim_convention_it_used(tmp_path):
    html = render_fixture(tmp_path).read_text()
    assert "SSIM on BT.601 Y in floating point, as BasicSR&#39;s calculate_ssim" in html


def test_table5_holds_each_tasks_runs_beside_the_papers_values(tmp_path):
    params = write_fixture(tmp_path)
    metrics = tmp_path / "reports" / "metrics"
    restore = read_records(metrics / "restore.csv", "quick")
    table = build_tables(read_paper(ROOT / "reports" / "paper"), None, None, params["runs"], restore)[4]
    assert [g for g, _ in table.col_groups] == ["Rain100L (ours: quick_rain_test)", "GoPro (ours: quick_blur_test)"]
    cells = {(row.labels[0], i): cell for row in table.rows for i, cell in enumerate(row.cells)}
    per_set = len(table.columns) // 2
    psnr = [i for i, c in enumerate(table.columns[:per_set]) if c.label == "PSNR"][0]
    nafnet_rain, nafnet_gopro = cells[("NAFNet", psnr)], cells[("NAFNet", per_set + psnr)]
    assert (nafnet_rain.ours, nafnet_rain.paper) == (30.5, 37.00)
    assert nafnet_gopro.ours == 27.25 and nafnet_gopro.diff == pytest.approx(27.25 - 32.87)
    assert cells[("+ Ours", per_set + psnr)].ours == 26.5
    vd_gopro = cells[("+ VD", per_set + psnr)]
    assert vd_gopro.ours is None and vd_gopro.reason == NOT_TRAINED_RESTORE and vd_gopro.paper == 32.01
    assert any(c.label == "SSIM" and c.ours_only for c in table.columns)
    html = render_fixture(tmp_path / "render").read_text()
    assert 'id="table5-crops"' in html and "Table 5 crops" in html


def test_the_protocol_names_table3s_methods_the_pipeline_does_not_run_and_no_other():
    note = paper_only_note(read_paper(ROOT / "reports/paper")["table3"])
    named = note.removeprefix("eval_iqa: ").split(": ")[0].split(", ")
    assert named == ["QAC", "LPSI", "SNP-NIQE"]
