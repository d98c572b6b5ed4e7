"""Safe loading and saving of weight files (state dicts only; nothing is ever unpickled as arbitrary objects).

`.safetensors` files go through safetensors; anything else through `torch.load(weights_only=True)`, which refuses
pickled code. BasicSR-style wrappers (`params_ema`, `params`, `state_dict`) are unwrapped.

Files this pipeline writes carry the sha256 of their tensors (`tensor_digest`; safetensors metadata key
`tensor_sha256`, the training checkpoints' key of the same name), checked when they are read back: neither
torch's zip loader nor safetensors checks the bytes of the tensor data, so a corrupted file would load without
a word. Files from elsewhere have none and are read as they are.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from pipeline.fileio import atomic_path

WRAPPER_KEYS = ("params_ema", "params", "state_dict")
DIGEST_KEY = "tensor_sha256"


class CheckpointError(Exception):
    """A weights file that is missing, unreadable, not a state dict, or does not fit the network."""


def tensor_digest(obj) -> str:
    """The sha256 of a nested state (dicts in key order, lists and tuples in order): each tensor's bytes, each
    other leaf's repr, each under its path, so a changed value, dtype, shape or structure changes it."""
    h = hashlib.sha256()

    def walk(node, where: str) -> None:
        if isinstance(node, torch.Tensor):
            t = node.detach().cpu().contiguous()
            h.update(f"{where}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(node, dict):
            for key in sorted(node, key=str):
                walk(node[key], f"{where}/{key}")
        elif isinstance(node, (list, tuple)):
            for i, item in enumerate(node):
                walk(item, f"{where}/{i}")
        else:
            h.update(f"{where}={node!r}".encode())

    walk(obj, "")
    return h.hexdigest()


def check_digest(path: str | os.PathLike, obj, digest: str | None) -> None:
    """Raise CheckpointError when `obj`, read from `path`, does not hash to the `digest` written with it."""
    if digest is not None and tensor_digest(obj) != digest:
        raise CheckpointError(f"{path} is corrupted: its tensors do not match the sha256 written with them; "
                              f"delete it (a training run then starts over) or restore a good copy")


def load_state_dict(path: str | os.PathLike, key: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return (state dict, metadata) from a .safetensors or weights-only .pth/.pt file; a .pth wrapper's state is
    its `key` when given (a file holding both `params` and `params_ema`, read as its authors test it), else the
    first of WRAPPER_KEYS it has."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                state, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
        except Exception as e:  # safetensors raises several types for a corrupt header
            raise CheckpointError(f"{path} is not a readable safetensors file ({e})") from None
        check_digest(path, state, meta.pop(DIGEST_KEY, None))
        return state, meta
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses pickled objects; other files fail to parse
        if "Weights only load failed" in str(e):
            raise CheckpointError(f"{path} is not a weights-only checkpoint: it holds pickled objects; refused") from None
        raise CheckpointError(f"{path} is not a weights-only checkpoint (unreadable: {type(e).__name__})") from None
    meta = {}
    if isinstance(obj, dict):
        meta = {k: v for k, v in obj.get("meta", {}).items() if isinstance(v, str)} if isinstance(obj.get("meta"), dict) else {}
        if key is not None and not isinstance(obj.get(key), dict):
            raise CheckpointError(f"{path} has no `{key}` state dict (it has {sorted(obj)[:8]})")
        for wrapper in (key,) if key is not None else WRAPPER_KEYS:
            if isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return obj, meta


def save_state_dict(path: str | os.PathLike, state: dict[str, torch.Tensor], meta: dict[str, str] | None = None):
    """Write a state dict as safetensors, atomically; `meta` values must be strings. The same state and metadata
    give the same bytes: safetensors writes the metadata in hash order, which changes from process to process (DVC
    would see new weights), so the header is rewritten with its keys sorted."""
    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    blob = save(state, metadata={**(meta or {}), DIGEST_KEY: tensor_digest(state)})
    n = int.from_bytes(blob[:8], "little")
    header = json.dumps(json.loads(blob[8:8 + n]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # keeps the tensor data 8-byte aligned, as safetensors does
    with atomic_path(path) as tmp:
        tmp.write_bytes(len(header).to_bytes(8, "little") + header + blob[8 + n:])


def key_mismatch(expected: list[str], given: list[str], max_listed: int = 5) -> str:
    """One line naming the first few missing and unexpected keys of `given` against `expected` (empty if none)."""
    expected_set, given_set = set(expected), set(given)
    missing = [k for k in expected if k not in given_set]
    unexpected = [k for k in given if k not in expected_set]

    def listing(keys):
        more = f", ... (+{len(keys) - max_listed} more)" if len(keys) > max_listed else ""
        return f"{len(keys)}: " + ", ".join(keys[:max_listed]) + more
    parts = ([f"missing keys ({listing(missing)})"] if missing else []) + \
            ([f"unexpected keys ({listing(unexpected)})"] if unexpected else [])
    return "; ".join(parts)


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load `state` strictly; a key or shape mismatch raises CheckpointError with a one-line description."""
    reference = module.state_dict()
    mismatch = key_mismatch(list(reference), list(state))
    if mismatch:
        raise CheckpointError(f"checkpoint does not fit {type(module).__name__}: {mismatch}")
    wrong = [k for k, v in state.items() if v.shape != reference[k].shape]
    if wrong:
        k = wrong[0]
        raise CheckpointError(f"checkpoint does not fit {type(module).__name__}: {len(wrong)} tensors have other "
                              f"shapes, e.g. {k}: {tuple(state[k].shape)} vs {tuple(reference[k].shape)}")
    module.load_state_dict(state, strict=True)
