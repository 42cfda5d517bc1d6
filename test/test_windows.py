"""The window builder: resampling, joint order, rejects, gaps and time jumps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcf_ros.data.windows import RejectedInputError, WindowBuilder, WindowSpec

NAMES = ('a', 'b', 'c')
SPEC = WindowSpec(joint_names=NAMES, image_size=16)
FRAME = np.zeros((24, 32, 3), np.uint8)


def feed_sine(builder, start_s, end_s, rate_hz=500.0, names=NAMES):
    for t in np.arange(start_s, end_s, 1.0 / rate_hz):
        position = [np.sin(2 * np.pi * 0.7 * t + k) for k in range(len(names))]
        builder.add_joint_state(t, names, position, np.cos(position), np.full(len(names), 2.0))


def test_joints_are_resampled_onto_the_grid_exactly_for_a_smooth_signal():
    builder = WindowBuilder(SPEC)
    feed_sine(builder, 0.002, 2.0)
    window = builder.add_frame(1.9, FRAME)
    grid = 1.9 - SPEC.length_s + np.arange(1, SPEC.grid_points + 1) / SPEC.grid_hz
    expected = np.stack([np.sin(2 * np.pi * 0.7 * grid + k) for k in range(3)], axis=1)
    assert window.joints.shape == (SPEC.grid_points, 9)
    assert np.abs(window.joints[:, :3] - expected).max() < 1e-4
    assert np.allclose(window.joints[:, 6:], 2.0)
    assert window.joint_coverage == 1.0


def test_joints_stamped_after_the_frame_do_not_change_its_window():
    in_order, frame_late = WindowBuilder(SPEC), WindowBuilder(SPEC)
    feed_sine(in_order, 0.002, 1.501)  # up to and including the sample at the frame's instant
    expected = in_order.add_frame(1.5, FRAME)
    feed_sine(frame_late, 0.002, 1.6)
    late = frame_late.add_frame(1.5, FRAME)
    assert np.array_equal(expected.joints, late.joints)
    assert (expected.joint_rate_ratio, expected.joint_jerk) == (late.joint_rate_ratio, late.joint_jerk)


def test_a_window_without_a_frame_has_joints_and_no_camera_evidence():
    builder = WindowBuilder(SPEC)
    feed_sine(builder, 0.002, 1.5)
    window = builder.close_without_frame(1.5)
    assert window.image is None and np.isnan(window.frame_gap_s)
    assert window.joints.shape == (SPEC.grid_points, 9) and not window.warming_up


def test_a_window_whose_joints_are_lost_carries_no_joint_evidence():
    builder = WindowBuilder(SPEC)
    lost = builder.add_frame(0.5, FRAME).without_joints()
    assert lost.joints is None and not lost.warming_up
    assert all(np.isnan(v) for v in (lost.joint_coverage, lost.joint_rate_ratio, lost.joint_jerk, lost.joint_repeats))


def test_joint_names_in_another_order_are_mapped_to_the_spec_order():
    ordered, shuffled = WindowBuilder(SPEC), WindowBuilder(SPEC)
    for step, t in enumerate(np.arange(0.002, 1.5, 0.002)):
        values = np.array([1.0, 2.0, 3.0]) * t
        ordered.add_joint_state(t, NAMES, values, values, values)
        order = [[2, 0, 1], [0, 1, 2], [1, 2, 0, 3]][step % 3]  # the names change from message to message
        names, shuffled_values = np.array([*NAMES, 'extra'])[order], np.append(values, -1.0)[order]
        shuffled.add_joint_state(t, list(names), shuffled_values, shuffled_values, shuffled_values)
    assert np.array_equal(ordered.add_frame(1.4, FRAME).joints, shuffled.add_frame(1.4, FRAME).joints)


@pytest.mark.parametrize('length_s', [1.0, 10.0])
def test_windows_of_a_long_irregular_stream_resample_every_sample_before_them(length_s):
    """Over 30 s the joint buffer drops old samples, and grows for a long window, without changing a window."""
    spec = WindowSpec(joint_names=NAMES, image_size=16, length_s=length_s)
    builder, rng = WindowBuilder(spec), np.random.default_rng(7)
    stamps = np.cumsum(rng.uniform(0.001, 0.003, 15000))
    samples = rng.normal(size=(len(stamps), 9))
    frame_s, checked = 0.0, 0
    for index, (stamp, sample) in enumerate(zip(stamps, samples, strict=True)):
        if stamp > frame_s + 1 / 30:
            frame_s = stamp - 1e-4
            window = builder.add_frame(frame_s, FRAME)
            if not window.warming_up:
                grid = frame_s - length_s + np.arange(1, spec.grid_points + 1) / spec.grid_hz
                past, values = stamps[:index], samples[:index]
                expected = np.stack([np.interp(grid, past, values[:, k]) for k in range(9)], axis=1)
                np.testing.assert_allclose(window.joints, expected, rtol=1e-6, atol=1e-6)
                checked += 1
        builder.add_joint_state(stamp, NAMES, sample[:3], sample[3:6], sample[6:])
    assert checked > 500


@pytest.mark.parametrize(
    ('names', 'values', 'reason'),
    [
        (('a', 'a', 'b', 'c'), [[0, 0, 0, 0]] * 3, 'joint_names'),
        (NAMES, [[0, 0, 0], [0, 0], [0, 0, 0]], 'joint_velocity_length'),
        (NAMES, [[0, 0], [0, 0, 0], [0, 0, 0]], 'joint_position_length'),
        (NAMES, [[0, np.nan, 0], [0, 0, 0], [0, 0, 0]], 'joint_position_not_finite'),
        (NAMES, [[0, 0, 0], [0, 0, 0], [0, np.inf, 0]], 'joint_effort_not_finite'),
    ],
)
def test_unusable_joint_states_are_rejected_naming_the_channel(names, values, reason):
    with pytest.raises(RejectedInputError) as rejected:
        WindowBuilder(SPEC).add_joint_state(1.0, names, *values)
    assert rejected.value.reason == reason


def feed_split(builder, start_s, end_s, groups, rate_hz=500.0, extra=None):
    """Feed the sine of feed_sine with the joints split across messages: one message per group of names."""
    for t in np.arange(start_s, end_s, 1.0 / rate_hz):
        position = {name: np.sin(2 * np.pi * 0.7 * t + k) for k, name in enumerate(NAMES)}
        for names in groups:
            values = [position[name] for name in names]
            builder.add_joint_state(t, names, values, np.cos(values), np.full(len(names), 2.0))
        if extra is not None:
            extra(builder, t)


def test_joints_split_across_messages_give_the_same_window_as_one_message():
    whole, split = WindowBuilder(SPEC), WindowBuilder(SPEC)
    feed_sine(whole, 0.002, 1.6)
    feed_split(split, 0.002, 1.6, [('c', 'a'), ('b',)])
    expected, window = whole.add_frame(1.5, FRAME), split.add_frame(1.5, FRAME)
    np.testing.assert_array_equal(window.joints, expected.joints)
    assert (window.joint_coverage, window.joint_rate_ratio) == (expected.joint_coverage, expected.joint_rate_ratio)


def test_other_joints_on_the_topic_are_returned_as_ignored_and_change_nothing():
    plain, mixed = WindowBuilder(SPEC), WindowBuilder(SPEC)
    feed_sine(plain, 0.002, 1.6)
    ignored = []

    def gripper(builder, t):
        if round(t * 500) % 25 == 0:  # 20 Hz, position only
            ignored.append(builder.add_joint_state(t + 1e-4, ('finger_l', 'finger_r'), [0.01, 0.01], [], []))

    feed_split(mixed, 0.002, 1.6, [NAMES], extra=gripper)
    assert ignored and all(names == ('finger_l', 'finger_r') for names in ignored)
    np.testing.assert_array_equal(mixed.add_frame(1.5, FRAME).joints, plain.add_frame(1.5, FRAME).joints)


def test_a_message_with_model_and_other_joints_returns_the_others():
    builder = WindowBuilder(SPEC)
    assert builder.add_joint_state(1.0, ('x', 'a', 'b', 'c'), [0] * 4, [0] * 4, [0] * 4) == ('x',)


def test_a_channel_the_model_does_not_use_may_be_nan_or_empty():
    spec = WindowSpec(joint_names=NAMES, image_size=16, interfaces=(('position', 'velocity'),) * 3)
    assert spec.joint_features == 6
    builder = WindowBuilder(spec)
    for t in np.arange(0.002, 1.6, 0.002):
        position = [np.sin(t + k) for k in range(3)]
        effort = [] if t < 0.8 else [np.nan] * 3  # a driver without torque sensing: empty, then NaN
        builder.add_joint_state(t, NAMES, position, np.cos(position), effort)
    window = builder.add_frame(1.5, FRAME)
    assert window.joints.shape == (SPEC.grid_points, 6) and np.isfinite(window.joints).all()


def test_a_position_only_joint_takes_one_column():
    spec = WindowSpec(
        joint_names=NAMES, image_size=16, interfaces=(('position', 'velocity', 'effort'),) * 2 + (('position',),)
    )
    assert spec.features == ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1))
    builder = WindowBuilder(spec)
    feed_sine(builder, 0.002, 1.6)
    window = builder.add_frame(1.5, FRAME)
    assert window.joints.shape == (SPEC.grid_points, 7)


def test_a_slow_group_is_covered_by_its_own_rate():
    """A 20 Hz joint next to 500 Hz ones: its gaps are its rate, not missing data."""
    spec = WindowSpec(joint_names=NAMES, image_size=16, joint_rates_hz=(500.0, 500.0, 20.0))
    builder = WindowBuilder(spec)
    for t in np.arange(0.002, 1.6, 0.002):
        builder.add_joint_state(t, ('a', 'b'), [t, t], [1, 1], [0, 0])
        if round(t * 500) % 25 == 0:
            builder.add_joint_state(t, ('c',), [t], [1], [0])
    window = builder.add_frame(1.5, FRAME)
    assert window.joints is not None and window.joint_coverage == 1.0
    assert window.joint_rate_ratio == pytest.approx(1.0, abs=0.03)
    np.testing.assert_allclose(window.joints[:, 2], window.joints[:, 0], atol=1e-9)


def test_a_model_joint_that_never_arrives_leaves_the_joints_missing():
    builder = WindowBuilder(SPEC)
    feed_split(builder, 0.002, 1.6, [('a', 'b')])
    window = builder.add_frame(1.5, FRAME)
    assert window.joints is None and window.joint_coverage == 0.0


def test_a_layout_overlapping_a_live_one_is_rejected_and_replaces_it_once_that_one_is_quiet():
    builder = WindowBuilder(SPEC)
    feed_sine(builder, 0.002, 1.6)
    with pytest.raises(RejectedInputError) as rejected:
        builder.add_joint_state(1.6, ('a', 'b'), [0, 0], [0, 0], [0, 0])
    assert rejected.value.reason == 'joint_layout'
    feed_split(builder, 2.7, 4.2, [('a', 'b'), ('c',)])  # a re-configured driver, a window after the old layout
    assert builder.add_frame(4.1, FRAME).joints is not None


def test_a_joint_gap_longer_than_half_the_window_leaves_the_joints_missing():
    builder = WindowBuilder(SPEC)
    feed_sine(builder, 0.002, 1.0)
    window = builder.add_frame(1.7, FRAME)
    assert window.joints is None
    assert window.joint_coverage < 0.5


def test_a_confirmed_jump_back_in_time_clears_the_buffers():
    builder = WindowBuilder(SPEC)
    feed_sine(builder, 100.0, 102.0)
    builder.add_frame(101.9, FRAME)
    with pytest.raises(RejectedInputError, match='followed once confirmed'):
        builder.add_joint_state(1.0, NAMES, [0.0] * 3, [0.0] * 3, [0.0] * 3)  # the loop's first message
    feed_sine(builder, 1.002, 1.3)
    window = builder.add_frame(1.29, FRAME)
    assert builder.resets == 1
    assert window.joint_coverage < 0.5, 'old data leaked into the new window'


@pytest.mark.parametrize('stray_s', [0.0, -5.0, 50.0, 101.0 + 3600.0])
def test_a_lone_stray_stamp_is_rejected_and_the_stream_goes_on(stray_s):
    builder = WindowBuilder(SPEC)
    feed_sine(builder, 100.0, 101.5)
    with pytest.raises(RejectedInputError) as rejected:
        builder.add_joint_state(stray_s, NAMES, [0.0] * 3, [0.0] * 3, [0.0] * 3)
    assert rejected.value.reason == ('stamp_invalid' if stray_s <= 0 else 'stamp_jump')
    feed_sine(builder, 101.5, 102.0)
    window = builder.add_frame(101.99, FRAME)
    assert builder.resets == 0 and window.joint_coverage == 1.0 and not window.warming_up


def test_lost_joint_messages_and_jumps_show_in_the_stream_health():
    steady, lossy = WindowBuilder(SPEC), WindowBuilder(SPEC)
    for index, t in enumerate(np.arange(0.002, 1.5, 0.002)):
        position = [0.1 * t, 0.0, 0.7 if index == 601 else 0.0]
        steady.add_joint_state(t, NAMES, [0.1 * t, 0.0, 0.0], [0.1] * 3, [0.0] * 3)
        if index % 2:
            lossy.add_joint_state(t, NAMES, position, [0.1] * 3, [0.0] * 3)
    clean, damaged = steady.add_frame(1.49, FRAME), lossy.add_frame(1.49, FRAME)
    assert clean.joint_rate_ratio == pytest.approx(1.0, abs=0.01) and clean.joint_jerk < 1e-9
    assert damaged.joint_rate_ratio == pytest.approx(0.5, abs=0.01)
    assert damaged.joint_jerk == pytest.approx(1.4, abs=1e-6), 'a 0.7 rad spike gives a 1.4 rad second difference'
    assert damaged.joint_coverage == 1.0, 'every other message lost still covers the grid'


def test_a_reading_that_stops_changing_shows_as_repeated_samples():
    """Noisy readings never repeat; a position held, or a velocity reading zero, repeats every sample.

    Effort is left out (these drivers publish it constant), and a run never spans two joints.
    """
    rng = np.random.default_rng(0)
    builders = {case: WindowBuilder(SPEC) for case in ('noisy', 'position_held', 'velocity_zero')}
    stamps = np.arange(0.002, 1.5, 0.002)
    for t in stamps:
        position, velocity = rng.normal(0.0, 2e-4, 3), rng.normal(0.0, 2e-3, 3)
        for case, builder in builders.items():
            held = t >= 1.289
            p = np.where([False, case == 'position_held' and held, False], 0.5, position)
            v = np.where([case == 'velocity_zero' and held, False, False], 0.0, velocity)
            builder.add_joint_state(t, NAMES, p, v, [2.0] * 3)
    repeats = {case: builder.add_frame(1.49, FRAME).joint_repeats for case, builder in builders.items()}
    held_samples = np.sum((stamps >= 1.289) & (stamps <= 1.49))  # the first of them is a change, then repeats
    assert repeats == {'noisy': 0, 'position_held': held_samples - 1, 'velocity_zero': held_samples - 1}


def test_frame_gap_and_image_resize_and_mono_frames():
    builder = WindowBuilder(SPEC)
    builder.add_frame(1.0, FRAME)
    window = builder.add_frame(1.1, np.zeros((24, 32), np.uint8))
    assert window.frame_gap_s == pytest.approx(0.1)
    assert window.image.shape == (16, 16, 3) and window.image.dtype == np.uint8


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)),
        max_size=80,
    )
)
def test_any_stamp_sequence_gives_valid_windows_or_named_rejects(events):
    builder = WindowBuilder(SPEC)
    for is_frame, stamp in events:
        try:
            if is_frame:
                window = builder.add_frame(stamp, FRAME)
                assert 0.0 <= window.joint_coverage <= 1.0
                assert window.joints is None or np.all(np.isfinite(window.joints))
            else:
                builder.add_joint_state(stamp, NAMES, [0.0] * 3, [0.0] * 3, [0.0] * 3)
        except RejectedInputError as rejected:
            assert rejected.reason in ('joint_stamp_repeated', 'stamp_invalid', 'stamp_jump')
