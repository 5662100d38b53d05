"""PyOD-style detectors: API contract, persistence, determinism, bad input, scores against direct computations."""

import math

import numpy as np
import pytest
import torch

import wtflow
from wtflow.detectors import BaseDetector, NotFittedError, load_detector
from wtflow.paths import fm_path

TINY = {"hidden": 32, "depth": 2, "time_dim": 8, "train_steps": 30, "batch_size": 32}


def _tiny(kind, **overrides):
    if kind == "TCCM":
        return wtflow.TCCM(**{"hidden": 32, "depth": 2, "time_dim": 8, "epochs": 10, "batch_size": 32, **overrides})
    if kind == "WTFlow-BN":
        return wtflow.WTFlow(wt="batchnorm", **{**TINY, **overrides})
    if kind == "WTFlow":
        return wtflow.WTFlow(**{**TINY, **overrides})
    if kind == "FlowMismatch":
        return wtflow.FlowMismatch(**{**TINY, "n_probes": 4, "n_times": 3, **overrides})
    return wtflow.RFM(**{**TINY, **overrides})


KINDS = ["RFM", "WTFlow", "WTFlow-BN", "TCCM", "FlowMismatch"]


def _data(n=120, d=6, seed=0):
    """Non-negative vectors near a 2-D cone of two fixed patterns, like pooled CNN features."""
    rng = np.random.default_rng(seed)
    patterns = np.abs(np.random.default_rng(99).normal(size=(2, d))) + 0.2
    return rng.uniform(0.5, 1.5, size=(n, 2)) @ patterns + 0.05 * rng.normal(size=(n, d))


def _outliers(n=40, d=6, seed=1):
    """Normal-looking vectors with their features shuffled and rescaled: a wrong pattern, similar values."""
    rng = np.random.default_rng(seed)
    X = _data(n, d, seed + 100)
    order = rng.permuted(np.tile(np.arange(d), (n, 1)), axis=1)
    return np.take_along_axis(X, order, axis=1) * rng.uniform(0.5, 3.0, size=(n, 1))


def _auroc(normal_scores, anomaly_scores):
    """Probability that an anomaly outscores a normal sample (ties count 1/2)."""
    a = np.asarray(anomaly_scores)[:, None]
    n = np.asarray(normal_scores)[None, :]
    return float(((a > n) + 0.5 * (a == n)).mean())


def test_detectors_run_in_a_pyod_style_loop_next_to_a_pyod_detector():
    pyod_knn = pytest.importorskip("pyod.models.knn")
    X, X_normal, X_out = _data(), _data(40, seed=5), _outliers()
    X_test = np.vstack([X_normal, X_out])
    detectors = {"KNN (pyod)": pyod_knn.KNN(contamination=0.1)} | {k: _tiny(k) for k in KINDS}
    for name, clf in detectors.items():
        assert clf.fit(X) is clf, name
        scores = clf.decision_function(X_test)
        labels = clf.predict(X_test)
        assert scores.shape == (len(X_test),) and np.isfinite(scores).all(), name
        assert clf.decision_scores_.shape == (len(X),), name
        assert set(np.unique(clf.labels_)) <= {0, 1} and set(np.unique(labels)) <= {0, 1}, name
        # PyOD's threshold is a quantile of the training scores; wtflow's of its calibration scores.
        reference = getattr(clf, "calibration_scores_", clf.decision_scores_)
        assert abs((reference > clf.threshold_).mean() - 0.1) <= 0.03, name
        np.testing.assert_array_equal(clf.labels_, (clf.decision_scores_ > clf.threshold_).astype(int))
        np.testing.assert_array_equal(labels, (scores > clf.threshold_).astype(int), err_msg=name)
        proba = clf.predict_proba(X_test)
        assert proba.shape == (len(X_test), 2) and np.allclose(proba.sum(1), 1.0), name
        assert _auroc(scores[: len(X_normal)], scores[len(X_normal) :]) > 0.8, name


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip_gives_identical_scores(kind, tmp_path):
    X, X_test = _data(), np.vstack([_data(20, seed=3), _outliers(10)])
    det = _tiny(kind, preprocessing="standardize").fit(X)
    path = det.save(tmp_path / "det.pt")
    loaded = type(det).load(path)
    assert type(loaded) is type(det) and loaded.get_params() == det.get_params()
    np.testing.assert_array_equal(loaded.decision_function(X_test), det.decision_function(X_test))
    np.testing.assert_array_equal(loaded.decision_scores_, det.decision_scores_)
    np.testing.assert_array_equal(loaded.mean_, det.mean_)
    np.testing.assert_array_equal(loaded.scale_, det.scale_)
    assert loaded.threshold_ == det.threshold_
    np.testing.assert_array_equal(load_detector(path).decision_function(X_test), det.decision_function(X_test))


def test_load_refuses_a_detector_of_another_class(tmp_path):
    path = _tiny("TCCM").fit(_data()).save(tmp_path / "tccm.pt")
    with pytest.raises(ValueError, match="TCCM, not a WTFlow"):
        wtflow.WTFlow.load(path)
    assert isinstance(BaseDetector.load(path), wtflow.TCCM)


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_scores_other_seed_other_scores(kind):
    X, X_test = _data(), _outliers(15)
    state = torch.random.get_rng_state()
    a = _tiny(kind, seed=3).fit(X).decision_function(X_test)
    assert torch.equal(torch.random.get_rng_state(), state), "fit must not consume the global torch generator"
    b = _tiny(kind, seed=3).fit(X).decision_function(X_test)
    c = _tiny(kind, seed=4).fit(X).decision_function(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_get_set_params_follow_the_scikit_learn_convention():
    det = wtflow.WTFlow(wt="batchnorm", ode_steps=20, seed=7)
    params = det.get_params()
    assert params["wt"] == "batchnorm" and params["ode_steps"] == 20 and params["seed"] == 7
    assert set(params) == {
        "wt", "target", "ode_steps", "score", "hidden", "depth", "time_dim", "train_steps", "batch_size",
        "lr", "weight_decay", "t_min", "preprocessing", "seed", "contamination", "device",
        "calibration", "calibration_folds", "threads", "verbose",
    }  # fmt: skip
    clone = type(det)(**params)
    assert clone.get_params() == params
    assert det.set_params(score="norm", target="sphere") is det
    assert det.score == "norm" and det.target == "sphere"
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) 'steps' for WTFlow; valid parameters: .*ode_steps"):
        det.set_params(steps=3)
    with pytest.raises(ValueError, match="unknown target 'cube'"):
        det.set_params(target="cube", score="density")
    assert det.target == "sphere" and det.score == "norm", "a failed set_params must leave the parameters unchanged"
    with pytest.raises(TypeError, match="unexpected keyword argument 'n_steps'"):
        wtflow.RFM(n_steps=3)


def test_contamination_sets_threshold_labels_and_predict():
    X = _data(200)
    det = _tiny("RFM", contamination=0.05, calibration="train").fit(X)
    assert det.labels_.sum() == pytest.approx(10, abs=1)
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 95))
    det.set_params(contamination=0.25)
    assert det.labels_.sum() == pytest.approx(50, abs=1)
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 75))
    assert det.offset_ == -det.threshold_
    np.testing.assert_array_equal(det.predict(X), det.labels_)


@pytest.mark.parametrize("bad", [0, 0.0, 0.51, -0.1, "0.1", True, float("nan")])
def test_contamination_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match=r"contamination must (lie in|be a float in) \(0, 0.5\]"):
        wtflow.WTFlow(contamination=bad)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"wt": "none"}, "unknown wt 'none'"),
        ({"score": "l2"}, "unknown score 'l2'"),
        ({"preprocessing": "pca"}, "unknown preprocessing 'pca'"),
        ({"ode_steps": 0}, "ode_steps must be an integer >= 1, got 0"),
        ({"train_steps": 2.5}, "train_steps must be an integer >= 1, got 2.5"),
        ({"lr": -1.0}, r"lr must lie in \(0.0"),
        ({"t_min": 1.0}, r"t_min must lie in \[0.0, 0.999\]"),
    ],
)
def test_invalid_options_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        wtflow.WTFlow(**kwargs)


def test_flow_mismatch_time_range_is_checked():
    with pytest.raises(ValueError, match="t_high must be >= t_low"):
        wtflow.FlowMismatch(t_low=0.8, t_high=0.5)


def test_bad_input_arrays_get_clear_errors():
    det = _tiny("WTFlow")
    with pytest.raises(NotFittedError, match="not fitted yet; call fit"):
        det.decision_function(_data(3))
    with pytest.raises(NotFittedError):
        det.save("/nonexistent/never-written.pt")
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_samples, n_features\), got shape \(5,\)"):
        det.fit(np.ones(5))
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 4\)"):
        det.fit(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="at least 2 sample"):
        det.fit(np.ones((1, 3)))
    X = _data()
    X[3, 2], X[4, 1] = np.nan, np.inf
    with pytest.raises(ValueError, match="X must be finite, got 1 NaN and 1 inf entries"):
        det.fit(X)
    with pytest.raises(ValueError, match="numeric"):
        det.fit(np.array([["a", "b"], ["c", "d"]]))
    det.fit(_data())
    with pytest.raises(ValueError, match="X has 4 features, but WTFlow is expecting 6 features as input"):
        det.decision_function(np.ones((3, 4)))
    with pytest.raises(ValueError, match="X must be finite"):
        det.decision_function(np.full((2, 6), np.nan))


def test_standardize_uses_training_statistics_and_keeps_constant_features():
    X = _data()
    X[:, 0] = 2.5  # a feature constant in training keeps scale 1 (as in StandardScaler)
    det = _tiny("RFM", preprocessing="standardize").fit(X)
    np.testing.assert_allclose(det.mean_, X.mean(0))
    np.testing.assert_allclose(det.scale_[1:], X[:, 1:].std(0))
    assert det.scale_[0] == 1.0
    raw = _tiny("RFM", preprocessing="raw").fit(X)
    assert np.all(raw.mean_ == 0) and np.all(raw.scale_ == 1)


def test_rfm_one_step_endpoint_is_one_euler_step_of_the_velocity():
    det = _tiny("RFM", t_min=0.1, score="density").fit(_data())
    X = _outliers(7)
    z = torch.from_numpy(((X - det.mean_) / det.scale_).astype(np.float32))
    with torch.no_grad():
        expected = z + 0.9 * det.model_.velocity(z, torch.full((7,), 0.1))
    np.testing.assert_allclose(det.transform(X), expected.double().numpy(), rtol=1e-6, atol=1e-6)
    density = 1 - np.exp(-0.5 * expected.double().numpy() ** 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(det.decision_function(X), density.mean(1), rtol=1e-6)
    det.set_params(score="norm")
    np.testing.assert_allclose(det.decision_function(X), np.linalg.norm(expected.double().numpy(), axis=1), rtol=1e-6)


def test_wtflow_layernorm_starts_from_the_sqrt_d_sphere():
    det = _tiny("WTFlow").fit(_data())
    x_0 = det.model_.map_data(torch.from_numpy(_outliers(5).astype(np.float32)))
    np.testing.assert_allclose(x_0.norm(dim=1).numpy(), math.sqrt(6), rtol=1e-4)


def test_tccm_score_is_the_norm_of_the_one_step_contraction():
    det = _tiny("TCCM").fit(_data())
    X = _outliers(5)
    z = torch.from_numpy(((X - det.mean_) / det.scale_).astype(np.float32))
    with torch.no_grad():
        expected = (det.model_.velocity(z, torch.ones(5)) + z).norm(dim=1).double().numpy()
    np.testing.assert_allclose(det.decision_function(X), expected, rtol=1e-6)


def test_flow_mismatch_matches_a_direct_loop_and_ignores_the_batch():
    det = _tiny("FlowMismatch", n_probes=3, n_times=4, t_low=0.2, t_high=0.8).fit(_data())
    X = _outliers(6)
    z = torch.from_numpy(((X - det.mean_) / det.scale_).astype(np.float32))
    eps = det.probes(6)
    expected = np.zeros(6)
    for i in range(6):
        per_probe = []
        for m in range(3):
            vals = []
            for t in np.linspace(0.2, 0.8, 4):
                path = fm_path(eps[m : m + 1], z[i : i + 1], float(t))
                with torch.no_grad():
                    v = det.model_.velocity(path.x_t, path.t)
                vals.append((1 - t) ** 2 * float((v - path.dx_t).pow(2).mean()))
            per_probe.append(np.mean(vals))
        expected[i] = np.median(per_probe)
    np.testing.assert_allclose(det.decision_function(X), expected, rtol=1e-5)
    alone = np.array([det.decision_function(X[i : i + 1])[0] for i in range(6)])
    np.testing.assert_allclose(alone, det.decision_function(X), rtol=1e-6)


def test_wtflow_batchnorm_handles_a_training_set_one_above_a_batch_multiple():
    # 65 samples at batch 64 would leave a last batch of 1, which BatchNorm cannot normalise.
    det = _tiny("WTFlow-BN", batch_size=64).fit(_data(65))
    assert np.isfinite(det.decision_scores_).all()


def test_cross_fit_calibration_changes_the_threshold_only():
    X, X_test = _data(), np.vstack([_data(40, seed=5), _outliers()])
    train = _tiny("RFM", preprocessing="whiten", calibration="train").fit(X)
    cross = _tiny("RFM", preprocessing="whiten").fit(X)
    np.testing.assert_array_equal(cross.decision_function(X_test), train.decision_function(X_test))
    np.testing.assert_array_equal(cross.decision_scores_, train.decision_scores_)
    np.testing.assert_array_equal(train.calibration_scores_, train.decision_scores_)
    assert cross.calibration_scores_.shape == (len(X),)
    assert cross.threshold_ == pytest.approx(np.percentile(cross.calibration_scores_, 90))
    assert cross.threshold_ != train.threshold_


def test_cross_fit_flags_about_contamination_of_unseen_normals():
    """Whitened Gaussian data with d = 24 from n = 150: training scores are optimistic, out-of-fold ones are not.

    Tolerance 0.05 around contamination 0.1: the threshold is a 90 % quantile of 150 calibration scores
    (standard error sqrt(0.1 * 0.9 / 150) = 0.025 in flagged fraction) and the 3000 test normals add 0.005.
    The fold models see 4/5 of the data, so their held-out scores are somewhat pessimistic: over data seeds
    0-3 the cross-fitted threshold flagged 0.057-0.089 of unseen normals, the training-score rule 0.198-0.263.
    """
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(24, 24))
    X, X_unseen = rng.normal(size=(150, 24)) @ mix, rng.normal(size=(3000, 24)) @ mix
    kwargs = {"preprocessing": "whiten", "hidden": 32, "depth": 2, "time_dim": 8, "train_steps": 40}
    flagged = {
        mode: wtflow.RFM(calibration=mode, **kwargs).fit(X).predict(X_unseen).mean() for mode in ("train", "cross-fit")
    }
    assert abs(flagged["cross-fit"] - 0.1) <= 0.05, flagged
    assert flagged["train"] > flagged["cross-fit"] + 0.05, flagged


def test_cross_fit_needs_two_samples_per_fold_and_survives_save_load(tmp_path):
    with pytest.raises(ValueError, match="calibration_folds=5 needs at least 10 training samples, got 8"):
        _tiny("RFM").fit(_data(8))
    with pytest.raises(ValueError, match="unknown calibration 'holdout'"):
        wtflow.RFM(calibration="holdout")
    det = _tiny("WTFlow", calibration_folds=3).fit(_data(30))
    loaded = load_detector(det.save(tmp_path / "det.pt"))
    np.testing.assert_array_equal(loaded.calibration_scores_, det.calibration_scores_)
    assert loaded.threshold_ == det.threshold_


def test_transfer_scores_maps_one_models_scale_onto_anothers():
    from wtflow.detectors.calibration import robust_scale, transfer_scores

    rng = np.random.default_rng(0)
    main_train = rng.gamma(3.0, size=101)
    fold_train = 5.0 + 2.5 * main_train  # another fit: same ranking, another affine scale
    held_out = 5.0 + 2.5 * np.array([0.5, 4.0, 9.0])
    np.testing.assert_allclose(transfer_scores(held_out, fold_train, main_train), [0.5, 4.0, 9.0], atol=1e-12)
    np.testing.assert_allclose(transfer_scores(fold_train, fold_train, fold_train), fold_train)
    assert robust_scale(np.ones(5)) == (1.0, 1.0) and robust_scale(np.array([0.0, 0, 0, 0, 4]))[1] == 4.0
