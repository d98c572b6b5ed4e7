"""pyiqa metrics built from local weight files only: a metric whose files are missing is n/a, never downloaded.

pyiqa fetches weights on first use (its own files into $TORCH_HOME/hub/pyiqa, torchvision backbones into
$TORCH_HOME/hub/checkpoints, OpenAI CLIP into $TORCH_HOME/hub/clip); offline that fails deep inside or hangs. Here
every metric names the files it needs under `torch_home` (the download stage puts them under data/weights/eval/torch),
they are checked first, and a missing one becomes the n/a reason. pyiqa's own files are passed to it by path.

pyiqa and torchvision read `.pth` files with `torch.load(weights_only=False)`; each one is first opened here with
weights_only=True (pipeline.checkpoint), so a file holding pickled code is refused before they touch it. OpenAI's
RN50.pt (CLIP-IQA, QualiCLIP, MA-CLIP) is a TorchScript archive that pyiqa checks against the sha256 in its
download URL.
"""
from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pyiqa
import torch
from pyiqa.archs import clip_model

from pipeline.checkpoint import CheckpointError, load_into, load_state_dict
from pipeline.data.download import file_digests

NA = "n/a"

# Files each metric needs, relative to torch_home; the first is handed to pyiqa as `pretrained_model_path` when the
# metric takes one. psnr and ssim need none; niqe reads the repo's pristine model, passed as `niqe_params`.
WEIGHT_FILES = {
    "lpips": ("hub/pyiqa/LPIPS_v0.1_alex-df73285e.pth", "hub/checkpoints/alexnet-owt-7be5be79.pth"),
    "dists": ("hub/pyiqa/DISTS_weights-f5e65c96.pth", "hub/checkpoints/vgg16-397923af.pth"),
    "ilniqe": ("hub/pyiqa/ILNIQE_templateModel.mat",),
    "clipiqa": ("hub/clip/RN50.pt",),
    "qualiclip": ("hub/pyiqa/QualiCLIP.pth", "hub/clip/RN50.pt"),  # its CLIP weights and prompt features, on RN50
    "maclip": ("hub/clip/RN50.pt",),
}
OPENAI_RN50 = "hub/clip/RN50.pt"
CUDA_ONLY = {"maclip": "pyiqa's MA-CLIP builds its CLIP on CUDA only (maclip_arch CustomCLIP, device='cuda')"}
TAKES_MODEL_PATH = ("niqe", "lpips", "dists", "ilniqe")
Y_CHANNEL = {"test_y_channel": True, "color_space": "ycbcr"}  # BT.601 Y as MATLAB's rgb2ycbcr; pyiqa's default is yiq


class MetricUnavailable(Exception):
    """A metric that cannot be computed here; `reason` is the text its n/a cells carry."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def score_or_reason(metric, x: torch.Tensor) -> float | str:
    """A pyiqa metric's score of one image, or why it has none: NIQE's covariance of a flat image's features is
    singular, and a score can come out non-finite."""
    try:
        value = float(metric(x).item())
    except torch.linalg.LinAlgError:
        return "the covariance of its features is singular (a flat image)"
    return value if math.isfinite(value) else f"its score is {value}"


def require_file(path: str | os.PathLike, how: str) -> None:
    """Raise MetricUnavailable naming `path` and how to get it when it is not a file."""
    if not os.path.isfile(path):
        raise MetricUnavailable(f"weights not available: {path} ({how})")


def load_weights(net: torch.nn.Module, path: str | os.PathLike, read=lambda p: load_state_dict(p)[0]):
    """`net` with `read(path)` loaded strictly, in eval mode; MetricUnavailable with a one-line reason naming the
    file when it is unreadable or does not fit."""
    try:
        load_into(net, read(path))
    except CheckpointError as e:
        raise MetricUnavailable(str(e) if str(path) in str(e) else f"{path}: {e}") from None
    return net.eval()


@contextlib.contextmanager
def torch_home(path: str | os.PathLike):
    """TORCH_HOME set to `path` for the block: torchvision and pyiqa's CLIP loader look up the hub cache at call time."""
    old = os.environ.get("TORCH_HOME")
    os.environ["TORCH_HOME"] = str(Path(path).resolve())
    try:
        yield
    finally:
        if old is None:
            del os.environ["TORCH_HOME"]
        else:
            os.environ["TORCH_HOME"] = old


def weight_files(name: str, home: str | os.PathLike, niqe_params: str | os.PathLike | None = None) -> list[Path]:
    """The local files metric `name` is built from (none for psnr and ssim)."""
    if name == "niqe":
        return [Path(niqe_params)] if niqe_params is not None else []
    return [Path(home) / f for f in WEIGHT_FILES.get(name, ())]


def create_metric(name: str, home: str | os.PathLike, device="cpu", niqe_params: str | os.PathLike | None = None,
                  **options):
    """pyiqa metric `name` built from files under `home` (a TORCH_HOME); MetricUnavailable when they are missing.

    `niqe` needs `niqe_params` (the .mat of pipeline.metrics.niqe_params) and scores the BT.601 Y channel;
    `options` go to pyiqa (e.g. crop_border).
    """
    if name in CUDA_ONLY and torch.device(device).type != "cuda":
        raise MetricUnavailable(f"not computed on {torch.device(device).type}: {CUDA_ONLY[name]}")
    files = weight_files(name, home, niqe_params)
    if name == "niqe" and not files:
        raise ValueError("niqe needs niqe_params, the pristine model's .mat")
    for path in files:
        require_file(path, "the download stage writes it" if name == "niqe" else
                     "run the paper profile's download stage online")
    for path in files:
        if path.suffix == ".pth":
            load_state_dict(path)  # raises CheckpointError for pickled code
    rn50 = [f for f in files if f == Path(home) / OPENAI_RN50]
    if rn50:
        # pyiqa re-downloads an RN50.pt whose sha256 is not the one in its URL (pyiqa/archs/clip_model.py), which
        # offline fails deep inside: check it here and say why instead.
        expected = PurePosixPath(urlparse(clip_model._MODELS["RN50"]).path).parts[-2]
        if file_digests(rn50[0], ["sha256"])["sha256"] != expected:
            raise MetricUnavailable(f"weights not usable: {rn50[0]} is not OpenAI's RN50.pt (its sha256 is not "
                                    f"{expected}, which pyiqa checks)")
    if name == "niqe":
        options = {**Y_CHANNEL, **options}
    if name in TAKES_MODEL_PATH:
        options = {"pretrained_model_path": str(files[0]), **options}
    with torch_home(home):
        return pyiqa.create_metric(name, device=device, **options)
