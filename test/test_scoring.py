"""Calibration, the flag and the blame: the decision layer, on synthetic evidence."""

import numpy as np
import pytest

from mcf_ros.model.scoring import (
    CHANNELS,
    blame,
    calibrate,
    combine,
    episode_threshold,
    evidence_z,
    flags,
    persistent,
    robust_stats,
    span_evidence,
    trailing_max,
)

WINDOWS_PER_HOUR = 30 * 3600


def normal_evidence(rng, n):
    evidence = {channel: rng.gamma(4.0, 1.0, n) for channel in CHANNELS}
    evidence['frame_gap'] = np.full(n, 1 / 30)
    evidence['joint_gap'] = np.zeros(n)
    evidence['joint_jerk'] = rng.gamma(4.0, 1e-4, n)
    return evidence


def episodes_per_hour_at(raised, windows_per_hour):
    rises = np.sum(raised[1:] & ~raised[:-1]) + raised[0]
    return rises / (len(raised) / windows_per_hour)


def episodes_per_hour(raised):
    return episodes_per_hour_at(raised, WINDOWS_PER_HOUR)


def test_episode_threshold_gives_the_target_episode_rate_on_iid_scores():
    rng = np.random.default_rng(0)
    per_hour = 1000
    threshold = episode_threshold(rng.exponential(1.0, 20_000), per_hour, 1.0)
    fresh = rng.exponential(1.0, 200 * per_hour)
    rate = episodes_per_hour_at(fresh > threshold, per_hour)
    assert 0.5 < rate < 2.0, f'{rate:.2f} episodes/h for a target of 1/h'


@pytest.mark.parametrize('target', [1.0, 10.0])
def test_calibration_meets_the_false_alarm_target_on_fresh_normal_evidence(target):
    rng = np.random.default_rng(1)
    held_out = 30 * 60 * 30
    calibration = calibrate(
        normal_evidence(rng, held_out), np.zeros(4), np.arange(held_out) / 30, 1.0, WINDOWS_PER_HOUR, target, 1
    )
    hours = 6
    fresh = normal_evidence(rng, hours * WINDOWS_PER_HOUR)
    z = evidence_z(fresh, calibration.median, calibration.scale)
    scores = combine(span_evidence(z, np.arange(hours * WINDOWS_PER_HOUR) / 30, 1.0))['anomaly']
    rate = episodes_per_hour(flags(scores, calibration.threshold, 1))
    assert rate <= 2 * target, f'{rate:.1f} false alarms/h for a target of {target}/h'
    if target >= 10:  # enough episodes in 6 h to bound the rate from below too
        assert rate >= target / 3, f'{rate:.2f} false alarms/h: the threshold is far more conservative than the target'


def test_constant_health_channels_get_a_scale_floor():
    median, scale = robust_stats(np.zeros(100), floor=0.02)
    assert (median, scale) == (0.0, 0.02)
    median, scale = robust_stats(np.full(100, 1 / 30))
    assert scale == pytest.approx(0.05 / 30)


def test_a_channel_without_values_gets_neutral_statistics():
    assert robust_stats(np.full(10, np.nan)) == (0.0, 1.0)


def test_flag_rises_after_persistence_windows_and_clears_likewise():
    scores = np.array([0, 5, 5, 5, 5, 0, 5, 0, 0, 0, 0], float)
    raised = flags(scores, threshold=1.0, persistence=3)
    assert raised.tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0]


def test_a_single_spike_never_raises_the_flag():
    scores = np.zeros(100)
    scores[50] = 100
    assert not flags(scores, 1.0, 3).any()


def test_camera_evidence_is_spread_over_the_window_span():
    end_s = np.arange(10) * 0.25
    values = np.zeros(10)
    values[2] = 7.0
    assert trailing_max(values, end_s, 1.0).tolist() == [0, 0, 7, 7, 7, 7, 0, 0, 0, 0]


def test_persistent_score_is_the_minimum_over_the_trailing_windows():
    assert persistent(np.array([3.0, 1.0, 4.0, 5.0]), 2).tolist() == [-np.inf, 1.0, 1.0, 4.0]


def test_blame_names_the_sensor_with_evidence_and_physical_when_both_have_it():
    combined = {
        'camera': np.array([9.0, 1.0, 9.0]),
        'kinematics': np.array([1.0, 9.0, 9.0]),
        'camera_health': np.zeros(3),
        'kinematics_health': np.zeros(3),
    }
    assert blame(combined, threshold=5.0).tolist() == ['camera', 'kinematics', 'physical']


def test_an_unhealthy_stream_is_blamed_alone_even_when_the_other_error_rises():
    combined = {
        'camera': np.array([9.0, 9.0]),
        'kinematics': np.array([9.0, 9.0]),
        'camera_health': np.array([0.0, 9.0]),
        'kinematics_health': np.array([9.0, 0.0]),
    }
    assert blame(combined, threshold=5.0).tolist() == ['kinematics', 'camera']
