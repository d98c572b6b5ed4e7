"""The training loop shared by every training stage: resumable, NaN-guarded, logged, single-GPU or DDP.

What a step does lives in `pipeline.train_step`; this module only feeds it batches and keeps the run safe:
- batches are a pure function of (seed, epoch, index), so a resumed run sees exactly the batches an uninterrupted
  one would, with any number of DataLoader workers;
- a checkpoint (networks, optimisers, schedulers, iteration, RNG states, and each DDP rank's own state such as
  its real-world pair pool) is written atomically every
  `ckpt_every` iterations and at the end; a run finds its checkpoint and resumes from it when the stage runs
  again (a finished one: no training, so only what follows, the export, runs), and starts afresh when the params
  it was trained with have changed;
- a step whose loss is NaN or infinite is skipped and logged; `max_bad_steps` in a row stop the run with an error
  naming the iteration and the last checkpoint. Steps report skips on the device; the loop reads them (one host
  sync) only where it logs, validates or checkpoints, so no checkpoint follows too many skips unnoticed;
- metrics go to dvclive (`dvc plots`, `dvc exp show`), progress to a tqdm bar.
Under `torchrun` (WORLD_SIZE > 1) each rank takes its slice of every global batch and the networks are wrapped in
DistributedDataParallel by the step; rank 0 alone writes files.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from pipeline.checkpoint import DIGEST_KEY, CheckpointError, check_digest, tensor_digest
from pipeline.fileio import atomic_path, write_text


def relaunch_under_torchrun(gpus: int) -> None:
    """Re-run the current stage under torchrun with `gpus` processes, unless it already runs under it."""
    if gpus > 1 and "WORLD_SIZE" not in os.environ:
        module = sys.modules["__main__"].__spec__.name
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}", "-m",
               module, *sys.argv[1:]]
        raise SystemExit(subprocess.call(cmd))


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


def default_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class SeededBatches(Sampler):
    """Global batches of `batch` (epoch, index) keys from a per-epoch permutation of a seeded RNG.

    Starts at iteration `start`; each rank gets `batch // world` keys of every global batch.
    """

    def __init__(self, length: int, batch: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        if batch % world:
            raise ValueError(f"batch {batch} must be divisible by the number of processes {world}")
        if length < batch:
            raise ValueError(f"the training set has {length} samples, fewer than one batch of {batch}")
        self.length, self.batch, self.seed, self.start, self.stop = length, batch, seed, start, stop
        self.rank, self.world = rank, world
        self.per_epoch = length // batch  # the incomplete last batch of an epoch is dropped

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __iter__(self):
        epoch, perm = None, None
        for it in range(self.start, self.stop):
            e, b = divmod(it, self.per_epoch)
            if e != epoch:
                epoch, perm = e, np.random.default_rng([self.seed, e]).permutation(self.length)
            keys = [(epoch, int(i)) for i in perm[b * self.batch : (b + 1) * self.batch]]
            yield keys[self.rank :: self.world]


def fingerprint(config: dict) -> str:
    """A short hash of the params a run trains with: a checkpoint made under other params is not resumed."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def save_checkpoint(path: Path, state: dict) -> None:
    """`state` with the sha256 of its contents (checked by load_resumable), written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        # to a file object: torch.save names the archive inside after a path (a random one)
        torch.save({**state, DIGEST_KEY: tensor_digest(state)}, f)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_resumable(path: Path, config_hash: str, world: int = 1) -> dict | None:
    """The checkpoint at `path` if it belongs to this configuration (finished or not), else None. One written by
    another number of processes is an error: their per-rank state (the pair pools) cannot be split or merged."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or mangled archive: torch raises several types
        raise CheckpointError(f"{path} is unreadable ({type(e).__name__}: truncated or corrupted); delete it to "
                              f"start the run over") from None
    if DIGEST_KEY not in state:  # written before checkpoints carried one: resumed, as before, with a word
        print(f"warning: {path} carries no checksum of its contents (an older checkpoint); resuming it unverified",
              file=sys.stderr)
    check_digest(path, state, state.pop(DIGEST_KEY, None))
    if state.get("config") != config_hash:
        return None
    if len(state["ranks"]) != world:
        raise RuntimeError(f"{path} was written by {len(state['ranks'])} process(es) and this run has {world}: "
                           "resume with the same number of GPUs, or delete it to start afresh")
    return state


def train(step, dataset, cfg: dict, run_dir: Path, validate=None, live_dir: Path | None = None) -> int:
    """Run `step` (a `train_step` object) for cfg['iters'] iterations; returns the number of skipped steps.

    cfg keys: iters, batch, workers, ckpt_every, val_every, log_every, max_bad_steps, seed, and `config` (the
    params dict that identifies the run). `validate(step) -> dict` is called on rank 0 every `val_every`.
    """
    rank, world = distributed()
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, config_hash = run_dir / "last.pt", fingerprint(cfg["config"])
    state = load_resumable(ckpt_path, config_hash, world)
    start = 0
    if state is not None:
        step.load_state_dict(state["step"])
        step.load_local_state_dict(state["ranks"][rank])
        set_rng_state(state["rng"])
        start = state["iteration"]
    else:
        torch.manual_seed(cfg["seed"])

    live = None
    if rank == 0 and live_dir is not None:
        from dvclive import Live

        if start:
            forget_after(live_dir, start)
        live = Live(str(live_dir), resume=start > 0, save_dvc_exp=False, dvcyaml=None)
        print(f"{'resuming from iteration ' + str(start) if start else 'starting'} of {cfg['iters']} ({run_dir})")

    sampler = SeededBatches(len(dataset), cfg["batch"], cfg["seed"], start, cfg["iters"], rank, world)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg["workers"],
                        pin_memory=torch.cuda.is_available(), persistent_workers=cfg["workers"] > 0)

    def checkpoint(iteration: int) -> None:
        ranks = [step.local_state_dict()]
        if world > 1:  # every rank's own state, in the one file rank 0 writes atomically
            gathered = [None] * world if rank == 0 else None
            dist.gather_object(ranks[0], gathered, dst=0)
            ranks = gathered
        if rank == 0:
            save_checkpoint(ckpt_path, {"iteration": iteration, "config": config_hash, "step": step.state_dict(),
                                        "ranks": ranks, "rng": rng_state()})

    bad_in_a_row, skipped, last_saved = 0, 0, start
    unread: list[tuple[int, torch.Tensor]] = []  # (iteration, its `skipped` flag, still on the device)

    def read_skips() -> None:
        """Count the skipped steps among the unread iterations (ranks agree: the flags were all-reduced)."""
        nonlocal bad_in_a_row, skipped
        flags = torch.stack([flag for _, flag in unread]).tolist() if unread else []
        for (iteration, _), flag in zip(unread, flags):
            if not flag:
                bad_in_a_row = 0
                continue
            bad_in_a_row, skipped = bad_in_a_row + 1, skipped + 1
            bar.write(f"iteration {iteration}: non-finite loss, step skipped")
            if bad_in_a_row >= cfg["max_bad_steps"]:
                raise FloatingPointError(
                    f"{bad_in_a_row} non-finite losses in a row, up to iteration {iteration}; the last checkpoint "
                    f"is {ckpt_path} (iteration {last_saved}). Lower the learning rate or check the data.")
        if live and any(flags):
            live.log_metric("train/skipped_steps", skipped)
        unread.clear()

    bar = tqdm(total=cfg["iters"], initial=start, desc=run_dir.name, unit="it", disable=rank != 0, smoothing=0.1)
    for iteration, batch in enumerate(loader, start=start + 1):
        logs = step.step(batch, iteration)
        unread.append((iteration, logs["skipped"]))
        last = iteration == cfg["iters"]
        log, val, save = (iteration % cfg[key] == 0 or last for key in ("log_every", "val_every", "ckpt_every"))
        if log or val or save:
            if live:
                live.step = iteration  # before anything is logged: every value is recorded at its iteration
            read_skips()
        if rank == 0 and log and not bad_in_a_row:
            logs = to_host(logs)
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k not in ("lr", "skipped")}, refresh=False)
            if live:
                for key, value in logs.items():
                    if key != "skipped":
                        live.log_metric(f"train/{key}", value)
        if rank == 0 and validate is not None and val:
            for key, value in validate(step).items():
                bar.write(f"iteration {iteration}: val {key} {value:.4f}")
                if live:
                    live.log_metric(f"val/{key}", value)
        if live and log:
            live.next_step()
        if save:
            checkpoint(iteration)
            last_saved = iteration
        bar.update(1)
    bar.close()
    if live:
        live.end()
    return skipped


def forget_after(live_dir: Path, iteration: int) -> None:
    """Drop the dvclive rows of steps after `iteration`: a run resumed from there logs them again."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        header, *rows = tsv.read_text().splitlines()
        column = header.split("\t").index("step")
        kept = [row for row in rows if int(row.split("\t")[column]) <= iteration]
        if len(kept) < len(rows):
            write_text(tsv, "\n".join([header, *kept]) + "\n")


def to_host(logs: dict) -> dict[str, float]:
    """A step's logs as floats: its device tensors read in one device-to-host copy."""
    tensors = {k: v for k, v in logs.items() if isinstance(v, torch.Tensor)}
    values = torch.stack(list(tensors.values())).tolist() if tensors else []
    return {**logs, **dict(zip(tensors, values))}
