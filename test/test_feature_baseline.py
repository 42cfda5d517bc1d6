"""The PyOD baseline: features of a window, calibration on held-out normal windows, flags with persistence."""

import numpy as np
import pytest

from mcf_ros.data.windows import Window
from mcf_ros.model.feature_baseline import THUMBNAIL_SIDE, FeatureBaseline, window_features

GRID, JOINT_FEATURES = 50, 18
CALIBRATION = {'persistence': 3, 'windows_per_hour': 30 * 3600.0, 'target_false_alarms_per_hour': 1.0}


def normal_window(rng, end_s: float, offset: float = 0.0) -> Window:
    t = end_s + np.linspace(-1.0, 0.0, GRID)[:, None]
    joints = np.sin(0.5 * t + np.arange(JOINT_FEATURES)) + offset + 0.01 * rng.normal(size=(GRID, JOINT_FEATURES))
    image = np.clip(120 + 10 * rng.normal(size=(64, 64, 3)), 0, 255).astype(np.uint8)
    return Window(end_s, image, joints.astype(np.float32), 1 / 30, 1.0)


@pytest.fixture(scope='module')
def baseline():
    rng = np.random.default_rng(0)
    train = [normal_window(rng, k / 30) for k in range(3000)]
    holdout = [normal_window(rng, 100 + k / 30) for k in range(1500)]
    return FeatureBaseline(train, holdout, JOINT_FEATURES, CALIBRATION)


def test_features_summarise_joints_and_frame_and_mark_a_missing_stream_nan():
    rng = np.random.default_rng(1)
    window = normal_window(rng, 1.0)
    features = window_features([window, Window(2.0, None, None, np.nan, np.nan)], JOINT_FEATURES)
    assert features.shape == (2, 5 * JOINT_FEATURES + THUMBNAIL_SIDE**2 + 4)  # and the four stream-health values
    np.testing.assert_allclose(features[0, :JOINT_FEATURES], window.joints.mean(0), rtol=1e-5)
    np.testing.assert_allclose(features[0, 5 * JOINT_FEATURES], window.image[:8, :8].mean() / 255, atol=0.05)
    assert np.isnan(features[1, : 5 * JOINT_FEATURES + THUMBNAIL_SIDE**2]).all()


def test_normal_running_raises_no_flag_and_a_joint_offset_or_lost_joints_do(baseline):
    rng = np.random.default_rng(2)
    normal = [normal_window(rng, 200 + k / 30) for k in range(900)]
    offset = [normal_window(rng, 230 + k / 30, offset=1.5) for k in range(30)]
    lost = [Window(233 + k / 30, normal[0].image, None, 1 / 30, np.nan) for k in range(30)]
    scored = baseline.score(normal + offset + normal_window_run(rng, 232) + lost)
    flags = scored['is_anomaly']
    assert not flags[:900].any(), 'false alarms on normal running'
    assert flags[900:930].any() and flags[-30:].any()
    assert scored['anomaly_score'][900:930].min() > np.percentile(scored['anomaly_score'][:900], 99)
    assert set(scored['blame'][flags]) == {'unknown'}, 'the baseline names no modality'


def normal_window_run(rng, start_s: float) -> list[Window]:
    return [normal_window(rng, start_s + k / 30) for k in range(30)]


def test_a_flag_needs_persistence_windows_to_rise(baseline):
    rng = np.random.default_rng(3)
    windows = normal_window_run(rng, 300) + [normal_window(rng, 301 + k / 30, offset=1.5) for k in range(2)]
    assert not baseline.score(windows + normal_window_run(rng, 302))['is_anomaly'].any(), 'two windows raised it'


def test_normal_running_stays_far_below_the_threshold_as_the_models_do(baseline):
    """The baseline is calibrated by the models' rule, margin included: fresh normal windows peak at a
    fraction of the threshold, not at it."""
    rng = np.random.default_rng(4)
    scores = baseline.score([normal_window(rng, 300 + k / 30) for k in range(3000)])['anomaly_score']
    assert np.nanmax(scores) < 0.5 * baseline.threshold, f'{np.nanmax(scores):.2f} of {baseline.threshold:.2f}'
