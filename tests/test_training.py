"""Training loop guarantees: exact resume, the NaN guard, and a 2-process DDP run with identical ranks."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import yaml

from pipeline.archs.rrdbnet import RRDBNet
from pipeline.checkpoint import CheckpointError
from pipeline.data.datasets import PairedPatches
from pipeline.data.degradation import PairPool, RealESRGANDegradation
from pipeline.fileio import write_image
from pipeline.train_step import GANStep, PSNRStep, unwrap
from pipeline.trainer import SeededBatches, save_checkpoint, train

MODEL = {"rrdbnet": {"num_feat": 8, "num_block": 1, "num_grow_ch": 4}, "clip": {"arch": "clip_tiny", "weights": "none"},
         "vgg19": {"weights": "none"}, "featd": {"widths": [16, 16, 8, 8]}, "lpp": {"n_ctx": 4},
         "image_d": {"num_feat": 8}, "prompt_logit_scale": 100.0, "scale": 4}
LAMBDAS = {"lambda1": 1.0, "lambda2": 1.0, "lambda3": 0.1, "lambda4": 0.1, "image_gan_weight": 0.005}
CFG = {"lr": 1.0e-4, "betas": [0.9, 0.99], "gamma": 0.5, "milestones": [3], "batch": 2, "patch": 32, "workers": 0,
       "iters": 6, "ckpt_every": 2, "val_every": 100, "log_every": 1, "max_bad_steps": 3, "seed": 0, "config": {"test": 1},
       "ema_decay": 0.9}
# The real-world step: degradation of 96 px crops, 64 px patches, a pool of one global batch.
REAL_CFG = {**CFG, "batch": 4, "patch": 64, "degrade_size": 96}
DEGRADATION = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())["degradation"]


@pytest.fixture(scope="module")
def train_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("set")
    rng = np.random.default_rng(0)
    for i in range(6):
        hr = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        write_image(root / "HR_sub" / f"{i}.png", hr)
        write_image(root / "LR_x4_sub" / f"{i}.png", hr[::4, ::4].copy())
    return root


@pytest.fixture(scope="module")
def real_set(tmp_path_factory) -> Path:
    """HR sub-images large enough for the degradation (its LR is made on the fly)."""
    root = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(1)
    for i in range(8):
        write_image(root / "HR_sub" / f"{i}.png", rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
    return root


def sfd_step(variant: str = "sfd") -> GANStep:
    torch.manual_seed(0)
    return GANStep(variant, RRDBNet(**MODEL["rrdbnet"]), MODEL, LAMBDAS, CFG, torch.device("cpu"))


def real_step() -> GANStep:
    """train_real's step; under DDP each rank keeps a pool of its half of the batch."""
    torch.manual_seed(0)
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    return GANStep("sfd", RRDBNet(**MODEL["rrdbnet"]), MODEL, LAMBDAS, REAL_CFG, torch.device("cpu"),
                   RealESRGANDegradation(DEGRADATION), PairPool(REAL_CFG["batch"] // world))


def weights(step) -> dict[str, torch.Tensor]:
    """Every trained network's weights, the generator's EMA among them."""
    nets = {n: unwrap(step.nets[n]) for n in step.optims} | ({"ema": step.ema} if step.ema is not None else {})
    return {f"{n}.{k}": v.clone() for n, net in nets.items() for k, v in net.state_dict().items()}


class Interrupt(Exception):
    pass


class StopAt:
    """Wraps a step and raises at `iteration`, like a run killed between two checkpoints."""

    def __init__(self, step, iteration):
        self.inner, self.iteration = step, iteration

    def step(self, batch, iteration):
        if iteration == self.iteration:
            raise Interrupt
        return self.inner.step(batch, iteration)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_batches_are_a_function_of_seed_and_iteration():
    full = list(SeededBatches(10, 4, seed=1, start=0, stop=7))
    assert list(SeededBatches(10, 4, seed=1, start=3, stop=7)) == full[3:]
    ranks = [list(SeededBatches(10, 4, seed=1, start=0, stop=7, rank=r, world=2)) for r in (0, 1)]
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(k) for k in full]


def test_resume_equals_uninterrupted(tmp_path, train_set):
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    straight = sfd_step()
    train(straight, data, CFG, tmp_path / "straight")

    with pytest.raises(Interrupt):
        train(StopAt(sfd_step(), 4), data, CFG, tmp_path / "resumed")  # dies after the checkpoint of iteration 2
    saved = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert saved["iteration"] == 2
    resumed = sfd_step()
    train(resumed, data, CFG, tmp_path / "resumed")
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and {"g", "featd", "lpp"} <= set(straight.optims) and "ema.conv_first.weight" in a
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["g.conv_first.weight"], weights(sfd_step())["g.conv_first.weight"])


def test_changed_params_start_afresh(tmp_path, train_set):
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    with pytest.raises(Interrupt):
        train(StopAt(PSNRStep(RRDBNet(**MODEL["rrdbnet"]), CFG, torch.device("cpu")), 4), data, CFG, tmp_path)
    other = {**CFG, "config": {"test": 2}}
    step = StopAt(PSNRStep(RRDBNet(**MODEL["rrdbnet"]), CFG, torch.device("cpu")), 2)
    with pytest.raises(Interrupt):  # iteration 2 is reached again: the old checkpoint was not resumed
        train(step, data, other, tmp_path)


def logged_steps(tsv: Path) -> list[int]:
    return [int(line.split("\t")[0]) for line in tsv.read_text().splitlines()[1:]]


def test_dvclive_records_each_value_at_its_iteration(tmp_path, train_set):
    """Logged every 2nd iteration, validated every 3rd; killed at 5 and resumed from the checkpoint of 4."""
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    cfg, live = {**CFG, "log_every": 2, "val_every": 3}, tmp_path / "live"
    with pytest.raises(Interrupt):
        train(StopAt(PSNRStep(RRDBNet(**MODEL["rrdbnet"]), CFG, torch.device("cpu")), 5), data, cfg, tmp_path,
              lambda step: {"psnr_y": 20.0}, live)
    train(PSNRStep(RRDBNet(**MODEL["rrdbnet"]), CFG, torch.device("cpu")), data, cfg, tmp_path,
          lambda step: {"psnr_y": 20.0}, live)
    assert logged_steps(live / "plots" / "metrics" / "train" / "l1.tsv") == [2, 4, 6]
    assert logged_steps(live / "plots" / "metrics" / "val" / "psnr_y.tsv") == [3, 6]


def test_a_resumed_run_logs_each_iteration_once(tmp_path, train_set):
    """Logged every iteration, validated every 2nd, killed at 5 after logging 1-4, resumed from the checkpoint of 3:
    iteration 4 is logged again and must replace the first run's rows, not follow them."""
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    cfg, live = {**CFG, "log_every": 1, "val_every": 2, "ckpt_every": 3, "iters": 5}, tmp_path / "live"
    with pytest.raises(Interrupt):
        train(StopAt(PSNRStep(RRDBNet(**MODEL["rrdbnet"]), CFG, torch.device("cpu")), 5), data, cfg, tmp_path,
              lambda step: {"psnr_y": 20.0}, live)
    assert logged_steps(live / "plots" / "metrics" / "train" / "l1.tsv") == [1, 2, 3, 4]
    train(PSNRStep(RRDBNet(**MODEL["rrdbnet"]), CFG, torch.device("cpu")), data, cfg, tmp_path,
          lambda step: {"psnr_y": 20.0}, live)
    assert logged_steps(live / "plots" / "metrics" / "train" / "l1.tsv") == [1, 2, 3, 4, 5]
    assert logged_steps(live / "plots" / "metrics" / "val" / "psnr_y.tsv") == [2, 4, 5]


def test_checkpoint_bytes_do_not_depend_on_the_temporary_name(tmp_path):
    state = {"iteration": 3, "w": torch.arange(4.0)}
    save_checkpoint(tmp_path / "a" / "last.pt", state)
    save_checkpoint(tmp_path / "b" / "last.pt", state)
    assert (tmp_path / "a" / "last.pt").read_bytes() == (tmp_path / "b" / "last.pt").read_bytes()
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["iteration"] == 3


class NaNAt:
    """Feeds NaN images at the given iterations."""

    def __init__(self, step, iterations):
        self.inner, self.iterations = step, set(iterations)

    def step(self, batch, iteration):
        if iteration in self.iterations:
            batch = {k: torch.full_like(v, float("nan")) for k, v in batch.items()}
        return self.inner.step(batch, iteration)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# skips are read on the host where the loop logs or checkpoints: every iteration, or only every 2nd (ckpt_every)
@pytest.mark.parametrize("log_every", [1, 100])
def test_nan_step_is_skipped_and_weights_stay_finite(tmp_path, train_set, log_every):
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    step = sfd_step()
    skipped = train(NaNAt(step, {3}), data, {**CFG, "log_every": log_every}, tmp_path)
    assert skipped == 1
    assert all(torch.isfinite(v).all() for v in weights(step).values())


@pytest.mark.parametrize("log_every", [1, 100])
def test_many_nan_steps_stop_with_a_clear_error(tmp_path, train_set, log_every):
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    with pytest.raises(FloatingPointError, match=r"up to iteration 5.*last checkpoint .*iteration 4"):
        train(NaNAt(PSNRStep(RRDBNet(**MODEL["rrdbnet"]), CFG, torch.device("cpu")), {3, 4, 5}), data,
              {**CFG, "log_every": log_every}, tmp_path)
    assert torch.load(tmp_path / "last.pt", weights_only=True)["iteration"] == 4  # no checkpoint after the 3rd skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*args) -> None:
    """tests/ddp_worker.py under torchrun with 2 gloo processes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(free_port()), str(Path(__file__).with_name("ddp_worker.py")), *map(str, args)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_process_ddp_ranks_end_identical(tmp_path, train_set):
    torchrun(train_set, tmp_path, "run", "sfd")
    ranks = [torch.load(tmp_path / f"run.rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and len(ranks[0]) > 10
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key
    start = weights(sfd_step())
    assert not torch.equal(ranks[0]["g.conv_first.weight"], start["g.conv_first.weight"])


def test_two_process_ddp_resume_keeps_each_ranks_pair_pool(tmp_path, real_set):
    """Killed at iteration 4 (checkpoint of 2), resumed: the same weights as an uninterrupted 2-process run, which
    needs each rank's own pool back (the ranks degrade different images)."""
    torchrun(real_set, tmp_path, "straight", "real")
    torchrun(real_set, tmp_path, "resumed", "real", 4)
    state = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert state["iteration"] == 2 and len(state["ranks"]) == 2
    pools = [r["pool"] for r in state["ranks"]]
    assert pools[0]["filled"] == pools[1]["filled"] == 2 and not torch.equal(pools[0]["hr"], pools[1]["hr"])
    torchrun(real_set, tmp_path, "resumed", "real")
    straight, resumed = (torch.load(tmp_path / f"{run}.rank0.pt", weights_only=True) for run in ("straight", "resumed"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_checkpoint_of_another_process_count_is_refused(tmp_path, train_set):
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    with pytest.raises(Interrupt):
        train(StopAt(sfd_step(), 4), data, CFG, tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    state = {k: v for k, v in state.items() if k != "tensor_sha256"}  # as an older checkpoint: no checksum
    torch.save({**state, "ranks": state["ranks"] * 2}, tmp_path / "last.pt")
    with pytest.raises(RuntimeError, match="written by 2 process"):
        train(sfd_step(), data, CFG, tmp_path)


def flip_tensor_bytes(path: Path) -> None:
    """Corrupt the middle of the largest tensor record of a torch zip checkpoint, its headers left intact (torch's
    loader checks no CRC, so the file still loads)."""
    import zipfile
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = (int.from_bytes(f.read(2), "little") for _ in range(2))
        f.seek(info.header_offset + 30 + name_len + extra_len + info.file_size // 2)
        chunk = f.read(16)
        f.seek(-16, 1)
        f.write(bytes(b ^ 0xFF for b in chunk))


def test_a_corrupted_checkpoint_is_refused_not_resumed(tmp_path, train_set):
    """Its tensors were resumed without a word (losses of 1e24 followed); now it stops naming the file."""
    data = PairedPatches([train_set], 32, lr_dir="LR_x4_sub")
    with pytest.raises(Interrupt):
        train(StopAt(sfd_step(), 4), data, CFG, tmp_path)
    flip_tensor_bytes(tmp_path / "last.pt")
    torch.load(tmp_path / "last.pt", weights_only=True)  # torch alone does not notice
    with pytest.raises(CheckpointError, match="last.pt is corrupted: .*delete it"):
        train(sfd_step(), data, CFG, tmp_path)
    (tmp_path / "last.pt").write_bytes((tmp_path / "last.pt").read_bytes()[:1000])  # truncated
    with pytest.raises(CheckpointError, match="last.pt is unreadable"):
        train(sfd_step(), data, CFG, tmp_path)


def test_the_generator_ema_is_the_hand_computed_average_and_holds_over_a_skipped_step():
    torch.manual_seed(0)
    step = PSNRStep(RRDBNet(**MODEL["rrdbnet"]), {**CFG, "ema_decay": 0.5}, torch.device("cpu"))
    expected = [p.detach().clone() for p in step.g.parameters()]
    batch = {"lr": torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)),
             "hr": torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))}
    for i in range(1, 4):
        step.step(batch, i)
        expected = [0.5 * e + 0.5 * p.detach() for e, p in zip(expected, step.g.parameters())]
    got = list(step.ema.parameters())
    assert all(torch.allclose(e, q, rtol=0, atol=1e-7) for e, q in zip(expected, got))
    assert not torch.equal(got[0], step.g.conv_first.weight) and step.eval_net() is step.ema
    before = [e.clone() for e in got]
    assert step.step({"lr": torch.full_like(batch["lr"], float("nan")), "hr": batch["hr"]}, 4)["skipped"] == 1
    assert all(torch.equal(b, e) for b, e in zip(before, step.ema.parameters()))
    assert PSNRStep(RRDBNet(**MODEL["rrdbnet"]), {**CFG, "ema_decay": 0}, torch.device("cpu")).ema is None
