"""Calibration, the flag and the blame: the decision layer, on synthetic evidence."""

import math

import numpy as np
import pytest

from mcf_ros.model.scoring import (
    BLAME_LEVEL,
    BLAME_ONLY,
    CHANNELS,
    DERIVED,
    LOCAL_SHARE,
    THRESHOLD_MARGIN,
    Calibration,
    PersistentFlag,
    StreamScorer,
    TrailingMax,
    blame,
    calibrate,
    combine,
    episode_threshold,
    local_share,
    persistent,
    score_sequence,
    tail_stats,
    trailing_max,
)

WINDOWS_PER_HOUR = 30 * 3600


def normal_evidence(rng, n):
    evidence = {channel: rng.gamma(4.0, 1.0, n) for channel in CHANNELS if channel not in DERIVED}
    evidence['frame_gap'] = np.full(n, 1 / 30)
    evidence['joint_gap'] = np.zeros(n)
    evidence['joint_jerk'] = rng.gamma(4.0, 1e-4, n)
    evidence['joint_repeats'] = np.zeros(n)
    evidence['attention'] = rng.normal(0.5, 0.01, (n, 4))
    evidence['joint_path'] = np.full((n, 18), np.nan)
    evidence.update({key: rng.gamma(4.0, 1.0, n) for key in BLAME_ONLY})
    evidence['camera_locality'] = rng.uniform(0.0, 0.5, n)
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


def test_the_threshold_is_never_below_what_the_held_out_data_show():
    """A heavy tail that the exponential fit understates: 2 min of held-out data may not alarm at 1/h."""
    rng = np.random.default_rng(3)
    per_hour = 30 * 3600
    scores = rng.pareto(1.5, per_hour // 30)  # 2 min of windows
    threshold = episode_threshold(scores, per_hour, 1.0)
    assert threshold >= scores.max()
    hours = 3  # with 3 h of data at 1/h, three of its own episodes may peak above the threshold, not four
    scores = rng.pareto(1.5, hours * per_hour)
    threshold = episode_threshold(scores, per_hour, 1.0)
    assert 1 <= episodes_per_hour_at(scores > threshold, per_hour) * hours <= 3


def test_small_normal_excursions_do_not_lower_the_threshold():
    """A channel that often sits just above the others' bulk adds many small episodes; the largest
    peaks, and with them the threshold, stay where they were."""
    rng = np.random.default_rng(0)
    per_hour = 30 * 3600
    scores = rng.exponential(1.0, per_hour // 6)  # 10 min of windows
    bulk = np.quantile(scores, 0.9)
    small = np.where(rng.random(len(scores)) < 0.1, bulk + rng.uniform(0.0, 0.3, len(scores)), 0.0)
    busier = np.maximum(scores, small)
    assert episode_threshold(busier, per_hour, 1.0) == pytest.approx(episode_threshold(scores, per_hour, 1.0), rel=0.02)


def flags_at(scores, threshold, persistence):
    """The flag a stream of anomaly scores raises against a threshold (the scorer's flag, on scores already made)."""
    flag = PersistentFlag(persistence)
    return np.array([flag.update(bool(score > threshold)) for score in scores])


def test_calibration_meets_the_false_alarm_target_on_fresh_normal_evidence():
    """Targets of 1/h and 10/h on 4 h of fresh normal evidence (scored once: a target moves only the threshold)."""
    rng = np.random.default_rng(1)
    held_out = 30 * 60 * 30
    evidence = normal_evidence(rng, held_out)
    calibrations = {
        target: calibrate(evidence, np.arange(held_out) / 30, 1.0, WINDOWS_PER_HOUR, target, 1, margin=1.0)
        for target in (1.0, 10.0)
    }
    hours = 4
    fresh = normal_evidence(rng, hours * WINDOWS_PER_HOUR)
    scores = score_sequence(calibrations[1.0], 1.0, np.arange(hours * WINDOWS_PER_HOUR) / 30, fresh)['anomaly_score']
    for target, calibration in calibrations.items():
        rate = episodes_per_hour(flags_at(scores, calibration.threshold, 1))
        assert rate <= 2 * target, f'{rate:.1f} false alarms/h for a target of {target}/h'
        if target >= 10:  # enough episodes in 4 h to bound the rate from below too
            assert rate >= target / 3, f'{rate:.2f} false alarms/h: far more conservative than the target'


def test_the_margin_keeps_a_noisier_normal_day_quiet():
    """Held-out data do not show every normal tail: on a day when every channel reads 40 % higher, the
    calibrated threshold raises no alarm in 4 h, where the threshold fitted without the margin raises many."""
    rng = np.random.default_rng(2)
    held_out = 30 * 60 * 10
    evidence, stamps = normal_evidence(rng, held_out), np.arange(held_out) / 30
    hours = 4
    noisier = normal_evidence(rng, hours * WINDOWS_PER_HOUR)
    for channel in ('camera_error', 'kinematics_error', 'latent_disagreement'):
        noisier[channel] = 1.4 * noisier[channel]
    calibrations = {
        margin: calibrate(evidence, stamps, 1.0, WINDOWS_PER_HOUR, 1.0, 3, margin=margin)
        for margin in (THRESHOLD_MARGIN, 1.0)
    }
    scores = score_sequence(calibrations[1.0], 1.0, np.arange(hours * WINDOWS_PER_HOUR) / 30, noisier)['anomaly_score']
    rates = {margin: episodes_per_hour(flags_at(scores, c.threshold, 3)) for margin, c in calibrations.items()}
    assert rates[THRESHOLD_MARGIN] == 0 and rates[1.0] > 10, rates


def test_spread_camera_evidence_is_calibrated_on_its_spread_values():
    """The camera channels are compared as their maximum over the window span, so their normal tail is
    measured there: on fresh normal data the spread camera evidence exceeds its centre about as often
    as any channel exceeds its own (10 % of windows), not in nearly every window."""
    rng = np.random.default_rng(3)
    n = 30 * 60 * 10
    stamps = np.arange(n) / 30
    calibration = calibrate(normal_evidence(rng, n), stamps, 1.0, WINDOWS_PER_HOUR, 1.0, 3)
    scored = score_sequence(calibration, 1.0, stamps, normal_evidence(rng, n))
    above = np.mean(scored['camera_evidence'] > 0)
    assert 0.05 < above < 0.2, f'spread camera evidence above its centre in {above:.0%} of normal windows'


def test_trailing_max_covers_the_span_skips_missing_values_and_restarts_when_time_goes_back():
    window = TrailingMax(1.0)
    pushed = [(0.0, 3.0), (0.5, 1.0), (0.9, math.nan), (1.0, 2.0), (1.6, 0.5), (0.2, 0.1)]
    assert [window.push(t, v) for t, v in pushed] == [3.0, 3.0, 3.0, 2.0, 2.0, 0.1]
    assert math.isnan(TrailingMax(1.0).push(0.0, math.nan))
    assert list(trailing_max(np.array([1.0, 5.0, 2.0]), np.array([0.0, 0.1, 1.2]), 1.0)) == [1.0, 5.0, 2.0]


def test_constant_health_channels_get_a_scale_floor():
    centre, scale = tail_stats(np.zeros(100), floor=0.02)
    assert (centre, scale) == (0.0, 0.02)
    centre, scale = tail_stats(np.full(100, 1 / 30))
    assert scale == pytest.approx(0.05 / 30)


def test_a_channel_is_scaled_by_its_normal_tail():
    """Centre: the 90th percentile; scale: the mean excess above it (exponential tail -> its mean)."""
    values = np.random.default_rng(0).exponential(2.0, 200_000)
    centre, scale = tail_stats(values)
    assert centre == pytest.approx(2.0 * np.log(10), rel=0.02)
    assert scale == pytest.approx(2.0, rel=0.02)


def test_a_channel_without_values_gets_neutral_statistics():
    assert tail_stats(np.full(10, np.nan)) == (0.0, 1.0)


def unit_calibration(persistence=3):
    """Calibration under which every channel's z-score is its raw value, with threshold 3.

    A window with every source at 0 scores log(5) (the five sources joined), below the threshold.
    """
    return Calibration(
        centre=dict.fromkeys(CHANNELS, 0.0), scale=dict.fromkeys(CHANNELS, 1.0), attention_mean=[0.5, 0.5],
        threshold=3.0, target_false_alarms_per_hour=1.0, persistence=persistence, windows_per_hour=3600.0,
    )  # fmt: skip


def kinematics_evidence(values):
    """Evidence rows whose only non-zero channel is the kinematics error."""
    quiet = {channel: 0.0 for channel in [*CHANNELS, *BLAME_ONLY, 'camera_locality'] if channel not in DERIVED}
    pose = np.zeros(18)
    return [{**quiet, 'attention': np.array([0.5, 0.5]), 'joint_path': pose, 'kinematics_error': v} for v in values]


def stream(scorer, values, period_s=0.1):
    return [scorer.step(i * period_s, row) for i, row in enumerate(kinematics_evidence(values))]


def test_flag_rises_after_persistence_windows_and_clears_likewise():
    scored = stream(StreamScorer(unit_calibration(), 1.0), [0, 5, 5, 5, 5, 0, 5, 0, 0, 0, 0])
    assert [row['is_anomaly'] for row in scored] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert [row['blame'] for row in scored][3] == 'kinematics'
    assert scored[0]['blame'] == 'none'


def test_a_single_spike_never_raises_the_flag():
    values = np.zeros(100)
    values[50] = 100
    assert not any(row['is_anomaly'] for row in stream(StreamScorer(unit_calibration(), 1.0), values))


def test_camera_evidence_is_spread_over_the_window_span():
    scorer = StreamScorer(unit_calibration(persistence=1), 1.0)
    rows = kinematics_evidence(np.zeros(10))
    rows[2] = {**rows[2], 'camera_error': 7.0}
    scored = [scorer.step(i * 0.25, row) for i, row in enumerate(rows)]
    assert [row['camera_evidence'] for row in scored] == [0, 0, 7, 7, 7, 7, 0, 0, 0, 0]


def test_a_stream_that_goes_back_in_time_starts_afresh():
    scorer = StreamScorer(unit_calibration(persistence=2), 1.0)
    assert stream(scorer, [5, 5, 5])[-1]['is_anomaly']
    after_loop = scorer.step(0.0, {**kinematics_evidence([0])[0], 'camera_error': 0.0})
    assert not after_loop['is_anomaly'] and after_loop['camera_evidence'] == 0


def test_the_concept_score_is_the_mean_attention_and_its_shift_is_evidence():
    scorer = StreamScorer(unit_calibration(persistence=1), 1.0)
    row = scorer.step(0.0, {**kinematics_evidence([0])[0], 'attention': np.array([0.9, 8.1])})
    assert row['concept_score'] == pytest.approx(4.5)
    assert row['attention_shift'] == pytest.approx(4.0)
    assert row['anomaly_score'] == pytest.approx(math.log(math.exp(4.0) + 4)) and row['is_anomaly']


def test_the_anomaly_score_joins_the_sources_as_a_sum_of_tail_rates():
    z = dict.fromkeys([*CHANNELS, *BLAME_ONLY, 'camera_locality'], np.array([-50.0, -50.0, -50.0]))
    z['camera_error'] = np.array([6.0, 6.0, -50.0])
    z['frame_gap'] = np.array([1.0, 7.0, -50.0])  # the camera evidence is the larger of its two channels
    z['attention_shift'] = np.array([-50.0, 5.0, -50.0])
    z['latent_disagreement'] = np.array([-50.0, -50.0, 800.0])  # no overflow on a huge z
    combined = combine(z)
    assert combined['camera'].tolist() == [6.0, 7.0, -50.0]
    expected = [
        6.0 + math.log(1 + 4 * math.exp(-56.0)),
        math.log(math.exp(7.0) + math.exp(5.0) + 3 * math.exp(-50.0)),
        800.0,
    ]
    assert combined['anomaly'] == pytest.approx(expected)
    one_raised, two_raised = combine({**z, 'frame_gap': np.full(3, 1.0)})['anomaly'][0], combined['anomaly'][1]
    assert two_raised > 7.0 > one_raised, 'a second raised source lifts the score above its largest source'
    overflowed = combine({**z, 'kinematics_error': np.array([np.inf, 0.0, 0.0])})['anomaly'][0]
    assert overflowed == np.inf, 'a residual that overflowed is the strongest evidence, not NaN'


def test_persistent_score_is_the_minimum_over_the_trailing_windows():
    assert persistent(np.array([3.0, 1.0, 4.0, 5.0]), 2).tolist() == [-np.inf, 1.0, 1.0, 4.0]


def sensors(n, **values):
    """What blame() weighs for n windows: nothing raised, then `values`."""
    quiet = {
        key: np.zeros(n)
        for key in ('camera', 'kinematics', 'disagreement', 'anomaly', 'camera_health', 'kinematics_health')
    }
    alone = {key: np.zeros(n) for key in ('camera_alone', 'kinematics_alone', 'motion_alone', 'effort_alone_second')}
    return {**quiet, **alone, 'camera_locality': np.zeros(n), **{k: np.asarray(v, float) for k, v in values.items()}}


def test_a_sensor_abnormal_alone_is_blamed_and_both_abnormal_alone_is_the_world():
    high = BLAME_LEVEL + 1
    combined = sensors(
        3, camera=[9, 9, 9], kinematics=[9, 9, 9], camera_alone=[high, 0, high], kinematics_alone=[0, high, high],
        motion_alone=[0, high, high],
    )  # fmt: skip
    assert blame(combined, threshold=5.0).tolist() == ['camera', 'kinematics', 'physical']


def test_a_local_change_only_the_camera_sees_is_the_world_and_a_global_one_is_the_camera():
    combined = sensors(2, camera=[9, 9], camera_alone=[9, 9], camera_locality=[LOCAL_SHARE + 0.05, LOCAL_SHARE - 0.3])
    assert blame(combined, threshold=5.0).tolist() == ['physical', 'camera']


def test_efforts_off_beyond_the_motion_are_the_arms_dynamics_and_a_lone_motion_or_effort_is_the_sensor():
    combined = sensors(
        3, kinematics=[9, 9, 9], kinematics_alone=[40, 40, 40],
        effort_alone_second=[40, -1, 10],  # several joints' efforts / one joint's effort / a few
        motion_alone=[5, -1, 40],  # a little motion / none / a motion the camera does not show
    )  # fmt: skip
    assert blame(combined, threshold=5.0).tolist() == ['physical', 'kinematics', 'kinematics']


def test_sensors_normal_alone_but_not_together_are_blamed_by_their_joint_evidence():
    """A stale frame or late joint states: each sensor normal alone; the larger fused evidence names it."""
    combined = sensors(3, camera=[9, 1, 9], kinematics=[1, 9, 9], anomaly=[9, 9, 9])
    assert blame(combined, threshold=5.0).tolist() == ['camera', 'kinematics', 'physical']


def test_an_arm_off_its_cycle_that_both_sensors_agree_on_is_physical():
    """The cycle lag raised the score, not either sensor's evidence; an encoder off its cycle raises its own."""
    combined = sensors(2, camera=[1, 1], kinematics=[1, 9], anomaly=[9, 9])
    assert blame(combined, threshold=5.0).tolist() == ['physical', 'kinematics'], (
        'an encoder off the cycle is its own fault'
    )


def test_a_window_raised_by_how_normal_looking_sensors_look_together_is_the_world_unless_they_disagree():
    """A dropped part: each sensor shows a normal, consistent cell and the concepts' attention raises the window.
    Sensors that disagree are a sensor's fault; a window the flag only holds (nothing raised) keeps the sensor."""
    combined = sensors(
        3, camera=[1, 1, 2], kinematics=[0, 0, 1], camera_locality=[1.0, 1.0, 1.0], disagreement=[-3, 9, -3],
        anomaly=[9, 9, 3],
    )  # fmt: skip
    assert blame(combined, threshold=5.0).tolist() == ['physical', 'camera', 'camera']


def test_an_unhealthy_stream_is_blamed_alone_even_when_the_other_error_rises():
    combined = sensors(
        2, camera=[9, 9], kinematics=[9, 9], camera_alone=[9, 9], kinematics_alone=[9, 9],
        camera_health=[0, 9], kinematics_health=[9, 0],
    )  # fmt: skip
    assert blame(combined, threshold=5.0).tolist() == ['kinematics', 'camera']


def test_a_joint_reading_stuck_for_a_few_dozen_samples_is_an_alarm_on_the_joint_sensor():
    """Normal running that never repeats a reading scales repeats by one sample (the floor)."""
    rng = np.random.default_rng(0)
    n = 20_000
    evidence = normal_evidence(rng, n)
    end_s = np.arange(n) / 30
    calibration = calibrate(evidence, end_s, 1.0, WINDOWS_PER_HOUR)
    assert (calibration.centre['joint_repeats'], calibration.scale['joint_repeats']) == (0.0, 1.0)
    fresh = normal_evidence(rng, 60)
    fresh['joint_repeats'][30:] = np.arange(1, 31) * 10  # a reading stuck from window 30: 10 samples a window
    for channel in ('camera_error', 'camera_alone', 'kinematics_alone'):  # and both sensors raised alone: the stream
        fresh[channel][30:] = 100.0  # health, not the world, names the sensor
    scored = score_sequence(calibration, 1.0, end_s[-1] + 1 + np.arange(60) / 30, fresh)
    first = int(np.argmax(scored['is_anomaly']))
    assert scored['is_anomaly'][first] and 30 < first < 40
    assert set(scored['blame'][first:]) == {'kinematics'}
    assert not scored['is_anomaly'][:30].any()


def test_locality_is_the_share_of_the_excess_in_a_tenth_of_the_image():
    cells = np.zeros((4, 20))
    cells[0, :2] = 5.0  # all the excess in 2 of 20 cells
    cells[1] = 1.0  # spread evenly
    cells[2] = -1.0  # under the normal level everywhere
    cells[3] = np.nan  # no camera
    share = local_share(cells)
    assert share[:3].tolist() == [1.0, 0.1, 0.0] and np.isnan(share[3])
