"""The sensor-corruption library: every catalogue entry is implemented, seeded, and does what it says."""

import numpy as np
import pytest

from mcf_ros.faults.camera import CAMERA_CORRUPTIONS, DELAY_FRAMES
from mcf_ros.faults.catalogue import CATALOGUE
from mcf_ros.faults.kinematics import JOINT_CORRUPTIONS

JOINTS = 6


def frames(count=20, size=32):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


def samples(count=50):
    t = np.arange(count) * 0.002
    position = np.sin(t[:, None] + np.arange(JOINTS))
    return [(t[k], position[k], np.cos(position[k]), np.full(JOINTS, 10.0)) for k in range(count)]


def test_every_sensor_fault_in_the_catalogue_has_a_corruption_and_vice_versa():
    sensor = {name for name, spec in CATALOGUE.items() if spec.modality in ('camera', 'kinematics')}
    assert sensor == set(CAMERA_CORRUPTIONS) | set(JOINT_CORRUPTIONS)
    assert all(CATALOGUE[name].modality == 'camera' for name in CAMERA_CORRUPTIONS)
    assert all(CATALOGUE[name].modality == 'kinematics' for name in JOINT_CORRUPTIONS)


@pytest.mark.parametrize('name', sorted(CAMERA_CORRUPTIONS))
def test_camera_corruption_changes_frames_and_is_seeded(name):
    outputs = []
    for _ in range(2):
        corrupt = CAMERA_CORRUPTIONS[name](np.random.default_rng(3), 1.0)
        outputs.append([corrupt(frame) for frame in frames()])
    for a, b in zip(*outputs, strict=True):
        assert (a is None and b is None) or np.array_equal(a, b), f'{name} is not deterministic for one seed'
    changed = [out is None or not np.array_equal(out, frame) for out, frame in zip(outputs[0], frames(), strict=True)]
    assert sum(changed) >= len(changed) // 2, f'{name} left most frames untouched'
    kept = [out for out in outputs[0] if out is not None]
    assert all(out.shape == (32, 32, 3) and out.dtype == np.uint8 for out in kept)


def test_frozen_camera_repeats_the_first_frame():
    corrupt = CAMERA_CORRUPTIONS['camera_frozen'](np.random.default_rng(0), 1.0)
    inputs = frames()
    assert all(np.array_equal(corrupt(frame), inputs[0]) for frame in inputs)


def test_delayed_camera_shows_the_frame_from_delay_frames_ago():
    corrupt = CAMERA_CORRUPTIONS['camera_delay'](np.random.default_rng(0), 1.0)
    inputs = frames(count=DELAY_FRAMES + 5)
    outputs = [corrupt(frame) for frame in inputs]
    assert np.array_equal(outputs[-1], inputs[-1 - DELAY_FRAMES])


def test_black_camera_at_full_strength_is_black():
    corrupt = CAMERA_CORRUPTIONS['camera_black'](np.random.default_rng(0), 1.0)
    assert corrupt(frames()[0]).max() == 0


@pytest.mark.parametrize('name', sorted(JOINT_CORRUPTIONS))
def test_joint_corruption_changes_samples_and_is_seeded(name):
    outputs = []
    for _ in range(2):
        corrupt = JOINT_CORRUPTIONS[name](np.random.default_rng(5), 1.0, JOINTS)
        outputs.append([corrupt(*sample) for sample in samples()])
    for a, b in zip(*outputs, strict=True):
        assert (a is None and b is None) or all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    changed = [
        out is None or any(not np.array_equal(x, y) for x, y in zip(out, sample[1:], strict=True))
        for out, sample in zip(outputs[0], samples(), strict=True)
    ]
    assert any(changed), f'{name} never changed a sample'


def test_frozen_encoder_holds_one_joint_and_zeroes_its_velocity():
    corrupt = JOINT_CORRUPTIONS['joint_frozen'](np.random.default_rng(1), 1.0, JOINTS)
    outputs = np.array([corrupt(*sample)[:2] for sample in samples()])
    joint = int(np.flatnonzero(np.ptp(outputs[:, 0], axis=0) == 0)[0])
    assert np.all(outputs[:, 1, joint] == 0.0)
    assert np.all(np.ptp(np.delete(outputs[:, 0], joint, axis=1), axis=0) > 0), 'other joints must keep moving'


def test_frozen_encoder_picks_only_from_the_joints_it_is_given():
    for seed in range(20):
        corrupt = JOINT_CORRUPTIONS['joint_frozen'](np.random.default_rng(seed), 1.0, JOINTS, joints=[1, 3])
        outputs = np.array([corrupt(*sample)[0] for sample in samples()])
        assert set(np.flatnonzero(np.ptp(outputs, axis=0) == 0)) <= {1, 3}


def test_drift_grows_linearly_at_0_1_rad_per_s():
    corrupt = JOINT_CORRUPTIONS['joint_drift'](np.random.default_rng(2), 1.0, JOINTS)
    drift = np.array([corrupt(*sample)[0] - sample[1] for sample in samples()])
    elapsed = np.array([sample[0] for sample in samples()])
    assert np.allclose(np.abs(drift).max(axis=1), 0.1 * elapsed)


def test_gap_loses_every_message():
    corrupt = JOINT_CORRUPTIONS['joint_gap'](np.random.default_rng(0), 1.0, JOINTS)
    assert all(corrupt(*sample) is None for sample in samples())
