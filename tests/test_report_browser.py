"""The rendered report opens in headless Chromium, offline, and draws a page that is not blank."""
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_report import render_fixture

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (CI installs Debian's chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    page = render_fixture(tmp_path / "site")
    shot = tmp_path / "shot.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
                    page.resolve().as_uri()], capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.shape == (2000, 1280)
    assert pixels.std() > 20  # text, tables and the header's dark frame on a white page
    # The top band holds the header; the page below it holds the tables: both are drawn.
    assert pixels[:300].std() > 20 and pixels[800:].std() > 20
    assert (pixels < 100).mean() > 0.01
