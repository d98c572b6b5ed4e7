"""NIQE's pristine model, shipped with the package (from BasicSR, Apache-2.0), in the form pyiqa loads.

pyiqa's `niqe` takes `pretrained_model_path=` a .mat holding `mu_prisparam` and `cov_prisparam`; with
`color_space='ycbcr'` this reproduces BasicSR's (MATLAB's) NIQE.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import scipy.io

from pipeline.fileio import atomic_path


def write_niqe_mat(path: Path) -> Path:
    """Write the shipped pristine parameters as the .mat pyiqa's NIQE reads."""
    with resources.files("pipeline.metrics").joinpath("niqe_pris_params.npz").open("rb") as f:
        params = np.load(f)
        mat = {"mu_prisparam": params["mu_pris_param"], "cov_prisparam": params["cov_pris_param"]}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            scipy.io.savemat(f, mat)
    return path
