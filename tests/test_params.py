import functools
import importlib
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.param_schema import check
from pipeline.params import ParamError, lookup, profile_section

ROOT = Path(__file__).resolve().parents[1]


def resolved_stages() -> dict[str, tuple[str, set[str]]]:
    """Each stage's command and declared params, as DVC resolves them (foreach stages included)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {st.name: (st.cmd, {p for dep in st.params for p in dep.params}) for st in repo.index.stages}


def test_every_stage_declares_exactly_the_params_it_reads():
    stages = resolved_stages()
    assert {"download@sr", "download@train_weights", "synthesize@sr", "synthesize@iqa", "pretrain_psnr@psnr",
            "pretrain_psnr@swinir_psnr", "pretrain_real@realesrnet", "train_gan@sfd", "train_gan@swinir_sfd",
            "train_real@real", "download@restore", "synthesize@restore", "restore_psnr@nafnet_derain",
            "restore_gan@deblur_sfd", "eval_restore"} <= set(stages)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name, (cmd, declared) in stages.items():
        if not cmd.startswith("python -m "):  # the papermill notebook: its only param is interpolated in the command
            assert declared == {"profile"}, name
            continue
        module_name, *args = cmd.split("-m ")[1].split()
        reads = importlib.import_module(module_name).reads(params, *args)  # a foreach stage: of its item
        assert set(reads) == declared, name


def test_declared_params_exist_and_validate():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    check(params, complete=True)
    check({**params, "profile": "paper"}, complete=True)
    for _, declared in resolved_stages().values():
        for key in declared:
            lookup(params, key)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"profile": "fast"}, "profile"),
        ({"lambda4": -0.1}, "lambda4"),
        ({"alpha1": "1e-4"}, "alpha1"),
        ({"seed": -1}, "seed"),
        ({"scale": 2}, "scale"),
        ({"image_gan_weight": "x"}, "image_gan_weight"),
    ],
)
def test_bad_values_name_the_key(change, key):
    params = {"profile": "quick", "seed": 0, "lambda4": 0.1, **change}
    with pytest.raises(ParamError, match=f"`{key}`"):
        check(params)


def test_missing_key_is_named():
    with pytest.raises(ParamError, match="`quick.synthesize.subimage_size`"):
        lookup({"quick": {"synthesize": {}}}, "quick.synthesize.subimage_size")


def test_profile_section_is_the_active_profiles_own():
    params = {"profile": "paper", "quick": {"tsne": {"crop": 64}}, "paper": {"tsne": {"crop": 256}}}
    assert profile_section(params, "tsne") == {"crop": 256}
    with pytest.raises(ParamError, match="`paper.model`"):
        profile_section(params, "model")


def test_no_key_is_both_shared_and_a_profiles_own():
    """A value a stage uses is written in one place: the profiles' sections and the shared keys are disjoint, and
    both profiles have the same sections."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(params["quick"]) == set(params["paper"])
    assert not set(params["quick"]) & set(params)


def test_a_new_run_is_one_entry_of_the_run_table(tmp_path):
    """A throwaway copy of `sfd` reading a lambda of its own: one entry (and its param) gives its training stage
    with exactly the keys it reads, its evaluation in Table 1 and its column and Fig. 8 point in the report."""
    from dvc.repo import Repo

    from pipeline.report.figures import ablation_models
    from pipeline.evaluate import sr_records
    from pipeline.report.tables import Records, build_tables, read_paper
    from pipeline.run_table import run_tables
    from stages.train_gan import reads

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["lambda4_alt"] = 0.05
    params["runs"]["train_gan"]["sfd_l4"] = {**params["runs"]["train_gan"]["sfd"], "columns": {"table1": None},
                                            "label": "SFD, lambda4 0.05"}
    params["runs"]["train_gan"]["sfd_l4"]["weights"] = {**params["runs"]["train_gan"]["sfd"]["weights"],
                                                        "w4": "lambda4_alt"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    with Repo(str(tmp_path)) as repo:
        stage = next(s for s in repo.index.stages if s.name == "train_gan@sfd_l4")
        declared = {p for dep in stage.params for p in dep.params}
        deps = {str(d.def_path) for d in stage.deps}
    assert declared == set(reads(params, "sfd_l4")) and "lambda4_alt" in declared and "lambda4" not in declared
    assert "models/psnr" in deps and stage.cmd == "python -m stages.train_gan sfd_l4"
    assert run_tables(params["runs"])["table1"] == ["psnr", "esrgan", "featd", "tgd", "sfd", "sfd_l4", "swinir_psnr",
                                                    "swinir_esrgan", "swinir_sfd"]
    assert ablation_models(params["runs"]) == ["bicubic", "psnr", "esrgan", "featd", "tgd", "sfd", "sfd_l4"]

    summary = {"table": {"quick_test": "table1"}, "na": {},
               "results": {"quick_test": {m: {"psnr": 20.0 + i, "ssim": 0.5} for i, m in
                                          enumerate(["bicubic", "psnr", "sfd", "sfd_l4"])}}}
    records = Records([{**r, "value": r["value"] or None} for r in sr_records(summary)], "quick")
    table1 = build_tables(read_paper(ROOT / "reports" / "paper"), records, None, params["runs"])[0]
    column = [c.label for c in table1.columns].index("SFD, lambda4 0.05")
    psnr_row = next(r for r in table1.rows if r.labels == ("quick_test", "PSNR"))
    assert psnr_row.cells[column].ours == 23.0


@pytest.mark.parametrize("key, value, named", [
    ("quick.train_gan.rrdbnet.iters", 0, "quick.train_gan.rrdbnet.iters"),
    ("quick.pretrain_psnr.rrdbnet.batch", 0, "quick.pretrain_psnr.rrdbnet.batch"),
    ("quick.train_real.ckpt_every", 0, "quick.train_real.ckpt_every"),
    ("quick.synthesize.subimage_step", None, "quick.synthesize.subimage_step"),  # deleted
    ("quick.train_gan.swinir.patch", 62, "quick.train_gan.swinir.patch"),
    ("quick.pretrain_psnr.rrdbnet.lr", "abc", "quick.pretrain_psnr.rrdbnet.lr"),
    ("alpha1", float("nan"), "alpha1"),
    ("quick.eval_iqa.tile", 500, "quick.eval_iqa.tile"),
    ("quick.train_real.degrade_size", 60, "quick.train_real.degrade_size"),
    ("speed.gpus", 0, "speed.gpus"),
    ("quick.tsne.max_iter", 100, "quick.tsne.max_iter"),
    ("quick.eval_iqa.pyiqa_methods", ["brisque"], "quick.eval_iqa.pyiqa_methods"),
])
def test_the_schema_refuses_a_bad_value_by_its_dotted_key(key, value, named):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    *path, last = key.split(".")
    node = functools.reduce(lambda n, k: n[k], path, params)
    if value is None:
        del node[last]
    else:
        node[last] = value
    with pytest.raises(ParamError, match=f"`{re.escape(named)}`"):
        check(params, complete=True)


def test_alpha1_and_alpha2_may_not_both_be_zero():
    with pytest.raises(ParamError, match="`alpha1` and `alpha2` must not both be 0"):
        check({"profile": "quick", "alpha1": 0.0, "alpha2": 0.0})
