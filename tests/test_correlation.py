"""PLCC/SRCC/KRCC: hand values, scipy agreement and the sign convention for lower-is-better methods."""
import numpy as np
import pytest
from scipy import stats

from pipeline.metrics.correlation import COEFFICIENTS, correlations


def test_hand_computed_values():
    # x = 1,2,3 and y = 1,3,2: Pearson = Spearman = 0.5 (one of three pairs swapped), Kendall = (2 - 1) / 3
    assert correlations([1, 2, 3], [1, 3, 2]) == pytest.approx({"plcc": 0.5, "srcc": 0.5, "krcc": 1 / 3})


def test_matches_scipy_on_known_vectors():
    scores = [0.1, 0.4, 0.35, 0.8, 0.7, 0.9, 0.2]
    mos = [10.0, 30.0, 45.0, 60.0, 50.0, 90.0, 20.0]
    got = correlations(scores, mos)
    assert list(got) == list(COEFFICIENTS)
    assert got["plcc"] == pytest.approx(stats.pearsonr(scores, mos)[0])
    assert got["srcc"] == pytest.approx(stats.spearmanr(scores, mos)[0])
    assert got["krcc"] == pytest.approx(stats.kendalltau(scores, mos)[0])
    assert all(isinstance(v, float) for v in got.values())


def test_rank_coefficients_ignore_monotone_transforms_but_pearson_does_not():
    x = np.arange(1.0, 8.0)
    got = correlations(x ** 4, x)
    assert got["srcc"] == pytest.approx(1.0) and got["krcc"] == pytest.approx(1.0)
    assert 0.8 < got["plcc"] < 0.99


def test_lower_better_scores_are_negated():
    niqe = [3.0, 5.0, 4.0, 9.0, 7.0]  # lower is better, so it agrees with a MOS that falls as NIQE rises
    mos = [80.0, 60.0, 70.0, 10.0, 30.0]
    plain, negated = correlations(niqe, mos), correlations(niqe, mos, lower_better=True)
    assert negated == pytest.approx({"plcc": -plain["plcc"], "srcc": 1.0, "krcc": 1.0})
    assert negated["plcc"] > 0.95 and plain["srcc"] == pytest.approx(-1.0)
    assert negated == pytest.approx(correlations([-v for v in niqe], mos))


@pytest.mark.parametrize("scores, mos, message", [
    ([0.5, 0.5, 0.5], [1.0, 2.0, 3.0], "scores are constant"),
    ([0.1, 0.2, 0.3], [4.0, 4.0, 4.0], "MOS is constant"),
    ([0.1], [1.0], "at least 2"),
    ([0.1, 0.2], [1.0, 2.0, 3.0], "equal-length"),
    ([0.1, float("nan"), 0.3], [1.0, 2.0, 3.0], "non-finite"),
])
def test_undefined_correlations_raise(scores, mos, message):
    with pytest.raises(ValueError, match=message):
        correlations(scores, mos)
