"""The cycle clocks and the lag evidence, on a synthetic three-joint cell that repeats a program."""

import math
from functools import cache

import numpy as np
import pytest

from mcf_ros.model.cycle import (
    CycleLag,
    CycleReference,
    CycleScale,
    cycle_trouble,
    fit_cycle,
    rest_pose,
    still_time,
    window_path,
)
from mcf_ros.model.scoring import BLAME_ONLY, CHANNELS, DERIVED, calibrate, score_sequence

HOME = np.array([0.0, 0.0, 0.0])
WAYPOINTS = [np.array([1.0, 0.5, 0.3]), np.array([0.5, 1.0, -0.3]), HOME]
JOINTS = len(HOME)


WELD = np.array([0.2, 0.0, 0.0])  # a slow pass on the first joint, after the first waypoint
STOP = (48.5, 51.5, 0.0)  # a 3 s stop of seed 2's cell, just after it left home


def program(seed: int, seconds: float, dwell_s: float = 1.5, weld_s: float = 0.0, override=None):
    """Return segments (t0, t1, q0, q1, at_home) of a repeating cycle: home dwell, three moves with stops.

    `weld_s` > 0 adds a slow pass of WELD over that many seconds after the first waypoint.
    `override` = (start, stop, factor) runs the moves of the cycles that start between them at that
    share of their speed, as a speed override on the teach pendant does.
    """
    rng = np.random.default_rng(seed)
    segments, t = [], 0.0
    while t < seconds + 10.0:
        segments.append((t, t + dwell_s + 0.2 * rng.standard_normal() ** 2, HOME, HOME, True))
        t = segments[-1][1]
        q = HOME
        pace = override[2] if override and override[0] <= t < override[1] else 1.0
        for target, move_s in zip(WAYPOINTS, (1.0, 1.0, 1.2), strict=True):
            end = t + move_s / pace * (1 + 0.03 * rng.standard_normal())
            segments.append((t, end, q, target, False))
            segments.append((end, end + 0.3, target, target, False))
            t, q = end + 0.3, target
            if weld_s and target is WAYPOINTS[0]:
                segments.append((t, t + weld_s, q, q + WELD, False))
                t, q = t + weld_s, q + WELD
    return segments


@cache
def run(seed: int, seconds: float, hz: float, slow=None, offset=None, dwell_s=1.5, weld_s=0.0, override=None):
    """Sample windows of the cell at `hz`: (end times, paths, seconds late, poses).

    `slow` = (start, stop, share) runs the program at that share of its speed (0: stopped), and the
    lost time is caught up at home, as a cell does. `offset` = (start, stop) adds 0.3 rad to the first joint's reading.
    """
    segments = program(seed, seconds, dwell_s, weld_s, override)
    starts = [s[0] for s in segments]
    dt, tau = 1.0 / 500.0, 0.0
    fine = np.arange(1, int(seconds * 500)) * dt
    poses, late = [], []
    for t in fine:
        tau += dt * (slow[2] if slow and slow[0] <= t < slow[1] else 1.0)
        t0, t1, q0, q1, at_home = segments[np.searchsorted(starts, tau, side='right') - 1]
        if at_home and tau < t:
            tau = min(t, t1)
        s = np.clip((tau - t0) / (t1 - t0), 0.0, 1.0)
        pose = q0 + (3 * s**2 - 2 * s**3) * (q1 - q0)
        if offset and offset[0] <= t < offset[1]:
            pose = pose + np.array([0.3, 0.0, 0.0])
        poses.append(pose)
        late.append(t - tau)
    poses, late = np.array(poses), np.array(late)
    ends = np.arange(int(hz) + 1, int((seconds - 0.1) * hz)) / hz
    index = np.searchsorted(fine, ends)
    grid = np.linspace(-1.0, 0.0, 50)
    paths = np.array([window_path(poses[np.searchsorted(fine, end + grid)], JOINTS) for end in ends])
    return 100.0 + ends, paths, late[index], poses[index]


def lags(reference: CycleReference, times, paths):
    lag = CycleLag(reference)
    return np.array([lag.push(float(t), path) for t, path in zip(times, paths, strict=True)])


def away_from_home(poses):
    return np.abs(poses - HOME).max(axis=1) > 0.1


@cache
def reference(seed=1, seconds=300.0):
    times, paths, _, _ = run(seed, seconds, 15.0)
    return fit_cycle(times, paths, JOINTS)


def test_home_is_the_pose_the_arm_rests_at_longest():
    times, paths, _, _ = run(1, 120.0, 15.0)
    assert np.abs(rest_pose(times, paths, JOINTS, CycleScale.from_data(times, paths, JOINTS)) - HOME).max() < 1e-9


def test_a_slow_welding_pass_is_not_taken_for_rest():
    """0.2 rad in 6 s (0.05 rad/s at most): under a fixed rest speed of 0.05 rad/s it outlasts home."""
    times, paths, _, _ = run(1, 240.0, 15.0, weld_s=6.0)
    learnt = CycleScale.from_data(times, paths, JOINTS)
    assert np.abs(rest_pose(times, paths, JOINTS, learnt) - HOME).max() < 1e-9
    fixed = CycleScale(still_rad_s=0.05, home_tol_rad=0.1, path_tol_rad=0.05, max_step_s=1.0)
    assert np.abs(rest_pose(times, paths, JOINTS, fixed) - HOME).max() > 0.5, 'the fixed rest speed took the weld'
    assert fit_cycle(times, paths, JOINTS) is not None


def test_the_tolerances_follow_the_arm_speed_and_the_window_spacing():
    base = CycleScale.from_data(*run(1, 240.0, 15.0)[:2], JOINTS)
    sparser = CycleScale.from_data(*run(1, 240.0, 7.5)[:2], JOINTS)
    slower = CycleScale.from_data(*run(1, 240.0, 15.0, slow=(0.0, 240.0, 0.4))[:2], JOINTS)
    assert sparser.path_tol_rad / base.path_tol_rad == pytest.approx(2.0, rel=0.1)
    assert sparser.max_step_s / base.max_step_s == pytest.approx(2.0, rel=0.01)
    assert slower.path_tol_rad / base.path_tol_rad == pytest.approx(0.4, rel=0.1)
    assert base.home_tol_rad == pytest.approx(2 * base.path_tol_rad)


def test_the_normal_cycle_knows_how_long_the_arm_stood_still_since_it_left_home():
    normal_cycle = reference()
    still = still_time(normal_cycle)
    cycles = np.split(np.arange(len(still)), np.flatnonzero(np.diff(normal_cycle.departure_s) <= 0) + 1)
    assert len(cycles) > 40 and all(still[cycle[0]] == 0.0 for cycle in cycles)
    # Two 0.3 s stops on the way (the third move ends home), less the steps at 15 Hz that each shares with a move.
    assert all(0.6 - 4 / 15 - 1e-6 <= still[cycle].max() <= 0.6 for cycle in cycles)


def test_an_arm_stopped_longer_than_a_slower_override_explains_is_late_on_its_cycle():
    normal_cycle = reference()
    assert normal_cycle is not None and len(normal_cycle.departure_s) > 1000
    normal = lags(normal_cycle, *run(2, 120.0, 30.0)[:2])
    assert np.nanmax(normal) < 0.15, f'a normal arm is {np.nanmax(normal):.3f} s off its cycle'
    times, paths, seconds_late, poses = run(2, 120.0, 30.0, slow=STOP)
    lag = lags(normal_cycle, times, paths)
    # After the stop the arm has moved for about a second since it left home: at half speed that second
    # would be two, so of the 3 s it is late at least one is more than any override down to half explains.
    restarted = (times >= 152.2) & (times < 153.2) & away_from_home(poses)
    assert (seconds_late[restarted] > 2.9).all()
    assert np.isfinite(lag[restarted]).sum() >= 20 and np.nanmedian(lag[restarted]) > 1.0


def test_a_slowdown_is_not_a_fault_but_the_catch_up_at_home_that_follows_it_leaves_early():
    normal_cycle = reference()
    normal = lags(normal_cycle, *run(2, 120.0, 30.0)[:2])
    times, paths, seconds_late, poses = run(2, 120.0, 30.0, slow=(48.5, 50.5, 0.4))  # just after it left home
    lag = lags(normal_cycle, times, paths)
    # 2 s at 40 % speed lose 1.2 s, less than the moves so far would lose at half speed.
    late = (times >= 150.8) & (seconds_late > 0.5) & away_from_home(poses)
    assert late.sum() > 15 and np.isfinite(lag[late]).sum() > 15
    assert np.nanmax(lag[late]) <= 0.05, 'an arm as late as a lowered override makes it is taken for a fault'
    # It caught up by leaving home early: that next cycle is off, and the one after is normal.
    away = away_from_home(poses)
    cycle = np.cumsum(away & ~np.concatenate([[False], away[:-1]]))
    early = away & (cycle == cycle[late][-1] + 1)
    assert early.sum() > 30
    assert np.nanmedian(lag[early]) > 0.5, 'the cycle after a short home dwell is not told from normal'
    settled = cycle >= cycle[late][-1] + 2
    assert np.allclose(lag[settled], normal[settled], equal_nan=True), 'the lag stays after a normal dwell'


def test_one_bad_encoder_at_home_does_not_hide_the_visit():
    normal_cycle = reference()
    times, paths, _, poses = run(2, 120.0, 30.0)
    arrived = np.flatnonzero(~away_from_home(poses) & (times > 150.0))[0]
    left = arrived + np.flatnonzero(away_from_home(poses[arrived:]))[0]
    offset = (times[arrived] - 100.5, times[left] - 99.5)  # the whole stay at home
    _, bad_paths, _, _ = run(2, 120.0, 30.0, offset=offset)
    normal, bad = lags(normal_cycle, times, paths), lags(normal_cycle, times, bad_paths)
    after = times > times[left] + 2.0  # windows whose path holds no offset reading
    assert np.allclose(bad[after], normal[after], atol=0.07, equal_nan=True), (
        'a visit home with one encoder off was missed'
    )


def test_the_clocks_start_when_the_arm_is_first_home_and_restart_after_a_time_jump_or_lost_joints():
    normal_cycle = reference()
    times, paths, _, poses = run(2, 60.0, 30.0)
    mid_cycle = np.flatnonzero(away_from_home(poses))[0] + 10
    lag = CycleLag(normal_cycle)
    assert math.isnan(lag.push(times[mid_cycle], paths[mid_cycle])), 'the clock ran before the arm was seen home'
    values = lags(normal_cycle, times, paths)
    assert values[0] == 0.0 and np.isfinite(values[mid_cycle:]).mean() > 0.9
    lag.push(times[0], paths[0])
    assert math.isnan(lag.push(times[0] + 5.0, paths[mid_cycle])), 'a 5 s gap kept the clock running'
    lag.push(times[0], paths[0])
    lag.push(times[1], np.full_like(paths[0], np.nan))
    assert math.isnan(lag.push(times[mid_cycle], paths[mid_cycle])), 'lost joints kept the clock running'


def test_an_arm_that_never_returns_to_a_rest_pose_has_no_cycle():
    times = 100.0 + np.arange(3000) / 15.0
    wandering = np.stack([np.sin(times), np.cos(0.7 * times), np.sin(0.3 * times)] * 3, axis=1)
    assert fit_cycle(times, wandering, JOINTS) is None


def test_the_reference_survives_its_json_form():
    normal_cycle = reference(seconds=120.0)
    again = CycleReference.from_dict(normal_cycle.to_dict())
    assert np.abs(again.paths - normal_cycle.paths).max() <= 5e-4
    assert np.abs(again.departure_s - normal_cycle.departure_s).max() <= 5e-4


def quiet_evidence(paths, seed):
    """Evidence of windows whose sensors look normal (noise in every channel), on these paths."""
    rng = np.random.default_rng(seed)
    n = len(paths)
    evidence = {channel: rng.gamma(4.0, 1.0, n) for channel in CHANNELS if channel not in DERIVED}
    evidence.update(frame_gap=np.full(n, 1 / 30), joint_gap=np.zeros(n), joint_jerk=rng.gamma(4.0, 1e-4, n))
    evidence.update({key: rng.gamma(4.0, 1.0, n) for key in BLAME_ONLY}, camera_locality=rng.uniform(0.0, 0.5, n))
    return {**evidence, 'attention': rng.normal(0.5, 0.01, (n, 4)), 'joint_path': paths}


def test_the_scorer_flags_an_arm_late_on_its_cycle_as_physical_and_a_normal_one_not_at_all():
    held_out_times, held_out_paths, _, _ = run(3, 300.0, 30.0)
    calibration = calibrate(quiet_evidence(held_out_paths, 0), held_out_times, 1.0, 30 * 3600.0, cycle=reference())
    assert calibration.cycle is not None and calibration.scale['cycle_lag'] >= 1.5 / 30
    times, paths, _, poses = run(2, 120.0, 30.0, slow=STOP)
    late = score_sequence(calibration, 1.0, times, quiet_evidence(paths, 1))
    normal_times, normal_paths, _, _ = run(2, 120.0, 30.0)
    normal = score_sequence(calibration, 1.0, normal_times, quiet_evidence(normal_paths, 1))
    assert not normal['is_anomaly'].any()
    restarted = (times >= 152.2) & (times < 153.2) & away_from_home(poses)
    assert late['is_anomaly'][restarted].mean() > 0.5
    flagged = late['blame'][late['is_anomaly']]
    # The flag outlasts the evidence by its persistence; those windows name no world change.
    assert (flagged == 'physical').mean() > 0.9, dict(zip(*np.unique(flagged, return_counts=True), strict=True))


def test_a_cycle_that_judges_held_out_normal_running_is_kept():
    times, paths, _, _ = run(2, 300.0, 15.0)
    assert cycle_trouble(reference(), times, paths) is None


def test_held_out_running_that_starts_its_cycles_sooner_turns_the_cycle_off():
    """Cycles started sooner than any training cycle (an operator who presses start earlier) leave home early."""
    times, paths, _, _ = run(2, 300.0, 15.0, dwell_s=0.4)
    trouble = cycle_trouble(reference(), times, paths)
    assert trouble and 'off the learnt cycle by up to' in trouble, trouble


def test_held_out_running_at_another_pace_turns_the_cycle_off():
    """At 40 % speed a window covers a shorter path than any training window: the cycle cannot judge it."""
    times, paths, _, _ = run(2, 300.0, 15.0, slow=(60.0, 290.0, 0.4))
    assert cycle_trouble(reference(), times, paths)


def test_held_out_running_on_paths_training_never_took_turns_the_cycle_off():
    times, paths, _, _ = run(2, 300.0, 15.0, offset=(20.0, 290.0))
    trouble = cycle_trouble(reference(), times, paths)
    assert trouble and 'on paths the training windows never took' in trouble, trouble


def test_a_speed_override_that_normal_running_never_showed_is_judged_and_quiet():
    held_out_times, held_out_paths, _, _ = run(3, 300.0, 30.0)
    calibration = calibrate(quiet_evidence(held_out_paths, 0), held_out_times, 1.0, 30 * 3600.0, cycle=reference())
    times, paths, _, poses = run(2, 300.0, 30.0, override=(100.0, 250.0, 0.6))
    lowered = (times >= 205.0) & (times < 345.0) & away_from_home(poses)
    judged = np.isfinite(lags(reference(), times, paths)[lowered])
    assert judged.sum() > 200, 'the lowered override went unjudged: its quiet would prove nothing'  # 12 % of 3000
    assert not score_sequence(calibration, 1.0, times, quiet_evidence(paths, 1))['is_anomaly'].any()
