"""Rehearsal of the whole paper DAG, offline: `dvc exp run -S profile=paper`, with only the scale overridden.

Every registry file is served from 127.0.0.1 through the `download_mirror` param, made by tests/paper_standins.py
in its upstream layout (archives, folders, file names, CSV/MAT columns, state-dict keys) with random contents; the
manual sets are placed where a user places them. The networks stay paper-sized (RRDBNet 64/23/32, SwinIR-M,
CLIP RN50); iterations, batches, patches and image sizes are cut, and IL-NIQE is left out of eval_iqa. The
registry's checksums are pinned to the stand-ins, as a user pins the ones the first run prints; nothing in the
pipeline knows it is a rehearsal.

The first run lacks DRealSR: it must stop only download@real_pairs and what depends on it, and say which folder
to fill; once DRealSR is placed, the second run must do exactly that remaining work.
"""
import csv
import functools
import http.server
import re
import shutil
import threading

import numpy as np
import pytest
import yaml

import paper_standins as standins
from conftest import ROOT, run
from pipeline.data.download import file_digests, file_name
from pipeline.metrics.dualformer import EXPERIMENTS

SCALE = {
    "paper.synthesize.subimage_size": 64, "paper.synthesize.subimage_step": 64,
    "paper.synthesize.real_pairs_lr_crop": 16, "degradation.pool_size": 4,
    **{f"paper.{section}.{k}": v for section in ("train_gan.rrdbnet", "train_gan.swinir", "train_real") for k, v in
       {"iters": 2, "batch": 2, "patch": 64, "milestones": "[1]", "workers": 0, "ckpt_every": 2, "val_every": 2,
        "log_every": 1}.items()},
    "paper.train_real.degrade_size": 96,
    **{f"paper.{section}.{k}": v for section in ("restore_psnr.derain", "restore_gan.derain", "restore_gan.deblur")
       for k, v in {"iters": 2, "batch": 2, "patch": 64, "milestones": "[1]", "workers": 0, "ckpt_every": 2,
                    "val_every": 2, "log_every": 1}.items()},
    "paper.tsne.images_per_class": 2, "paper.tsne.crop": 64, "paper.tsne.perplexity": 3.0,
    "paper.tsne.max_iter": 250,
    # IL-NIQE resizes every image to 524 px (12 s an image here): its template is downloaded and checked, and
    # tests/test_evaluate.py scores with it
    "paper.eval_iqa.pyiqa_methods": "[niqe,clipiqa,piqe,qualiclip,maclip]",
}
PIN_NOTE = "rehearsal stand-in (random values), pinned by tests/test_paper_rehearsal.py"
# What the rehearsal holds on disk at its peak (12.4 GB measured): the mirror, the downloads, the checkpoints and
# models of every training stage, and DVC's cache of the models. A disk that cannot hold it fails here, in one line,
# instead of filling up and failing every test that runs beside it.
DISK_GB = 13


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A mirror of every downloadable registry file, served on 127.0.0.1: (base URL, folder)."""
    root = tmp_path_factory.mktemp("mirror")
    free = shutil.disk_usage(root).free / 2**30
    if free < DISK_GB:
        pytest.fail(f"the rehearsal needs about {DISK_GB} GB free under {root.parent}; {free:.1f} GB are free")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    rng = np.random.default_rng(standins.RNG_SEED)
    standins.sr_datasets(root, rng)
    standins.iqa_datasets(root, rng)
    standins.restore_datasets(root, rng)
    manual = standins.weights(root, params["paper"]["model"])
    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", root, manual
    httpd.shutdown()
    shutil.rmtree(root)  # 2.3 GB, made again from the seed by any later run


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def sha256(path):
    return file_digests(path, ["sha256"])["sha256"]


def pin_registry(project, mirror_root, manual_files):
    """Pin every file of the paper profile's entries to the sha256 of its stand-in (what a user does after the
    first run prints the pins)."""
    path = project / "data/registry.yaml"
    registry = yaml.safe_load(path.read_text())
    for name, entry in registry.items():
        for spec in entry.get("files", []):
            local = mirror_root / name / file_name(spec)
            if local.is_file():
                spec["checksum"] = {"algorithm": "sha256", "value": sha256(local), "source": PIN_NOTE}
                spec["size"] = local.stat().st_size
        if "checksum" in entry.get("manual", {}) and name in manual_files:
            entry["manual"]["checksum"] = {"algorithm": "sha256", "value": sha256(manual_files[name]),
                                           "source": PIN_NOTE}
    path.write_text(yaml.safe_dump(registry, sort_keys=False))


def exp_run(project, url, keep_going=False):
    overrides = {"profile": "paper", "download_mirror": url, **SCALE}
    cmd = ["dvc", "exp", "run", *(["-k"] if keep_going else [])]
    for key, value in overrides.items():
        cmd += ["-S", f"{key}={value}"]
    result = run(cmd, project, check=not keep_going)
    return result, set(re.findall(r"Running stage '([^']+)'", result.stdout))


def test_paper_dag_runs_end_to_end_and_a_missing_set_stops_only_its_stages(project_copy, tmp_path, mirror):
    url, mirror_root, manual = mirror
    project = tmp_path / "paper"
    shutil.copytree(project_copy, project, symlinks=True)
    rng = np.random.default_rng(1)
    standins.place_real_pairs(project, rng)
    drealsr = project / "data/raw/real_pairs/DRealSR"
    held_back = tmp_path / "DRealSR"
    shutil.move(drealsr, held_back)  # placed only before the second run
    standins.place_ma(project, rng)
    standins.place_rain100l(project, rng)
    manual_files = {}
    for name, data in manual.items():  # the manual weights, where the registry says
        target = project / yaml.safe_load((project / "data/registry.yaml").read_text())[name]["target"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        manual_files[name] = target
    for experiment, folder in EXPERIMENTS.items():  # DualFormer's folders hold their options file beside models/
        options = project / "data/weights/eval/dualformer_iqa" / folder / f"train_{folder}.yml"
        options.write_text(yaml.safe_dump(standins.dualformer_options(experiment), sort_keys=False))
    pin_registry(project, mirror_root, manual_files)
    run(["git", "commit", "-qam", "pin the stand-ins"], project)

    first, ran = exp_run(project, url, keep_going=True)
    log = first.stdout + first.stderr
    assert first.returncode != 0, log
    assert "data/raw/real_pairs/DRealSR" in log, log
    assert {"download@sr", "download@iqa", "download@train_weights", "download@eval_weights", "synthesize@sr",
            "synthesize@iqa", "pretrain_psnr@psnr", "pretrain_psnr@swinir_psnr", "pretrain_real@realesrnet",
            "train_gan@esrgan", "train_gan@featd", "train_gan@tgd", "train_gan@sfd", "train_gan@swinir_esrgan",
            "train_gan@swinir_sfd", "train_real@real", "eval_iqa", "tsne", "download@restore", "synthesize@restore",
            "restore_psnr@nafnet_derain", "restore_psnr@nafnet_deblur", "restore_gan@derain_vd",
            "restore_gan@derain_sfd", "restore_gan@deblur_vd", "restore_gan@deblur_sfd", "eval_restore"} <= ran, ran
    assert not ran & {"synthesize@real_pairs", "eval_sr", "report"}

    shutil.move(held_back, drealsr)
    _, ran = exp_run(project, url)
    assert ran == {"download@real_pairs", "synthesize@real_pairs", "eval_sr", "report", "analysis"}, ran

    report = (project / "reports/paper_tables.html").read_text()
    assert "profile: paper" in report
    assert "Random stand-ins." in report and PIN_NOTE in report
    sr = yaml.safe_load((project / "reports/metrics/sr.json").read_text())
    assert {"Set5", "Set14", "Urban100", "DIV2K100", "RealD2K", "RealSR", "DRealSR"} <= set(sr["results"])
    assert isinstance(sr["results"]["DRealSR"]["real"]["psnr"], float)
    for public in ("ESRGAN-public", "LDL-public", "DualFormer-public", "RankSRGAN-public", "SFTGAN-public",
                   "SPSR-public", "WGSR-public"):
        assert isinstance(sr["results"]["Set5"][public]["psnr"], float), public  # the by-hand layouts load
    restore = yaml.safe_load((project / "reports/metrics/restore.json").read_text())
    assert {"Rain100L", "GoPro"} <= set(restore["results"])
    assert isinstance(restore["results"]["GoPro"]["deblur_sfd"]["psnr"], float)
    iqa = yaml.safe_load((project / "reports/metrics/iqa.json").read_text())
    assert {"PIPAL", "KonIQ-10k", "Ma", "LIVE-itW"} <= set(iqa["results"])
    # ContentSep's and MDFS's files load; KonIQ-10k's stand-ins (144 x 108) hold two 96 px patches at stride 48
    assert isinstance(iqa["results"]["KonIQ-10k"]["contentsep"]["srcc"], float)
    assert all(isinstance(iqa["results"][s]["mdfs"]["srcc"], float) for s in ("PIPAL", "KonIQ-10k", "Ma", "LIVE-itW"))
    # RecycleD: its four critics, BASNet and U^2-Net load, each set scored by its own configuration
    assert all(isinstance(iqa["results"][s]["recycled"]["srcc"], float) for s in ("PIPAL", "KonIQ-10k", "Ma",
                                                                                  "LIVE-itW"))
    # DualFormer: both experiment folders load (options file, net_d.pth, net_spectral_d.pth at paper size); PIPAL's
    # 288 px stand-ins hold its 192 px patches, the KonIQ-10k and LIVE-itW ones are smaller than its 384 px crops
    assert isinstance(iqa["results"]["PIPAL"]["dualformer"]["srcc"], float)
    with open(project / "reports/metrics/iqa.csv", newline="") as f:
        records = list(csv.DictReader(f))
    reasons = {r["set"]: r["reason"] for r in records if r["method"] == "dualformer" and r["table"] == "table3"}
    assert reasons["KonIQ-10k"] == ("dualformer cannot score 10004473376.jpg: a 144 x 108 image is smaller than "
                                    "DualFormer's 384 px crops on KonIQ-10k"), reasons
    assert reasons["Ma"] == "dualformer has a configuration for PIPAL, KonIQ-10k, LIVE-itW only, not Ma", reasons
    # RankIQA: its caffemodel parses and loads; PIPAL's stand-ins hold its 224 px crops, KonIQ-10k's do not
    assert isinstance(iqa["results"]["PIPAL"]["rankiqa"]["srcc"], float)
    assert any(r["method"] == "rankiqa" and r["set"] == "KonIQ-10k" and "no room for RankIQA's 224 px crops" in
               r["reason"] for r in records)
    # dipIQ: its four .mat files download, pinned, and score every set
    assert all(isinstance(iqa["results"][s]["dipiq"]["srcc"], float) for s in ("PIPAL", "KonIQ-10k", "Ma", "LIVE-itW"))
    clipiqa = [r for r in records if r["method"] == "clipiqa"]
    assert clipiqa and all(r["value"] == "" and "sha256" in r["reason"] for r in clipiqa)
