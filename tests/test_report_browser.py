"""The rendered report in headless Chromium, offline: it draws a page that is not blank, and at A4 landscape every
table and figure fits the page (nothing cut, no sideways scroll), in the quick profile and with every column of the
paper's tables filled as the paper profile fills them."""
import html
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.evaluate import record, write_records
from pipeline.run_table import run_tables
from test_report import RUNS, render_fixture

CHROMIUM = Path("/usr/bin/chromium")
A4_LANDSCAPE_PX = 1047  # 297 mm less the @page margins (2 x 10 mm) at 96 px per inch
# Appended to a copy of the page: what sticks out of the viewport, and every box that would need a scroll bar.
MEASURE = """<script>
window.addEventListener('load', () => {
  const width = document.documentElement.clientWidth, all = [...document.querySelectorAll('body *')];
  const name = e => e.tagName + '#' + (e.id || e.className);
  document.body.setAttribute('data-measure', JSON.stringify({
    width, page: document.documentElement.scrollWidth,
    cut: all.filter(e => e.getBoundingClientRect().right > width + 0.5).map(name),
    scrolls: all.filter(e => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
                .map(name),
    tables: document.querySelectorAll('table.paper-table').length}));
});
</script>"""

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="/usr/bin/chromium is absent (CI installs Debian's chromium)")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                           "--no-first-run", "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def measure(page: Path, tmp_path: Path) -> dict:
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = chromium(tmp_path, f"--window-size={A4_LANDSCAPE_PX},800", "--dump-dom", probe.resolve().as_uri()).stdout
    return json.loads(html.unescape(re.search(r'data-measure="([^"]*)"', dom).group(1)))


def fill_every_column(root: Path) -> None:
    """Overwrite the fixture's SR and IQA records with a value for every paper column and benchmark of Tables 1-3
    and every run of the run table: the widest report the paper profile can make."""
    rng = np.random.default_rng(1)
    publics = {"table1": ["RankSRGAN", "SRGAN", "SFTGAN", "ESRGAN", "SPSR", "LDL", "DualFormer", "WGSR", "SeD"],
               "table2": ["BSRGAN", "RealESRGAN", "LDL", "RealSwinIR"]}
    sets = {"table1": ["Set5", "Set14", "Urban100", "DIV2K100"], "table2": ["RealD2K", "RealSR", "DRealSR"]}
    tables = run_tables(RUNS)
    records = [record(t, s, "", m, k, float(rng.uniform(0.05, 30)), None)
               for t in sets for s in sets[t] for m in ["bicubic", *tables[t], *(f"{p}-public" for p in publics[t])]
               for k in ("psnr", "ssim", "lpips", "dists", "niqe")]
    write_records(root / "reports" / "metrics", "sr", records, "paper", {})
    methods = ["sfd_iqa", "niqe", "ilniqe", "clipiqa", "piqe", "qualiclip", "maclip", "sfd_iqa_baseline"]
    records = [record("table3", d, "", m, k, float(rng.uniform(0, 1)), None)
               for d in ("PIPAL", "KonIQ-10k", "Ma", "LIVE-itW") for m in methods for k in ("plcc", "srcc", "krcc")]
    write_records(root / "reports" / "metrics", "iqa", records, "paper", {})


def test_report_renders_in_headless_chromium(tmp_path):
    page = render_fixture(tmp_path / "site")
    shot = tmp_path / "shot.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.resolve().as_uri())
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # text, tables and the header's dark frame on a white page
    # The top band holds the header; the page below it holds the tables: both are drawn.
    assert pixels[:300].std() > 20 and pixels[800:].std() > 20
    assert (pixels < 100).mean() > 0.01


@pytest.mark.parametrize("filled", [False, True], ids=["quick", "every-column"])
def test_report_fits_a4_landscape_without_sideways_scroll(tmp_path, filled):
    page = render_fixture(tmp_path / "site", before=fill_every_column if filled else None)
    m = measure(page, tmp_path)
    assert m["width"] <= A4_LANDSCAPE_PX  # less the vertical scroll bar
    assert m["page"] <= m["width"] and m["cut"] == [] and m["scrolls"] == [], m
    assert m["tables"] >= 8  # Tables 1-5, some in more than one block
