"""The training half of the quick DAG under DVC: every stage runs, and `-S lambda4=...` re-runs exactly its users."""
import re
from pathlib import Path

import yaml

from conftest import run
from pipeline.checkpoint import load_state_dict
from pipeline.sfd_iqa import load_sfd_iqa

SHORT = {"iters": 4, "ckpt_every": 2, "val_every": 4, "log_every": 2}


def shorten(params: dict) -> dict:
    """Every training run of the quick profile (both backbones' schedules) cut to 4 iterations."""
    quick = params["quick"]
    for block in (*quick["pretrain_psnr"].values(), quick["pretrain_real"], *quick["train_gan"].values(),
                  quick["train_real"], *quick["restore_psnr"].values(), *quick["restore_gan"].values()):
        block.update(SHORT, milestones=[3])
    return params


def test_training_stages_depend_on_the_modules_that_load_and_write_their_models():
    """build_generator (pipeline/sr.py) loads the PSNR models, save_sfd_iqa (pipeline/sfd_iqa.py) writes SFD-IQA."""
    stages = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]
    assert "pipeline/sr.py" in stages["pretrain_psnr"]["do"]["deps"]
    for deps in (stages["train_gan"]["do"]["deps"], stages["train_real"]["do"]["deps"]):
        assert {"pipeline/sr.py", "pipeline/sfd_iqa.py"} <= set(deps)
    assert {"pipeline/sr.py", "pipeline/data/degradation.py"} <= set(stages["pretrain_real"]["do"]["deps"])


def test_training_stages_and_lambda4_rerun_set(project_copy):
    path = project_copy / "params.yaml"
    path.write_text(yaml.safe_dump(shorten(yaml.safe_load(path.read_text())), sort_keys=False))
    run(["dvc", "repro"], project_copy)
    for name in ("psnr", "realesrnet", "esrgan", "featd", "tgd", "sfd", "swinir_psnr", "swinir_esrgan", "swinir_sfd",
                 "real", "nafnet_derain", "derain_sfd", "deblur_vd"):
        state, _ = load_state_dict(project_copy / "models" / name / "generator.safetensors")
        assert "conv_first.weight" in state or "intro.weight" in state  # RRDBNet, SwinIR / NAFNet
    iqa = load_sfd_iqa(project_copy / "models" / "real" / "sfd_iqa.safetensors")
    assert iqa.featd is not None and iqa.lpp is not None
    metrics = yaml.safe_load((project_copy / "dvclive" / "sfd" / "metrics.json").read_text())
    assert {"g_l1", "d_fea", "d_tg", "lpp_hr", "lpp_sr"} <= set(metrics["train"]) and "psnr_y" in metrics["val"]

    assert run(["dvc", "status", "-q"], project_copy, check=False).returncode == 0, "a second repro would do work"
    # a paper-only key is no quick stage's param: changing it leaves the quick DAG up to date
    paper_edit = yaml.safe_load(path.read_text())
    paper_edit["paper"]["train_gan"]["rrdbnet"]["iters"] += 1
    paper_edit["paper"]["model"]["featd"]["widths"] = [8, 8, 8, 8]
    path.write_text(yaml.safe_dump(paper_edit, sort_keys=False))
    assert run(["dvc", "status", "-q"], project_copy, check=False).returncode == 0, "a paper key re-runs quick work"

    run(["git", "add", "-A"], project_copy)
    run(["git", "commit", "-qm", "quick run"], project_copy)
    # `dvc exp run -S` sets lambda4 and runs one of its users; DVC's status then names the others it would re-run
    out = run(["dvc", "exp", "run", "-S", "lambda4=0.05", "train_gan@tgd"], project_copy).stdout
    assert set(re.findall(r"Running stage '([^']+)'", out)) <= {"check_params", "train_gan@tgd"} and \
        "Running stage 'train_gan@tgd'" in out, out
    assert yaml.safe_load(path.read_text())["lambda4"] == 0.05
    training = ["pretrain_psnr", "pretrain_real", "train_gan", "train_real", "restore_psnr", "restore_gan"]
    status = run(["dvc", "status", *training], project_copy).stdout
    assert set(re.findall(r"^(\S+):$", status, re.M)) == {
        "train_gan@sfd", "train_gan@swinir_sfd", "train_real@real", "restore_gan@derain_sfd",
        "restore_gan@deblur_sfd"}, status
