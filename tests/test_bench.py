"""`python -m bench`: its paper-scale configuration, its arithmetic, and one `--small` run on the CPU
(to keep it working; nothing here asserts a speed)."""
import json
import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from bench import __main__ as cli
from bench import data, iqa, timing
from bench import steps as bench_steps

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_paper_config_is_the_paper_scale_with_random_weights():
    config = bench_steps.load_config(PARAMS, small=False, batch=None, compile_=True)
    model = config["model"]
    assert model["rrdbnet"] == {"num_feat": 64, "num_block": 23, "num_grow_ch": 32}
    assert model["clip"] == {"arch": "RN50-quickgelu", "weights": "none", "position": "none"}
    assert model["vgg19"] == {"weights": "none"}
    for section in ("train_gan", "train_real"):
        assert (config[section]["batch"], config[section]["patch"]) == (16, 256)
        assert config[section].get("compile", True)
    assert config["train_real"]["degrade_size"] == 400
    assert config["degradation"]["pool_size"] % 16 == 0 and config["degradation"]["pool_size"] >= 180
    assert config["data"] == {"patch": 256, "degrade_size": 400}


def test_small_config_and_overrides():
    config = bench_steps.load_config(PARAMS, small=True, batch=None, compile_=False)
    assert config["model"]["clip"]["arch"] == "clip_tiny"
    assert (config["train_gan"]["batch"], config["train_gan"]["patch"]) == (2, 64)
    assert config["train_gan"]["compile"] is False and config["train_real"]["compile"] is False
    assert config["degradation"]["pool_size"] == 2
    assert bench_steps.load_config(PARAMS, small=False, batch=4, compile_=True)["train_real"]["batch"] == 4
    baseline = bench_steps.load_config(PARAMS, small=False, batch=None, compile_=True, fp32_eager=True)
    for section in ("train_gan", "train_real"):
        assert all(baseline[section][k] is False for k in ("bf16", "channels_last", "compile", "fused_adam"))


def test_flop_count_includes_the_backward_pass():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    forward = 2 * 2 * 8 * 3 * 9 * 16 * 16  # 2 FLOPs per multiply-add, N * Cout * Cin * k * k * H * W
    assert timing.count_flops(lambda: conv(x)) == forward
    assert timing.count_flops(lambda: conv(x).sum().backward()) == 3 * forward  # + input and weight gradients


def test_workers_and_peaks():
    assert data.workers_needed(170.0, 50.0) == 4
    assert data.workers_needed(100.0, 100.0) == 1
    assert timing.bf16_peak_tflops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4)
    assert timing.bf16_peak_tflops("NVIDIA H100 PCIe") == pytest.approx(756.0)
    assert timing.bf16_peak_tflops("NVIDIA H200") == pytest.approx(989.4)
    assert timing.bf16_peak_tflops("Tesla T4") is None


def test_timed_reports_one_slow_call_apart_from_the_median():
    calls = []

    def fn(i):
        calls.append(i)
        time.sleep(0.12 if i == 4 else 0.01)  # one slow call among the timed ones, as a late compilation would be

    r = timing.timed(fn, 2, 5, torch.device("cpu"))
    assert calls == list(range(7))
    assert 0.01 <= r["median_seconds_per_iter"] < 0.12 <= r["slowest_seconds_per_iter"]
    assert r["seconds_per_iter"] >= (0.12 + 4 * 0.01) / 5


def test_small_run_writes_a_consistent_report(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert cli.main(["--small", "--output", str(out), "--warmup", "1", "--iters", "1", "--iqa-size", "64", "96",
                       "--data-batch", "2", "--profile", "1", "--iqa-modes", "fp32", "channels_last"]) == 0
    results = json.loads(out.read_text())
    assert results["mode"] == "small" and results["env"]["device_type"] == "cpu"
    assert results["env"]["torch"] == torch.__version__
    steps = results["train_step"]
    assert set(steps) == set(bench_steps.STEPS)
    for r in steps.values():
        assert r["switches"] == {"bf16": False, "channels_last": False, "compile": False, "fused_adam": False}
        assert r["images_per_s"] == pytest.approx(r["batch"] / r["seconds_per_iter"])
        assert 0 < r["median_seconds_per_iter"] <= r["slowest_seconds_per_iter"]
        assert r["flops_per_iter"] > 0 and r["skipped_steps"] == 0 and r["peak_memory_gib"] is None
        assert r["fraction_of_bf16_peak"] is None
    assert steps["real"]["warmup"] == 2  # fills the one-batch pair pool before timing
    assert results["sfd_over_esrgan_step_time"] == pytest.approx(
        steps["sfd"]["seconds_per_iter"] / steps["esrgan"]["seconds_per_iter"])

    for kind, r in steps.items():  # the profile's phases are the step's; on a CPU they are CPU times
        prof = r["profile"]
        assert prof["iters"] == 1 and prof["gpu_kernel_ms"] is None and r["gpu_busy_fraction"] is None
        phases = {"make_pair", "g_forward", "g_backward", "g_optimizer", "d_forward", "d_backward", "d_optimizer"}
        assert set(prof["phases_cpu_ms"]) == phases
        assert all(v > 0 for v in prof["phases_cpu_ms"].values())
        assert sum(prof["phases_cpu_ms"].values()) <= prof["profiled_wall_ms"]
        assert prof["top_kernels"] == []
        assert prof["top_ops"] and any(op["op"] == "aten::mkldnn_convolution" for op in prof["top_ops"])
        assert [op["ms"] for op in prof["top_ops"]] == sorted((op["ms"] for op in prof["top_ops"]), reverse=True)

    iqa = results["sfd_iqa"]
    assert iqa["size"] == [64, 96] and set(iqa) == {"batch", "size", "target_mode", "modes"}
    assert iqa["target_mode"] == "fp32" and set(iqa["modes"]) == {"fp32", "channels_last"}
    for key in ("batch_2", "batch_1"):
        r = iqa["modes"]["fp32"][key]
        assert r["iqa_over_clip_throughput"] == pytest.approx(
            r["sfd_iqa"]["images_per_s"] / r["clip_image_tower"]["images_per_s"])
        assert r["sfd_iqa"]["flops_per_iter"] > r["clip_image_tower"]["flops_per_iter"]  # CLIP + Feat-D + LPP
        assert iqa["modes"]["channels_last"][key]["sfd_iqa"]["flops_per_iter"] == r["sfd_iqa"]["flops_per_iter"]
        assert any(op["op"] == "aten::mkldnn_convolution" for op in r["sfd_iqa"]["profile"]["top_ops"])
    fp32 = iqa["modes"]["fp32"]
    # twice the images, twice the FLOPs, but for the attention pool's position-table resize (once per call)
    assert fp32["batch_2"]["clip_image_tower"]["flops_per_iter"] == pytest.approx(
        2 * fp32["batch_1"]["clip_image_tower"]["flops_per_iter"], rel=1e-2)

    data = results["data"]
    assert data["sub_images"]["count"] == 8  # two 512 x 512 images cut into 480 px sub-images with step 240
    per_worker = data["images_per_s_per_worker"]
    assert per_worker["classical"] == pytest.approx(1 / data["decode_crop_seconds_per_image"]["classical"])
    assert per_worker["real_degradation_in_workers"] < per_worker["real"]
    assert data["degradation"]["seconds_per_image"] == pytest.approx(data["degradation"]["seconds_per_batch"] / 2)
    assert data["workers_needed"]["classical"] == {
        "target": math.ceil(timing.TARGETS["sfd_images_per_s"]["value"] / per_worker["classical"]),
        "measured_sfd": math.ceil(steps["sfd"]["images_per_s"] / per_worker["classical"])}
    assert results["targets"]["iqa_over_clip_throughput"]["measured"] == fp32["batch_2"]["iqa_over_clip_throughput"]
    assert all(t["met"] is None for t in results["targets"].values())  # judged only at paper scale on a GPU
    assert "step sfd" in capsys.readouterr().out


def test_compiled_iqa_modes_compile_the_tower_and_featd_and_leave_the_eager_modes_eager(monkeypatch):
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, mode=None: compiled.append((type(self).__name__, mode)))
    config = bench_steps.load_config(PARAMS, small=True, batch=None, compile_=False)
    out = iqa.bench_iqa(config, torch.device("cpu"), 1, (64, 64), 0, 1, None,
                          ("fp32", "bf16_channels_last_cudagraphs", "channels_last"))
    assert compiled == [("CLIPEncoder", "reduce-overhead"), ("FeatD", "reduce-overhead")]
    assert list(out["modes"]) == ["fp32", "bf16_channels_last_cudagraphs", "channels_last"]
    flops = {mode: r["batch_1"]["sfd_iqa"]["flops_per_iter"] for mode, r in out["modes"].items()}
    assert flops["fp32"] == flops["channels_last"] > 0
