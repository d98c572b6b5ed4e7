"""NIQE's pristine model, shipped with the package (from BasicSR, Apache-2.0), in the form pyiqa loads.

pyiqa's `niqe` takes `pretrained_model_path=` a .mat holding `mu_prisparam` and `cov_prisparam`; with
`color_space='ycbcr'` this reproduces BasicSR's (MATLAB's) NIQE.
"""
from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io

from pipeline.fileio import atomic_path

HEADER_TEXT_BYTES = 116  # MAT 5 files open with this much descriptive text
NIQE_MAT = Path("data/weights/eval/niqe_pris_params.mat")  # written by download@eval_weights in both profiles


def write_niqe_mat(path: Path) -> Path:
    """Write the shipped pristine parameters as the .mat pyiqa's NIQE reads."""
    with resources.files("pipeline.metrics").joinpath("niqe_pris_params.npz").open("rb") as f:
        params = np.load(f)
        mat = {"mu_prisparam": params["mu_pris_param"], "cov_prisparam": params["cov_pris_param"]}
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, mat)
    # the 116-byte text header carries the time of writing: a fixed one makes the file the same on every run
    header = b"MATLAB 5.0 MAT-file, written by pipeline.metrics.niqe_params".ljust(HEADER_TEXT_BYTES, b"\0")
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + buffer.getvalue()[HEADER_TEXT_BYTES:])
    return path
