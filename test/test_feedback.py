"""Operator feedback without ROS: the scales a marked stretch needs, only those, within the cap; a new artifact."""

import numpy as np
import pytest

from mcf_ros.errors import UserError
from mcf_ros.model.artifact import load_artifact, save_artifact
from mcf_ros.model.feedback import FEEDBACK_CAP, HEADROOM, SCORED, _anomaly, apply_feedback, excess, scale_factors
from mcf_ros.model.scoring import Calibration

CAMERA = SCORED.index('camera_error')
KINEMATICS = SCORED.index('kinematics_error')


@pytest.fixture(scope='module')
def shipped():
    return load_artifact('models/ur5e_cell.mcf')


def calibration_of(artifact) -> Calibration:
    return Calibration(**artifact.header['calibration'])


def stretch(calibration: Calibration, camera_z: float, windows: int = 30, kinematics_z: float = 1.0) -> np.ndarray:
    """Excesses of windows whose camera channel peaks at camera_z (z units), the rest of normal size."""
    rng = np.random.default_rng(0)
    z = {channel: rng.uniform(-1.0, 1.0) for channel in SCORED}
    rows = []
    for i in range(windows):
        row = dict(z, camera_error=camera_z * (0.5 + 0.5 * i / (windows - 1)), kinematics_error=kinematics_z)
        rows.append(excess(row, calibration))
    return np.array(rows)


def scores(excesses: np.ndarray, calibration: Calibration) -> np.ndarray:
    scales = np.array([calibration.scale[channel] for channel in SCORED])
    return _anomaly(excesses / scales)


def test_only_the_channel_that_was_high_is_raised_and_only_as_far_as_needed(shipped):
    calibration = calibration_of(shipped)
    marked = stretch(calibration, camera_z=1.5 * calibration.threshold)
    factors = scale_factors(marked, calibration)
    assert factors['camera_error'] > 1.0
    assert all(factor == 1.0 for channel, factor in factors.items() if channel != 'camera_error')
    raised = {**calibration.scale, 'camera_error': calibration.scale['camera_error'] * factors['camera_error']}
    after = scores(marked, Calibration(**{**calibration.to_dict(), 'scale': raised}))
    target = calibration.threshold - HEADROOM
    assert after.max() <= target and after.max() == pytest.approx(target, abs=0.01)  # no further than needed


def test_a_stretch_already_below_the_target_changes_nothing(shipped):
    calibration = calibration_of(shipped)
    assert set(scale_factors(stretch(calibration, camera_z=5.0), calibration).values()) == {1.0}


def test_feedback_writes_a_new_artifact_that_names_its_source_and_keeps_the_threshold(shipped, tmp_path):
    calibration = calibration_of(shipped)
    marked = stretch(calibration, camera_z=1.5 * calibration.threshold)
    what = {'start_s': 10.0, 'end_s': 14.0, 'windows': len(marked)}
    header, factors = apply_feedback(shipped.header, shipped.model_id, marked, what, calibration.threshold)
    saved = save_artifact(tmp_path / 'fed.mcf', header, shipped.state_dict)
    loaded = load_artifact(tmp_path / 'fed.mcf')
    assert loaded.model_id == saved.model_id != shipped.model_id
    assert loaded.header['weights_sha256'] == shipped.header['weights_sha256']
    record = loaded.header['recalibration']
    assert record['source_model_id'] == shipped.model_id and record['operator_feedback']['start_s'] == 10.0
    assert loaded.header['calibration']['threshold'] == calibration.threshold
    assert loaded.header['calibration']['scale']['camera_error'] == pytest.approx(
        calibration.scale['camera_error'] * factors['camera_error']
    )
    assert loaded.header['calibration']['scale']['kinematics_error'] == calibration.scale['kinematics_error']
    # A kinematics fault is as visible as before; a camera one as strong as the marked stretch is not.
    fault = stretch(calibration, camera_z=0.0, kinematics_z=2 * calibration.threshold)
    assert scores(fault, calibration_of(loaded)).max() == pytest.approx(scores(fault, calibration).max())
    assert scores(marked, calibration_of(loaded)).max() < calibration.threshold


def test_marks_add_up_and_the_cap_since_the_last_fit_holds(shipped):
    calibration = calibration_of(shipped)
    header, model_id, refused = shipped.header, shipped.model_id, None
    for mark in range(10):
        current = Calibration(**header['calibration'])
        marked = stretch(current, camera_z=1.15 * calibration.threshold)
        try:
            header, _ = apply_feedback(header, model_id, marked, {'mark': mark}, calibration.threshold)
        except UserError as err:
            refused = str(err)
            break
        model_id = save_artifact('/dev/null', header, {}).model_id
    assert refused is not None and 'camera_error' in refused and 'mcf calibrate' in refused
    total = header['recalibration']['operator_feedback']['total_factors']['camera_error']
    assert 1.0 < total <= FEEDBACK_CAP
    assert header['calibration']['scale']['camera_error'] == pytest.approx(calibration.scale['camera_error'] * total)
    assert header['recalibration']['previous']['operator_feedback']['mark'] == mark - 2


def test_one_stretch_beyond_the_cap_is_refused_whole(shipped):
    calibration = calibration_of(shipped)
    marked = stretch(calibration, camera_z=5 * calibration.threshold)
    with pytest.raises(UserError, match=r'camera_error x5\.48.*beyond the feedback cap of x3'):
        apply_feedback(shipped.header, shipped.model_id, marked, {}, calibration.threshold)
