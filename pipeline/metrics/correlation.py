"""PLCC, SRCC and KRCC of predicted quality scores with MOS (Tables 3 and 4).

The plain scipy coefficients (Pearson, Spearman, Kendall tau-b), with no logistic fit, as pyiqa's benchmark and
CLIP-IQA report them. For a method where lower is better (NIQE, IL-NIQE) the scores are negated first, so a positive
coefficient always means agreement with the MOS.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

COEFFICIENTS = ("plcc", "srcc", "krcc")


def correlations(scores: Sequence[float], mos: Sequence[float], lower_better: bool = False) -> dict[str, float]:
    """{"plcc", "srcc", "krcc"} of `scores` with `mos`; ValueError where they are undefined (constant input, < 2)."""
    s, m = np.asarray(scores, dtype=np.float64), np.asarray(mos, dtype=np.float64)
    if s.shape != m.shape or s.ndim != 1:
        raise ValueError(f"scores and MOS must be equal-length vectors, got {s.shape} and {m.shape}")
    if len(s) < 2:
        raise ValueError(f"correlation needs at least 2 images, got {len(s)}")
    if not (np.isfinite(s).all() and np.isfinite(m).all()):
        raise ValueError("correlation undefined: non-finite scores or MOS")
    if np.ptp(s) == 0 or np.ptp(m) == 0:
        raise ValueError("correlation undefined: the " + ("scores are" if np.ptp(s) == 0 else "MOS is") + " constant")
    if lower_better:
        s = -s
    return {"plcc": float(stats.pearsonr(s, m).statistic), "srcc": float(stats.spearmanr(s, m).statistic),
            "krcc": float(stats.kendalltau(s, m).statistic)}
