"""pipeline.runs: per-backbone settings, `init_from` verified and converted, SwinIR trained end to end, what
a run resumes, and the training stages' GPU count."""
import importlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline import runs
from pipeline.archs.rrdbnet import RRDBNet, basicsr_to_esrgan
from pipeline.archs.swinir import SwinIR
from pipeline.checkpoint import CheckpointError, load_state_dict, save_state_dict
from pipeline.params import ParamError
from pipeline.fileio import write_image
from pipeline.sfd_iqa import load_sfd_iqa
from pipeline.sr import build_generator
from pipeline.train_step import PSNRStep

RRDB = {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}
SWIN = {"img_size": 8, "embed_dim": 12, "depths": [2], "num_heads": [2], "window_size": 4, "mlp_ratio": 2.0,
        "num_feat": 8}
MODEL = {"rrdbnet": RRDB, "swinir": SWIN, "clip": {"arch": "clip_tiny", "weights": "none"},
         "vgg19": {"weights": "none"}, "featd": {"widths": [16, 16, 8, 8]}, "lpp": {"n_ctx": 4},
         "image_d": {"num_feat": 8}, "prompt_logit_scale": 100.0, "scale": 4}
LAMBDAS = {"lambda1": 1.0, "lambda2": 1.0, "lambda3": 0.1, "lambda4": 0.1, "image_gan_weight": 0.005}
CFG = {"lr": 1.0e-3, "betas": [0.9, 0.99], "gamma": 0.5, "milestones": [3], "batch": 2, "patch": 32, "workers": 0,
       "iters": 4, "ckpt_every": 2, "val_every": 4, "log_every": 1, "max_bad_steps": 3,
       "train_set": "train", "val_set": "val", "init_from": None}
SWIN_CFG = {**CFG, "iters": 3, "lr": 2.0e-4}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_reads_its_backbones_schedule_the_speed_switches_and_adam():
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    cfg = runs.train_config(params, "train_gan", "swinir")
    assert cfg == {**params["speed"], **params["optim"], **params["quick"]["train_gan"]["swinir"]}
    assert runs.train_config(params, "train_real", None)["degrade_size"] == \
        params["quick"]["train_real"]["degrade_size"]
    keys = runs.reads(params, "train_gan", "swinir_sfd")
    assert {"quick.train_gan.swinir", "quick.model.swinir", "lambda3", "lambda4"} <= set(keys)
    assert not {"quick.train_gan.rrdbnet", "quick.model.rrdbnet", "image_gan_weight"} & set(keys)
    assert runs.run_lambdas(params, "train_gan", "esrgan") == {k: params[k] for k in
                                                               ("lambda1", "lambda2", "image_gan_weight")}
    # a run may read its weights from params of its own: the terms keep their names
    params["lambda4_alt"] = 0.05
    params["runs"]["train_gan"]["sfd"]["weights"]["w4"] = "lambda4_alt"
    assert runs.run_lambdas(params, "train_gan", "sfd") == {"lambda1": 1.0, "lambda2": 1.0, "lambda3": 0.1,
                                                            "lambda4": 0.05}
    params["runs"]["train_gan"]["esrgan"]["weights"]["w4"] = "lambda3"
    with pytest.raises(ParamError, match=r"`runs.train_gan.esrgan.weights`.*w4 repeats w3"):
        runs.run_lambdas(params, "train_gan", "esrgan")
    params["lambda4_alt"] = -1
    with pytest.raises(ParamError, match=r"`lambda4_alt` \(read by `runs.train_gan.sfd.weights`\)"):
        runs.run_lambdas(params, "train_gan", "sfd")
    params["runs"]["train_gan"]["tgd"]["backbone"] = "edsr"
    with pytest.raises(ParamError, match="`runs.train_gan.tgd.backbone`"):
        runs.reads(params, "train_gan", "tgd")


def test_init_from_is_verified_and_converted(sets):
    torch.manual_seed(0)
    rrdb, swin = RRDBNet(**RRDB), SwinIR(**SWIN)
    torch.save({"params_ema": basicsr_to_esrgan(rrdb.state_dict())}, "rrdb.pth")  # ESRGAN key names
    torch.save({"params": swin.state_dict()}, "swinir.pth")

    out = runs.run_pretrain({"init_from": "rrdb.pth", "val_set": "val"}, MODEL, seed=0, name="psnr")
    assert out == Path("models/psnr/generator.safetensors")
    assert same_weights(load_state_dict(out)[0], rrdb.state_dict())  # stored with BasicSR key names
    # every output the stage declares exists (DVC refuses a stage without them); the log is the validation
    assert Path("checkpoints/psnr").is_dir() and Path("dvclive/psnr/plots").is_dir()
    log = yaml.safe_load(Path("dvclive/psnr/metrics.json").read_text())
    assert log["init_from"] == "rrdb.pth" and 0 < log["val"]["psnr_y"] < 100
    out = runs.run_pretrain({"init_from": "swinir.pth", "val_set": "val"}, MODEL, seed=0, name="swinir_psnr",
                           backbone="swinir")
    assert out == Path("models/swinir_psnr/generator.safetensors")
    assert same_weights(load_state_dict(out)[0], swin.state_dict())

    with pytest.raises(CheckpointError, match="not a SwinIR"):
        runs.run_pretrain({"init_from": "rrdb.pth"}, MODEL, seed=0, name="swinir_psnr", backbone="swinir")
    with pytest.raises(CheckpointError, match="profile's sizes"):
        runs.run_pretrain({"init_from": "rrdb.pth"}, {**MODEL, "rrdbnet": {**RRDB, "num_feat": 16}}, seed=0,
                          name="psnr")
    torch.save({"params": {"conv.weight": torch.zeros(1)}}, "other.pth")
    with pytest.raises(CheckpointError, match=r"^other\.pth: checkpoint fits none of RRDBNet"):  # typed: the stage prints it as one line
        runs.run_pretrain({"init_from": "other.pth"}, MODEL, seed=0, name="psnr")


def test_swinir_learns_under_the_psnr_step():
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 32, 32).mul(4).round().div(4)  # flat 8 x 8 blocks after x4 nearest upscaling
    batch = {"lr": hr[..., ::4, ::4], "hr": hr[..., ::4, ::4].repeat_interleave(4, -1).repeat_interleave(4, -2)}
    step = PSNRStep(SwinIR(**SWIN), {**CFG, "milestones": [1000]}, torch.device("cpu"))
    losses = [step.step(batch, i)["l1"] for i in range(1, 61)]
    assert losses[-1] < 0.5 * losses[0]


def write_pairs(root: str, lr_dir: str, degrade, seed: int) -> None:
    """`root`/train (sub-images) and `root`/val (whole images): 48 px HR and `degrade(hr, rng)` in `lr_dir`."""
    rng = np.random.default_rng(seed)
    for name, sub in (("train", "_sub"), ("val", "")):
        for i in range(3):
            hr = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
            write_image(Path(f"{root}/{name}/HR{sub}/{i}.png"), hr)
            write_image(Path(f"{root}/{name}/{lr_dir}{sub}/{i}.png"), degrade(hr, rng))


@pytest.fixture
def sets(tmp_path, monkeypatch):
    """data/sets/{train,val}, x4 pairs, under a temporary working directory."""
    monkeypatch.chdir(tmp_path)
    write_pairs("data/sets", "LR_x4", lambda hr, rng: hr[::4, ::4].copy(), 0)
    return tmp_path


def test_swinir_pretrain_then_sfd_gan_training(sets):
    cfg = SWIN_CFG
    psnr = runs.run_pretrain(cfg, MODEL, seed=0, name="swinir_psnr", backbone="swinir")
    net = build_generator(psnr)
    assert isinstance(net, SwinIR)
    torch.manual_seed(0)
    assert not same_weights(net.state_dict(), runs.new_generator("swinir", SWIN).state_dict())  # it trained

    out = runs.run_gan("sfd", cfg, MODEL, LAMBDAS, seed=0, name="swinir_sfd", init="swinir_psnr", backbone="swinir")
    gan = build_generator(out / "generator.safetensors")
    assert isinstance(gan, SwinIR) and not same_weights(gan.state_dict(), net.state_dict())
    assert load_sfd_iqa(out / "sfd_iqa.safetensors").featd is not None
    assert (sets / "checkpoints" / "swinir_sfd" / "last.pt").exists()


class Interrupt(Exception):
    pass


class Trained:
    """The iterations PSNRStep trains; raises Interrupt at `stop_at`, like a run killed there."""

    def __init__(self):
        self.iterations, self.stop_at = [], None

    def wrap(self, step):
        def recorded(inner, batch, iteration):
            if iteration == self.stop_at:
                raise Interrupt
            self.iterations.append(iteration)
            return step(inner, batch, iteration)

        return recorded


@pytest.fixture
def trained(monkeypatch) -> Trained:
    record = Trained()
    monkeypatch.setattr(PSNRStep, "step", record.wrap(PSNRStep.step))
    return record


def test_finished_run_whose_export_failed_is_not_retrained(sets, trained, monkeypatch):
    cfg = CFG
    exported = {}

    def disk_full(path, state, meta=None):
        exported.update(state)
        raise OSError("No space left on device")

    monkeypatch.setattr(runs, "save_state_dict", disk_full)
    with pytest.raises(OSError):
        runs.run_pretrain(cfg, MODEL, seed=0, name="psnr")
    assert trained.iterations == [1, 2, 3, 4]
    monkeypatch.setattr(runs, "save_state_dict", save_state_dict)
    trained.iterations.clear()
    out = runs.run_pretrain(cfg, MODEL, seed=0, name="psnr")
    assert trained.iterations == []  # the finished checkpoint was loaded: only the export ran
    assert same_weights(load_state_dict(out)[0], exported)


def test_changed_logging_resumes_and_changed_lr_restarts(sets, trained):
    cfg = CFG
    trained.stop_at = 3
    with pytest.raises(Interrupt):  # killed after the checkpoint of iteration 2
        runs.run_pretrain(cfg, MODEL, seed=0, name="psnr")
    trained.stop_at, trained.iterations = None, []
    runs.run_pretrain({**cfg, "log_every": 2, "val_every": 3, "ckpt_every": 1, "cudnn_benchmark": False,
                       "max_bad_steps": 10}, MODEL, seed=0, name="psnr")
    assert trained.iterations == [3, 4]
    trained.iterations.clear()
    runs.run_pretrain({**cfg, "lr": 2.0e-3}, MODEL, seed=0, name="psnr")
    assert trained.iterations == [1, 2, 3, 4]


class Relaunched(Exception):
    pass


def relaunch(gpus: int) -> None:
    raise Relaunched(gpus)


@pytest.mark.parametrize("stage, run", [("pretrain_psnr", "psnr"), ("pretrain_real", "realesrnet"),
                                        ("train_gan", "sfd"), ("train_real", "real")])
def test_training_stages_relaunch_with_the_speed_sections_gpus(monkeypatch, stage, run):
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["profile"] = "paper"
    params["speed"]["gpus"] = 3
    module = importlib.import_module(f"stages.{stage}")
    monkeypatch.setattr(importlib.import_module("stages.training"), "stage_params", lambda *_: params)
    monkeypatch.setattr(runs, "relaunch_under_torchrun", relaunch)
    with pytest.raises(Relaunched) as relaunched:
        module.main(stage, run)
    assert relaunched.value.args == (3,)


@pytest.mark.parametrize("group", [("esrgan", "featd", "tgd", "sfd"), ("swinir_esrgan", "swinir_sfd")])
def test_the_ablation_runs_differ_only_in_their_discriminators(group):
    """Fig. 8's four RRDBNet runs (and Table 1's SwinIR pair): one schedule, one start, one L1 and perceptual
    weight, and every adversarial term weighted alike; only the variant (which discriminators) differs."""
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    entries = {run: params["runs"]["train_gan"][run] for run in group}
    assert len({(e["backbone"], e["init"]) for e in entries.values()}) == 1
    assert len({repr(runs.train_config(params, "train_gan", e["backbone"])) for e in entries.values()}) == 1
    lambdas = {run: runs.run_lambdas(params, "train_gan", run) for run in group}
    assert len({(w["lambda1"], w["lambda2"]) for w in lambdas.values()}) == 1
    adversarial = {v for w in lambdas.values() for k, v in w.items() if k not in ("lambda1", "lambda2")}
    assert adversarial == {0.1}
    assert len({e["variant"] for e in entries.values()}) == len(group)


def test_the_exported_generator_is_the_ema(sets):
    out = runs.run_pretrain({**CFG, "ema_decay": 0.5}, MODEL, seed=0, name="psnr")
    ema, meta = load_state_dict(out)
    assert meta["source"] == "trained by pretrain_psnr, as their EMA (decay 0.5)"
    plain, meta = load_state_dict(runs.run_pretrain({**CFG, "ema_decay": 0}, MODEL, seed=0, name="psnr"))
    assert meta["source"] == "trained by pretrain_psnr" and not same_weights(ema, plain)


PARAMS_YAML = Path(__file__).resolve().parents[1] / "params.yaml"
DEGRADATION = {**yaml.safe_load(PARAMS_YAML.read_text())["degradation"], "pool_size": 2}
REAL_CFG = {**{k: v for k, v in CFG.items() if k != "train_set"}, "train_sets": ["real"], "degrade_size": 96,
            "milestones": [], "iters": 2, "ckpt_every": 2, "val_every": 2}


def test_realesrnets_target_is_cut_from_the_sharpened_crop_and_realesrgans_is_sharpened_after_the_pool():
    """RealESRNet (gt_usm true) sharpens the whole degradation crop once and cuts LR and target from it;
    RealESRGAN cuts the plain crop and sharpens the patch after the pool (realesrgan_model.py feed_data)."""
    from pipeline.data.degradation import PairPool, RealESRGANDegradation, usm_sharp
    from pipeline.train_step import GANStep, degradation_seed
    degradation = RealESRGANDegradation(DEGRADATION)
    hr = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(degradation_seed(0, 3, 0))
    sharp = usm_sharp(hr, **DEGRADATION["usm"])
    lr = degradation.degrade(sharp, generator)
    y, x = (int(torch.randint(lr.shape[-1] - 8 + 1, (1,), generator=generator)) for _ in range(2))
    lr, sharp_patch = lr[..., y:y + 8, x:x + 8], sharp[..., 4 * y:4 * y + 32, 4 * x:4 * x + 32]
    plain_patch = hr[..., 4 * y:4 * y + 32, 4 * x:4 * x + 32]

    net = PSNRStep(RRDBNet(**RRDB), CFG, torch.device("cpu"), degradation, PairPool(2))
    got_lr, got_hr = net.real_pair({"hr": hr}, 3, sharpened_hr=True)
    assert torch.equal(got_lr, lr) and torch.equal(got_hr, sharp_patch)
    band = (usm_sharp(plain_patch, **DEGRADATION["usm"]) - sharp_patch).abs()
    assert band.max() > 1e-3  # sharpening the patch instead would differ

    gan = GANStep("esrgan", RRDBNet(**RRDB), MODEL, LAMBDAS, CFG, torch.device("cpu"), degradation, PairPool(2))
    got_lr, got_hr, target = gan.make_pair({"hr": hr}, 3)
    assert torch.equal(got_lr, lr) and torch.equal(got_hr, plain_patch)
    assert torch.equal(target, usm_sharp(plain_patch, **DEGRADATION["usm"]))


@pytest.fixture
def real_sets(sets):
    """data/sets/real/HR_sub: HR crops the degradation can take (>= its 74 px minimum)."""
    rng = np.random.default_rng(1)
    for i in range(2):
        write_image(Path(f"data/sets/real/HR_sub/{i}.png"), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    return sets


def test_realesrnet_trains_from_its_init_and_the_real_world_run_starts_from_it(real_sets, monkeypatch):
    params = yaml.safe_load(PARAMS_YAML.read_text())
    assert params["runs"]["train_real"]["real"]["init"] == "realesrnet"
    assert params["runs"]["pretrain_real"]["realesrnet"]["init"] == "psnr"
    registry = yaml.safe_load((PARAMS_YAML.parent / "data/registry.yaml").read_text())
    assert params["paper"]["pretrain_real"]["init_from"] == registry["realesrnet_x4plus"]["target"]
    assert "realesrnet_x4plus" in params["paper"]["download"]["groups"]["train_weights"]["entries"]

    psnr = runs.run_pretrain(CFG, MODEL, seed=0, name="psnr")
    out = runs.run_pretrain(REAL_CFG, MODEL, seed=0, name="realesrnet", init="psnr", degradation_cfg=DEGRADATION)
    state, meta = load_state_dict(out)
    assert meta["source"] == "trained by pretrain_real" and not same_weights(state, load_state_dict(psnr)[0])
    assert (Path("checkpoints/realesrnet/last.pt")).exists()

    loaded = []
    load = runs.load_generator
    monkeypatch.setattr(runs, "load_generator", lambda path, *a: loaded.append(Path(path)) or load(path, *a))
    runs.run_gan("sfd", REAL_CFG, MODEL, LAMBDAS, seed=0, name="real", init="realesrnet",
                 degradation_cfg=DEGRADATION)
    assert loaded == [Path("models/realesrnet/generator.safetensors")]

    # the paper profile converts the public RealESRNet_x4plus ({'params_ema': ...}) instead of training
    torch.manual_seed(2)
    public = RRDBNet(**RRDB)
    torch.save({"params_ema": public.state_dict()}, "RealESRNet_x4plus.pth")
    out = runs.run_pretrain({"init_from": "RealESRNet_x4plus.pth", "val_set": "val"}, MODEL, seed=0,
                            name="realesrnet", init="psnr", degradation_cfg=DEGRADATION)
    assert same_weights(load_state_dict(out)[0], public.state_dict())


NAFNET = {"width": 8, "middle_blk_num": 1, "enc_blk_nums": [1], "dec_blk_nums": [1]}


def test_a_restoration_run_reads_its_tasks_schedule_at_scale_1():
    params = yaml.safe_load(PARAMS_YAML.read_text())
    keys = set(runs.reads(params, "restore_gan", "deblur_sfd"))
    assert {"quick.restore_gan.deblur", "quick.model.nafnet", "runs.restore_gan.deblur_sfd.task", "lambda3",
            "lambda4"} <= keys
    assert not {"scale", "quick.restore_gan.derain", "degradation"} & keys
    assert runs.train_config(params, "restore_psnr", "derain")["pixel_loss"] == "psnr"
    params["runs"]["restore_gan"]["derain_vd"]["task"] = "denoise"
    with pytest.raises(ParamError, match=r"`runs.restore_gan.derain_vd.task` must be one of \('derain', 'deblur'\)"):
        runs.reads(params, "restore_gan", "derain_vd")


@pytest.fixture
def restore_sets(tmp_path, monkeypatch):
    """data/restore/{train,val}: clean HR and a noisy LR_x1 of the same size (scale 1)."""
    monkeypatch.chdir(tmp_path)
    write_pairs("data/restore", "LR_x1", lambda hr, rng: np.clip(hr + rng.normal(0, 20, hr.shape), 0, 255)
                .astype(np.uint8), 3)
    return tmp_path


def test_nafnet_fidelity_then_sfd_at_scale_1(restore_sets):
    from pipeline.archs.nafnet import NAFNet
    model = {**MODEL, "nafnet": NAFNET}
    cfg = {**CFG, "pixel_loss": "psnr", "patch": 32}
    out = runs.run_pretrain(cfg, model, seed=0, name="nafnet_derain", backbone="nafnet", sets=runs.RESTORE_SETS,
                            scale=1)
    state, meta = load_state_dict(out)
    assert meta["source"] == "trained by restore_psnr"
    log = yaml.safe_load(Path("dvclive/nafnet_derain/metrics.json").read_text())
    assert "psnr_loss" in log["train"] and log["train"]["psnr_loss"] < 0  # minus a PSNR in dB
    net = build_generator(out)
    assert isinstance(net, NAFNet) and net.scale == 1
    gan = runs.run_gan("sfd", {**CFG, "patch": 32}, model, LAMBDAS, seed=0, name="derain_sfd", init="nafnet_derain",
                       backbone="nafnet", sets=runs.RESTORE_SETS, scale=1)
    restored = build_generator(gan / "generator.safetensors")
    x = torch.rand(1, 3, 40, 44)
    assert restored(x).shape == x.shape and not same_weights(restored.state_dict(), state)
    assert load_sfd_iqa(gan / "sfd_iqa.safetensors").featd is not None
