"""eval_sr and eval_iqa end to end on tiny fixtures: outputs, CSV and JSON exactly in the contract's formats."""
import csv
import json

import numpy as np
import paper_standins
import pyiqa
import pytest
import torch
from scipy import ndimage

from pipeline.archs.clip_encoder import TINY_ARCH, CLIPEncoder
from pipeline.archs.featd import FeatD
from pipeline.archs.lpp import LearnablePromptPairs
from pipeline.archs.rrdbnet import RRDBNet, basicsr_to_esrgan
from pipeline.archs.swinir import SwinIR
from pipeline.checkpoint import CheckpointError, save_state_dict
from pipeline.data.synthesize import bicubic_down, to_tensor
from pipeline import evaluate
from pipeline.evaluate import (
    RECORD_COLUMNS,
    SFD_IQA_METHODS,
    bicubic_upscale,
    load_upscaler,
    evaluate_iqa,
    evaluate_restore,
    evaluate_sr,
    restore_figure,
    sr_figure,
    sr_models,
)
from pipeline.fileio import read_image, write_image, write_json
from pipeline.metrics.correlation import correlations
from pipeline.metrics.niqe_params import write_niqe_mat
from pipeline.metrics.pyiqa_metrics import NA, MetricUnavailable, create_metric, weight_files
from pipeline.sfd_iqa import load_sfd_iqa, save_sfd_iqa
from pipeline.sr import build_generator, upscale_image

SR_HEADER = ["image", "psnr", "ssim", "lpips", "dists", "niqe"]
IQA_HEADER = ["image", "score", "mos"]
CPU = torch.device("cpu")


def smooth_image(h, w, seed, sigma=3.0):
    noise = np.random.default_rng(seed).random((h, w, 3))
    img = ndimage.gaussian_filter(noise, (sigma, sigma, 0))
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 235 + 10).round().astype(np.uint8)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]


def strict_json(path):
    def refuse(value):
        raise AssertionError(f"{path} holds {value}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def tiny_generator(seed):
    """A random tiny RRDBNet whose output sits around mid-grey, so that it is not clamped flat (NIQE needs texture)."""
    torch.manual_seed(seed)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    with torch.no_grad():
        net.conv_last.bias.fill_(0.5)
    return net


TABLES = {"table1": ["psnr"], "table2": ["real"]}  # our runs per table, as run_table.run_tables gives them


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_sr")
    for set_name, seed in (("cls", 0), ("rw", 10)):
        for i, name in enumerate(("a.png", "b.png")):
            hr = smooth_image(128, 112, seed + i)
            write_image(root / "sets" / set_name / "HR" / name, hr)
            write_image(root / "sets" / set_name / "LR_x4" / name, bicubic_down(hr, 4))
    for name, seed in (("psnr", 1), ("real", 2)):
        save_state_dict(root / "models" / name / "generator.safetensors", tiny_generator(seed).state_dict(),
                        {"source": "trained by pretrain_psnr"} if name == "psnr" else None)
    write_json(root / "models" / "real" / "weights.json", {"clip": "random (seed 0)", "vgg19": "none"})
    # a public checkpoint in the old ESRGAN key names, wrapped as BasicSR does
    torch.save({"params_ema": basicsr_to_esrgan(tiny_generator(3).state_dict())}, root / "public.pth")
    cfg = {"scale": 4, "tile": 0, "tile_overlap": 32, "ssim": "basicsr",
           "table1": {"sets": ["cls"]},
           "table2": {"sets": ["rw"]},
           "external": [{"name": "ESRGAN-public", "weights": str(root / "public.pth"), "table": "table1"}]}
    (root / "torch").mkdir()
    summary = evaluate_sr(cfg, TABLES, "quick", sets_dirs=(root / "sets",), models_dir=root / "models",
                          results_dir=root / "results", metrics_dir=root / "metrics", torch_home=root / "torch",
                          niqe_params=write_niqe_mat(root / "niqe.mat"), device=CPU)
    return root, cfg, summary


def test_sr_outputs_are_the_models_outputs(sr_run):
    root, _, _ = sr_run
    pairs = {("bicubic", "cls"), ("psnr", "cls"), ("ESRGAN-public", "cls"), ("bicubic", "rw"), ("real", "rw")}
    assert {(p.parent.name, p.name) for p in (root / "results").glob("*/*")} == pairs
    lr = read_image(root / "sets" / "cls" / "LR_x4" / "a.png")
    psnr_net = build_generator(root / "models" / "psnr" / "generator.safetensors")
    assert np.array_equal(read_image(root / "results" / "psnr" / "cls" / "a.png"), upscale_image(psnr_net, lr))
    public = build_generator(root / "public.pth")
    assert np.array_equal(read_image(root / "results" / "ESRGAN-public" / "cls" / "a.png"),
                          upscale_image(public, lr))
    bicubic = read_image(root / "results" / "bicubic" / "cls" / "a.png")
    assert bicubic.shape == (128, 112, 3) and np.array_equal(bicubic, bicubic_upscale(lr, 4))


def test_sr_csv_format_and_values(sr_run):
    root, _, _ = sr_run
    header, rows = read_csv(root / "metrics" / "sr" / "psnr" / "cls.csv")
    assert header == SR_HEADER
    assert [r["image"] for r in rows] == ["a.png", "b.png"]
    assert all(r["lpips"] == NA and r["dists"] == NA for r in rows)
    # an independent computation: pyiqa's own border crop on the whole images
    reference = pyiqa.create_metric("psnr", test_y_channel=True, color_space="ycbcr", crop_border=4, device="cpu")
    for row in rows:
        sr = to_tensor(read_image(root / "results" / "psnr" / "cls" / row["image"]))
        hr = to_tensor(read_image(root / "sets" / "cls" / "HR" / row["image"]))
        assert float(row["psnr"]) == pytest.approx(reference(sr, hr).item(), abs=1e-5)
        assert 0 < float(row["ssim"]) < 1 and float(row["niqe"]) > 0


def test_sr_records_and_json_format(sr_run):
    """sr.csv: one record per (set, model, metric), n/a with its reason; sr.json: the numbers nested, for DVC."""
    root = sr_run[0]
    columns, records = read_csv(root / "metrics" / "sr.csv")
    assert tuple(columns) == RECORD_COLUMNS
    assert {(r["table"], r["set"], r["method"]) for r in records} == {
        ("table1", "cls", m) for m in ("bicubic", "psnr", "ESRGAN-public")} | {
        ("table2", "rw", m) for m in ("bicubic", "real")}
    data = strict_json(root / "metrics" / "sr.json")
    assert set(data) == {"profile", "results", "weights"} and data["profile"] == "quick"
    for r in records:
        assert r["subset"] == ""
        if r["metric"] in ("lpips", "dists"):
            assert r["value"] == "" and r["reason"].startswith("weights not available: ")
            assert r["metric"] not in data["results"][r["set"]][r["method"]]
            continue
        _, rows = read_csv(root / "metrics" / "sr" / r["method"] / f"{r['set']}.csv")
        assert float(r["value"]) == pytest.approx(np.mean([float(x[r["metric"]]) for x in rows]), abs=1e-5)
        assert r["reason"] == "" and data["results"][r["set"]][r["method"]][r["metric"]] == float(r["value"])
    assert "LPIPS_v0.1_alex" in next(r["reason"] for r in records if r["metric"] == "lpips")
    assert set(data["weights"]) == {"bicubic", "psnr", "real", "ESRGAN-public"}
    assert "trained by pretrain_psnr" in data["weights"]["psnr"]
    assert "random (seed 0)" in data["weights"]["real"]
    assert data["weights"]["ESRGAN-public"].startswith("public checkpoint")


@pytest.mark.parametrize("change, tables, message", [
    ({"external": [{"name": "ESRGAN (public)", "weights": "x.pth", "table": "table1"}]}, {}, "must match"),
    ({"external": [{"name": "x", "weights": "x.pth", "table": "table3"}]}, {}, "expected one of"),
    ({}, {"table2": ["psnr", "psnr"]}, "listed twice"),
])
def test_bad_model_lists_are_refused(sr_run, change, tables, message):
    with pytest.raises(ValueError, match=message):
        sr_models({**sr_run[1], **change}, {**TABLES, **tables})


@pytest.mark.parametrize("state, message", [
    ({"conv.weight": torch.zeros(1)}, "fits none of RRDBNet"),
    (SwinIR(img_size=8, embed_dim=12, depths=[2], num_heads=[2], window_size=4, num_feat=8, upscale=2).state_dict(),
     "x2 network; the evaluation is x4"),
])
def test_unusable_checkpoints_are_refused_before_any_model_runs(sr_run, tmp_path, state, message):
    root, cfg, _ = sr_run
    torch.save(state, tmp_path / "bad.pth")
    cfg = {**cfg, "external": [*cfg["external"], {"name": "bad", "weights": str(tmp_path / "bad.pth"),
                                                  "table": "table1"}]}
    with pytest.raises(CheckpointError, match=f"bad.pth.*{message}"):
        evaluate_sr(cfg, TABLES, "quick", sets_dirs=(root / "sets",), models_dir=root / "models",
                    results_dir=tmp_path / "out",
                    metrics_dir=tmp_path / "metrics", torch_home=root / "torch", niqe_params=root / "niqe.mat",
                    device=CPU)
    assert not (tmp_path / "out").exists()


def test_a_set_in_both_tables_is_refused(sr_run, tmp_path):
    cfg = {**sr_run[1], "table2": {"sets": ["cls"]}}
    with pytest.raises(ValueError, match="both tables"):
        evaluate_sr(cfg, TABLES, "quick", sets_dirs=(tmp_path,), models_dir=tmp_path, device=CPU)


# ---------------------------------------------------------------------------------------------------- IQA --

@pytest.fixture(scope="module")
def iqa_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_iqa")
    base = smooth_image(128, 128, 0, sigma=1.0)
    rows = []
    for level in range(3):  # blur and noise at three levels; mos falls with the level
        blurred = ndimage.gaussian_filter(base.astype(float), (level + 0.5, level + 0.5, 0)).round().astype(np.uint8)
        noise = np.random.default_rng(level).normal(0, 8 * (level + 1), base.shape)
        noisy = np.clip(base + noise, 0, 255).round().astype(np.uint8)
        for subset, img in (("blur", blurred), ("noise", noisy)):
            write_image(root / "iqa" / "dist" / "images" / subset / f"{level}.png", img)
            rows.append(f"{subset}/{level}.png,{3.0 - level},{subset},")
    for i in range(2):  # a subset whose MOS is constant: its correlations are undefined
        write_image(root / "iqa" / "dist" / "images" / f"flat{i}.png", smooth_image(128, 128, 5 + i))
        rows.append(f"flat{i}.png,1.5,flat,")
    (root / "iqa" / "dist" / "scores.csv").write_text("image,mos,subset,split\n" + "\n".join(rows) + "\n")
    torch.manual_seed(0)
    encoder = CLIPEncoder(TINY_ARCH, "none")
    save_sfd_iqa(root / "sfd_iqa.safetensors", encoder, FeatD(encoder.mid_channels, (16, 16, 8, 8)),
                 LearnablePromptPairs(encoder, n_ctx=4), prompt_logit_scale=1.0)  # 100 saturates random CLIP
    cfg = {"sets": ["dist"], "sfd_iqa": str(root / "sfd_iqa.safetensors"), "max_pixels": 1048576, "tile": 512,
           "tile_margin": 64, "pyiqa_methods": ["niqe", "ilniqe", "clipiqa", "piqe", "qualiclip", "maclip"],
           "clip_position": "interpolate",  # not the default: the scores below show the param reaches the model
           "contentsep": {"weights": str(root / "auth_ft_cd.pth"), "pristine": str(root / "pristine.hdf5")},
           "mdfs": {"backbone": str(root / "efficientnet_b7.pth"), "pristine": str(root / "MDFS_weights.pth")},
           "recycled": {role: str(root / f"{role}.pth") for role in ("image_gan_sr", "image_gan_auth", "patch_gan_sr",
                                                                      "patch_gan_auth", "basnet", "u2net")},
           "dualformer": {"pipal": str(root / "NRIQA_dual_former_PIPAL"),
                          "clive_koniq": str(root / "NRIQA_dual_former_CLIVE_KonIQ-10k")},
           "rankiqa": {"weights": str(root / "Rank_tid2013.caffemodel")},
           "dipiq": {role: str(root / f"{role}.mat") for role in ("codebook", "whitening", "normalization", "network")}}
    (root / "torch").mkdir()
    kwargs = {"iqa_dir": root / "iqa", "torch_home": root / "torch", "niqe_params": write_niqe_mat(root / "niqe.mat"),
              "device": CPU}
    summary = evaluate_iqa(cfg, "quick", 0.3, 0.7, metrics_dir=root / "metrics", **kwargs)
    return root, cfg, kwargs, summary


def test_iqa_csvs_hold_the_scores(iqa_run):
    root, cfg, _, _ = iqa_run
    written = {p.parent.name for p in (root / "metrics" / "iqa").glob("*/dist.csv")}
    assert written == {"sfd_iqa", "sfd_iqa_baseline", "sfd_iqa_featd", "sfd_iqa_tgd", "niqe", "piqe"}
    model = load_sfd_iqa(cfg["sfd_iqa"], clip_position="interpolate", alpha1=0.3, alpha2=0.7)
    for variant, method in SFD_IQA_METHODS.items():
        header, rows = read_csv(root / "metrics" / "iqa" / method / "dist.csv")
        assert header == IQA_HEADER and len(rows) == 8
        for row in rows[:3]:
            x = to_tensor(read_image(root / "iqa" / "dist" / "images" / row["image"]))
            assert float(row["score"]) == pytest.approx(model(x, variant).item(), abs=2e-6)
    _, niqe_rows = read_csv(root / "metrics" / "iqa" / "niqe" / "dist.csv")
    assert all(float(r["score"]) > 0 for r in niqe_rows)  # raw NIQE, not negated
    _, piqe_rows = read_csv(root / "metrics" / "iqa" / "piqe" / "dist.csv")  # needs no weights: computed offline
    piqe = pyiqa.create_metric("piqe", device="cpu")
    for row in piqe_rows[:2]:
        x = to_tensor(read_image(root / "iqa" / "dist" / "images" / row["image"]))
        assert float(row["score"]) == pytest.approx(piqe(x).item(), abs=1e-4)


def test_iqa_records_json_and_correlations(iqa_run):
    root, _, _, summary = iqa_run
    columns, records = read_csv(root / "metrics" / "iqa.csv")
    assert tuple(columns) == RECORD_COLUMNS
    table3 = {(r["method"], r["metric"]): r for r in records if r["table"] == "table3"}
    assert {m for m, _ in table3} == {"sfd_iqa", "sfd_iqa_baseline", "sfd_iqa_featd", "sfd_iqa_tgd", "niqe", "ilniqe",
                                      "clipiqa", "piqe", "qualiclip", "maclip", "contentsep", "mdfs", "recycled",
                                      "dualformer", "rankiqa", "dipiq"}
    data = strict_json(root / "metrics" / "iqa.json")
    assert set(data) == {"profile", "results", "subsets", "weights"}
    assert {k: float(table3[(m, k)]["value"]) for m in ("sfd_iqa",) for k in ("plcc", "srcc", "krcc")} == \
        data["results"]["dist"]["sfd_iqa"]
    results = summary["results"]["dist"]
    for method in ("sfd_iqa", "niqe"):
        _, rows = read_csv(root / "metrics" / "iqa" / method / "dist.csv")
        scores, mos = [float(r["score"]) for r in rows], [float(r["mos"]) for r in rows]
        assert results[method] == pytest.approx(correlations(scores, mos, lower_better=method == "niqe"), abs=1e-4)
    # NIQE is correlated negated: its coefficients are those of -score
    _, rows = read_csv(root / "metrics" / "iqa" / "niqe" / "dist.csv")
    negated = correlations([-float(r["score"]) for r in rows], [float(r["mos"]) for r in rows])
    assert results["niqe"]["srcc"] == pytest.approx(negated["srcc"], abs=1e-6)
    assert results["ilniqe"] == NA and results["clipiqa"] == NA
    assert "ilniqe" not in data["results"]["dist"] and table3[("ilniqe", "plcc")]["value"] == ""
    assert results["qualiclip"] == NA and "hub/pyiqa/QualiCLIP.pth" in table3[("qualiclip", "plcc")]["reason"]
    assert table3[("maclip", "plcc")]["reason"].startswith("not computed on cpu: pyiqa's MA-CLIP builds its CLIP on "
                                                           "CUDA only")
    assert table3[("ilniqe", "srcc")]["reason"] == (
        f"weights not available: {root / 'torch' / 'hub/pyiqa/ILNIQE_templateModel.mat'}"
        f" (run the paper profile's download stage online)")
    assert "hub/clip/RN50.pt" in table3[("clipiqa", "krcc")]["reason"]
    assert set(data["weights"]) == {*SFD_IQA_METHODS.values(), "niqe", "piqe"}
    assert "clip_tiny" in data["weights"]["sfd_iqa"] and "random" in data["weights"]["sfd_iqa"]
    assert "position embedding interpolate" in data["weights"]["sfd_iqa"]


def test_table4_subsets(iqa_run):
    root, _, _, summary = iqa_run
    subsets = summary["subsets"]["dist"]
    assert set(subsets) == {"blur", "noise", "flat"}
    _, rows = read_csv(root / "metrics" / "iqa" / "sfd_iqa_featd" / "dist.csv")
    blur = [r for r in rows if r["image"].startswith("blur/")]
    for method in SFD_IQA_METHODS.values():
        assert set(subsets["blur"][method]) == {"plcc", "srcc", "krcc"}
        assert subsets["flat"][method] == NA
    assert subsets["blur"]["sfd_iqa_featd"] == pytest.approx(
        correlations([float(r["score"]) for r in blur], [float(r["mos"]) for r in blur]), abs=1e-4)
    _, records = read_csv(root / "metrics" / "iqa.csv")
    flat = [r for r in records if (r["table"], r["subset"], r["method"]) == ("table4", "flat", "sfd_iqa")]
    assert len(flat) == 3 and {r["reason"] for r in flat} == {"correlation undefined: the MOS is constant"}


def test_iqa_without_checkpoint_or_with_an_unknown_method(iqa_run, tmp_path):
    _, cfg, kwargs, _ = iqa_run
    summary = evaluate_iqa({**cfg, "sfd_iqa": str(tmp_path / "none.safetensors"), "pyiqa_methods": []}, "quick",
                           0.5, 0.5, metrics_dir=tmp_path / "metrics", **kwargs)
    assert summary["results"]["dist"] == {m: NA for m in (*SFD_IQA_METHODS.values(), "contentsep", "mdfs",
                                                          "recycled", "dualformer", "rankiqa", "dipiq")}
    assert summary["na"]["contentsep"].startswith(f"weights not available: {cfg['contentsep']['weights']} (by hand")
    assert summary["na"]["sfd_iqa"] == f"SFD-IQA checkpoint not found: {tmp_path / 'none.safetensors'} " \
                                      f"(the train_real stage writes it)"
    assert summary["subsets"] == {}
    with pytest.raises(ValueError, match="brisque"):
        evaluate_iqa({**cfg, "pyiqa_methods": ["brisque"]}, "quick", 0.5, 0.5, metrics_dir=tmp_path / "m2", **kwargs)


def test_a_per_set_method_is_called_with_the_set_and_is_na_on_a_set_it_has_no_configuration_for(
        iqa_run, tmp_path, monkeypatch):
    """RecycleD's path through eval_iqa, with a stand-in loader (its networks are tests/test_recycled.py's): the set's
    name reaches the metric; a set outside PER_SET_IQA's list is n/a with the sets it has."""
    _, cfg, kwargs, _ = iqa_run
    calls = []

    def load(device, **files):
        assert set(files) == set(cfg["recycled"])
        return lambda x, set_name: calls.append(set_name) or x.mean()

    monkeypatch.setitem(evaluate.OTHER_IQA, "recycled", load)
    cfg = {**cfg, "pyiqa_methods": []}
    monkeypatch.setitem(evaluate.PER_SET_IQA, "recycled", ("dist",))
    summary = evaluate_iqa(cfg, "quick", 0.5, 0.5, metrics_dir=tmp_path / "m1", **kwargs)
    assert calls == ["dist"] * 8 and set(summary["results"]["dist"]["recycled"]) == {"plcc", "srcc", "krcc"}
    _, rows = read_csv(tmp_path / "m1" / "iqa" / "recycled" / "dist.csv")
    x = to_tensor(read_image(kwargs["iqa_dir"] / "dist" / "images" / rows[0]["image"]))
    assert float(rows[0]["score"]) == pytest.approx(x.mean().item(), abs=1e-6)
    monkeypatch.setitem(evaluate.PER_SET_IQA, "recycled", ("PIPAL", "Ma"))
    summary = evaluate_iqa(cfg, "quick", 0.5, 0.5, metrics_dir=tmp_path / "m2", **kwargs)
    assert summary["results"]["dist"]["recycled"] == NA and calls == ["dist"] * 8
    _, records = read_csv(tmp_path / "m2" / "iqa.csv")
    assert {r["reason"] for r in records if r["method"] == "recycled"} == {
        "recycled has a configuration for PIPAL, Ma only, not dist"}


def test_a_method_that_cannot_score_one_image_is_na_on_its_set_with_the_image_named(iqa_run, tmp_path, monkeypatch):
    """DualFormer's path for an image smaller than its crops, with a stand-in loader (its networks are
    tests/test_dualformer.py's): the method is n/a on the set, the reason names the image; the others still score."""
    _, cfg, kwargs, _ = iqa_run

    calls = []

    def load(device, **files):
        def score(x, set_name):
            calls.append(set_name)
            if len(calls) == 3:  # the set's third image
                raise MetricUnavailable("too small for its crops")
            return x.mean()
        return score

    monkeypatch.setitem(evaluate.OTHER_IQA, "dualformer", load)
    monkeypatch.setitem(evaluate.PER_SET_IQA, "dualformer", ("dist",))
    summary = evaluate_iqa({**cfg, "pyiqa_methods": ["niqe"]}, "quick", 0.5, 0.5, metrics_dir=tmp_path / "m", **kwargs)
    assert summary["results"]["dist"]["dualformer"] == NA
    assert set(summary["results"]["dist"]["niqe"]) == {"plcc", "srcc", "krcc"}
    assert not (tmp_path / "m" / "iqa" / "dualformer").exists()
    _, records = read_csv(tmp_path / "m" / "iqa.csv")
    reasons = {r["reason"] for r in records if r["method"] == "dualformer"}
    assert reasons == {"dualformer cannot score blur/1.png: too small for its crops"}, reasons


def test_niqe_without_a_block_or_on_a_flat_image_is_na_naming_the_image(iqa_run, tmp_path):
    """pyiqa's NIQE stops with an error on an image under 96 px and on a flat one: eval_iqa records NIQE as n/a on
    that set, naming the image, and scores the rest."""
    _, cfg, kwargs, _ = iqa_run
    iqa_dir = tmp_path / "iqa"
    for set_name, odd in (("small", smooth_image(80, 64, 1)), ("flat", np.full((128, 128, 3), 100, np.uint8))):
        images = [smooth_image(128, 128, 2), smooth_image(128, 128, 3), odd]
        for i, img in enumerate(images):
            write_image(iqa_dir / set_name / "images" / f"{i}.png", img)
        rows = "".join(f"{i}.png,{i + 1.0},," + "\n" for i in range(3))
        (iqa_dir / set_name / "scores.csv").write_text("image,mos,subset,split\n" + rows)
    summary = evaluate_iqa({**cfg, "sets": ["small", "flat"], "pyiqa_methods": ["niqe", "piqe"]}, "quick", 0.5, 0.5,
                           metrics_dir=tmp_path / "m", **{**kwargs, "iqa_dir": iqa_dir})
    assert summary["results"]["small"]["niqe"] == summary["results"]["flat"]["niqe"] == NA
    assert set(summary["results"]["small"]["piqe"]) == {"plcc", "srcc", "krcc"}
    _, records = read_csv(tmp_path / "m" / "iqa.csv")
    assert {r["set"]: r["reason"] for r in records if r["method"] == "niqe"} == {
        "small": "niqe cannot score 2.png: a 64 x 80 image holds no 96 px NIQE block",
        "flat": "niqe cannot score 2.png: the covariance of its features is singular (a flat image)"}


def test_ilniqe_reads_its_template_in_the_upstream_layout(tmp_path):
    """pyiqa's IL-NIQE from ILNIQE_templateModel.mat as the paper profile downloads it (the rehearsal leaves IL-NIQE
    out: 12 s an image)."""
    (path,) = weight_files("ilniqe", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(paper_standins.ilniqe_template())
    metric = create_metric("ilniqe", tmp_path, "cpu")
    score = metric(to_tensor(smooth_image(96, 112, 3))).item()
    assert np.isfinite(score) and score > 0


def test_restoration_runs_are_scored_on_their_tasks_channel_without_a_crop(tmp_path):
    """Table 5: each task's runs restore its sets at scale 1; PSNR on Y for deraining and on RGB for deblurring,
    over the whole image, equal to the formula; records are table5's; the crops figure is written."""
    from pipeline.archs.nafnet import NAFNet
    from pipeline.metrics.ssim import ssim_rgb, ssim_y, y_channel
    rng = np.random.default_rng(0)
    for set_name in ("rain", "blur"):
        for name in ("a.png", "b.png"):
            hr = smooth_image(64, 72, int(rng.integers(100)))
            write_image(tmp_path / "restore" / set_name / "HR" / name, hr)
            write_image(tmp_path / "restore" / set_name / "LR_x1" / name,
                        np.clip(hr + rng.normal(0, 12, hr.shape), 0, 255).astype(np.uint8))
    runs = {"derain": ["nafnet_derain", "derain_sfd"], "deblur": ["nafnet_deblur"]}
    for i, run in enumerate(r for task_runs in runs.values() for r in task_runs):
        torch.manual_seed(i)
        save_state_dict(tmp_path / "models" / run / "generator.safetensors",
                        NAFNet(width=8, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1]).state_dict())
    cfg = {"derain": {"sets": ["rain"]}, "deblur": {"sets": ["blur"]}, "ssim": "basicsr", "tile": 0,
           "tile_overlap": 32}
    (tmp_path / "torch").mkdir()
    kwargs = {"sets_dir": tmp_path / "restore", "results_dir": tmp_path / "results"}
    summary = evaluate_restore(cfg, runs, "quick", models_dir=tmp_path / "models", metrics_dir=tmp_path / "metrics",
                               torch_home=tmp_path / "torch", niqe_params=write_niqe_mat(tmp_path / "niqe.mat"),
                               device=CPU, **kwargs)
    for set_name, run, channel in (("rain", "derain_sfd", "y"), ("blur", "nafnet_deblur", "rgb")):
        _, rows = read_csv(tmp_path / "metrics" / "restore" / run / f"{set_name}.csv")
        out = read_image(tmp_path / "results" / run / set_name / "a.png")
        hr = read_image(tmp_path / "restore" / set_name / "HR" / "a.png")
        a, b = (y_channel(x, False) if channel == "y" else x.astype(np.float64) for x in (out, hr))
        expected = 10 * np.log10(255 ** 2 / np.mean((a - b) ** 2))  # the whole image: no border crop
        assert float(rows[0]["psnr"]) == pytest.approx(expected, abs=1e-3)
        ssim = ssim_y(out, hr) if channel == "y" else ssim_rgb(out, hr)
        assert float(rows[0]["ssim"]) == pytest.approx(ssim, abs=1e-9)
        assert summary["results"][set_name][run]["psnr"] == pytest.approx(
            np.mean([float(r["psnr"]) for r in rows]), abs=1e-7)  # the CSV keeps 10 digits
    columns, records = read_csv(tmp_path / "metrics" / "restore.csv")
    assert tuple(columns) == RECORD_COLUMNS and {r["table"] for r in records} == {"table5"}
    assert {(r["set"], r["method"]) for r in records} == {("rain", "nafnet_derain"), ("rain", "derain_sfd"),
                                                          ("blur", "nafnet_deblur")}
    lpips = [r for r in records if r["metric"] == "lpips"]
    assert lpips and all(r["value"] == "" and "weights not available" in r["reason"] for r in lpips)

    entry = lambda task, column: {"backbone": "nafnet", "task": task, "columns": {"table5": column}}  # noqa: E731
    table = {"restore_psnr": {"nafnet_derain": entry("derain", "NAFNet"), "nafnet_deblur": entry("deblur", "NAFNet")},
             "restore_gan": {"derain_sfd": entry("derain", "+ Ours")}}
    restore_figure(cfg, runs, table, tmp_path / "crops.png", 32, **kwargs)
    assert read_image(tmp_path / "crops.png").shape[0] > 100


def test_sr_crops_show_every_model_where_the_compared_two_differ_most(sr_run, tmp_path):
    """Figs. 6-7: one row per set, a column per model and HR; the window is where the two compared outputs differ
    most, and without one of them the first and last model are compared."""
    from pipeline.crops import most_different_window
    root, _, _ = sr_run
    kwargs = {"sets_dirs": (root / "sets",), "results_dir": root / "results"}
    sr_figure(["cls"], ["bicubic", "psnr", "ESRGAN-public"], ["psnr", "ESRGAN-public"], tmp_path / "fig6.png", 32,
              **kwargs)
    assert read_image(tmp_path / "fig6.png").shape[1] > 4 * 100  # four panels side by side
    a, b = (read_image(root / "results" / m / "cls" / "a.png") for m in ("psnr", "ESRGAN-public"))
    y, x = most_different_window(a, b, 32)
    diff = np.abs(a.astype(float) - b.astype(float)).mean(axis=2)
    assert diff[y:y + 32, x:x + 32].mean() == pytest.approx(max(diff[i:i + 32, j:j + 32].mean()
                                                                for i in range(0, 128 - 31, 16)
                                                                for j in range(0, 112 - 31, 16)))
    sr_figure(["cls"], ["bicubic", "psnr"], ["esrgan", "sfd"], tmp_path / "fallback.png", 32, **kwargs)
    assert (tmp_path / "fallback.png").is_file()


def test_a_public_model_in_both_tables_keeps_each_tables_weights(sr_run, tmp_path):
    """LDL publishes one model per table under one name: each table's weights are reported, not the last one's."""
    root, cfg, _ = sr_run
    torch.save({"params": tiny_generator(4).state_dict()}, tmp_path / "ldl_real.pth")
    both = {**cfg, "external": [{"name": "LDL-public", "weights": str(root / "public.pth"), "table": "table1"},
                                {"name": "LDL-public", "weights": str(tmp_path / "ldl_real.pth"), "table": "table2"}]}
    summary = evaluate_sr(both, TABLES, "quick", sets_dirs=(root / "sets",), models_dir=root / "models",
                          results_dir=tmp_path / "results", metrics_dir=tmp_path / "metrics",
                          torch_home=root / "torch", niqe_params=write_niqe_mat(tmp_path / "niqe.mat"), device=CPU)
    assert str(root / "public.pth") in summary["weights"]["LDL-public (table1)"]
    assert str(tmp_path / "ldl_real.pth") in summary["weights"]["LDL-public (table2)"]
    assert {"cls", "rw"} <= set(summary["results"]) and "LDL-public" in summary["results"]["rw"]


def test_an_external_checkpoint_is_read_from_the_wrapper_key_it_names(sr_run, tmp_path):
    """A BasicSR file with params and params_ema: `key: params` evaluates the weights its authors test."""
    root, cfg, _ = sr_run
    plain, ema = tiny_generator(5).state_dict(), tiny_generator(6).state_dict()
    torch.save({"params": plain, "params_ema": ema}, tmp_path / "both.pth")
    entry = {"name": "LDL-public", "weights": str(tmp_path / "both.pth"), "table": "table1"}
    for key, expected in ((None, ema), ("params", plain)):
        (model,) = [m for m in sr_models({**cfg, "external": [{**entry, **({"key": key} if key else {})}]}, TABLES,
                                         root / "models") if m.external]
        upscale, description = load_upscaler(model, 4, 0, 32, CPU)
        lr = read_image(root / "sets" / "cls" / "LR_x4" / "a.png")
        net = build_generator(expected)
        assert np.array_equal(upscale(lr), upscale_image(net, lr, 0, 32, CPU))
        assert ("'params' weights" in description) == (key == "params")
    with pytest.raises(CheckpointError, match="has no `params_g` state dict"):
        load_upscaler(model._replace(key="params_g"), 4, 0, 32, CPU)
