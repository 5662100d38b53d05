"""The detectors as scikit-learn (>= 1.6) outlier detectors and with PyOD's confidence API."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import wtflow

sklearn = pytest.importorskip("sklearn")
from scipy.stats import binom  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError as SklearnNotFittedError  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

TINY = {
    "hidden": 8,
    "depth": 1,
    "time_dim": 4,
    "train_steps": 2,
    "batch_size": 8,
    "calibration_folds": 2,
    "device": "cpu",
}

# Checks that cannot pass by design, with the reason. Everything else scikit-learn runs for an outlier
# detector (and, for the flows' ``transform``, a transformer) must pass.
PYOD_LABELS = (
    "PyOD's convention: predict returns 0/1 (1 = anomaly) and decision_function is higher = more anomalous; "
    "scikit-learn's outlier checks expect -1/+1 and the opposite sign (score_samples follows scikit-learn)"
)
SCORE_PARAMETER = (
    "the `score` parameter ('norm' / 'density', the paper's score) shadows scikit-learn's optional "
    "`score(X, y)` method, which these checks call"
)
EXPECTED_FAILED = {
    "check_outliers_train": PYOD_LABELS,
    "check_outliers_fit_predict": PYOD_LABELS,
    "check_fit_score_takes_y": SCORE_PARAMETER,
    "check_pipeline_consistency": SCORE_PARAMETER,
    "check_n_features_in_after_fitting": SCORE_PARAMETER,
    "check_do_not_raise_errors_in_init_or_set_params": (
        "parameters are validated in __init__ and set_params, so a typo fails where it is written "
        "(set_params restores the old values on failure)"
    ),
}


@parametrize_with_checks(
    [wtflow.RFM(preprocessing="whiten", **TINY)], expected_failed_checks=lambda estimator: EXPECTED_FAILED
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks(
    [wtflow.WTFlow(wt="batchnorm", **TINY)], expected_failed_checks=lambda estimator: EXPECTED_FAILED
)
def test_scikit_learn_estimator_checks_wtflow(estimator, check):
    """The same checks through the BatchNorm WT map (the shared base class makes them mostly redundant)."""
    check(estimator)


def _data(n=120, d=5, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) * np.arange(1, d + 1)


def test_detector_ends_a_pipeline():
    X, X_test = _data(), _data(30, seed=1)
    pipe = make_pipeline(StandardScaler(), wtflow.WTFlow(**TINY)).fit(X)
    det = pipe[-1]
    Z_test = pipe[0].transform(X_test)
    np.testing.assert_allclose(pipe.decision_function(X_test), det.decision_function(Z_test))
    np.testing.assert_allclose(pipe.score_samples(X_test), -det.decision_function(Z_test))
    np.testing.assert_array_equal(pipe.predict(X_test), det.predict(Z_test))
    np.testing.assert_array_equal(clone(pipe).fit_predict(X), det.labels_)


def test_score_samples_offset_and_predict_agree():
    X, X_test = _data(), _data(200, seed=2) * 1.5
    det = wtflow.RFM(**TINY).fit(X)
    score = det.score_samples(X_test)
    np.testing.assert_array_equal(score, -det.decision_function(X_test))
    np.testing.assert_array_equal(det.predict(X_test), (score - det.offset_ < 0).astype(int))
    assert det.get_params()["calibration"] == "cross-fit"
    assert clone(det).get_params() == det.get_params()


def test_predict_confidence_is_pyods_exceed_rule():
    X, X_test = _data(), _data(50, seed=3) * 1.3
    det = wtflow.RFM(**TINY, contamination=0.2).fit(X)
    labels, confidence = det.predict(X_test, return_confidence=True)
    np.testing.assert_array_equal(labels, det.predict(X_test))
    np.testing.assert_array_equal(confidence, det.predict_confidence(X_test))
    assert confidence.shape == (50,) and np.all((confidence >= 0) & (confidence <= 1))
    # An independent loop over the samples (Perini et al. 2020, as PyOD spells it).
    reference, n = det.calibration_scores_, len(det.calibration_scores_)
    for s, label, c in zip(det.decision_function(X_test), labels, confidence):
        p = (1 + np.count_nonzero(reference <= s)) / (2 + n)
        anomalous = 1 - binom.cdf(n - int(n * 0.2), n, p)
        assert c == pytest.approx(anomalous if label == 1 else 1 - anomalous, abs=1e-12)


def test_not_fitted_error_is_scikit_learns_once_it_is_loaded():
    with pytest.raises(SklearnNotFittedError, match="not fitted yet"):
        wtflow.WTFlow().predict(_data(3))
    with pytest.raises(wtflow.detectors.NotFittedError):
        wtflow.WTFlow().predict_confidence(_data(3))


def test_threads_apply_during_fit_and_scoring_and_are_restored(monkeypatch):
    seen = []
    original = wtflow.RFM._score_model

    def spy(self, Z):
        seen.append(torch.get_num_threads())
        return original(self, Z)

    monkeypatch.setattr(wtflow.RFM, "_score_model", spy)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        det = wtflow.RFM(**TINY, threads=1, calibration="train").fit(_data())
        det.decision_function(_data(4))
        assert seen == [1, 1] and torch.get_num_threads() == 2
        det.set_params(threads=None).decision_function(_data(4))
        assert seen[-1] == 2
    finally:
        torch.set_num_threads(previous)
    with pytest.raises(ValueError, match="threads must be an integer >= 1, got 0"):
        wtflow.RFM(threads=0)


def test_verbose_shows_a_progress_bar(capsys):
    wtflow.RFM(**TINY, calibration="train", verbose=True).fit(_data())
    assert "train" in capsys.readouterr().err
    wtflow.RFM(**TINY, calibration="train").fit(_data())
    assert capsys.readouterr().err == ""


def test_default_device_is_auto():
    assert wtflow.RFM().device == "auto" and wtflow.WTFlow().device == "auto"


def test_importing_wtflow_imports_neither_scikit_learn_nor_pyod():
    code = "import sys, wtflow, wtflow.detectors; print(sorted(m for m in ('sklearn', 'pyod') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
