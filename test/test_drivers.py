"""Recordings as real drivers make them (`mcf sim --driver`): each trains, evaluates and inspects.

The habits that lose nothing (a gripper beside the arm, joints split or reordered, bgr8) must give
exactly the clean recording's windows; the others train a model on what the driver has.
"""

import pytest
from mcf_process import run_mcf

from mcf_ros.data.dataset import bag_windows, infer_spec, same_window
from mcf_ros.data.inspection import inspect_bag
from mcf_ros.model.artifact import load_artifact
from mcf_ros.model.bag_eval import evaluate_bag
from mcf_ros.model.training import TrainConfig
from mcf_ros.model.workflow import train_from_bags

CAMERA, JOINTS = '/camera/image_raw', '/joint_states'
ALL = ('position', 'velocity', 'effort')


def spec_of(bag):
    inspection = inspect_bag(bag)
    camera = CAMERA if CAMERA in inspection.topics else f'{CAMERA}/compressed'
    return infer_spec([inspection], camera, JOINTS, image_size=32), camera


@pytest.mark.parametrize('habit', ['gripper', 'split_joints', 'reordered', 'bgr8'])
def test_a_habit_that_loses_nothing_gives_the_clean_recordings_windows(driver_cell, habit):
    clean, _ = driver_cell('')
    rewritten, _ = driver_cell(habit)
    spec, _ = spec_of(clean)
    rewritten_spec, _ = spec_of(rewritten)
    assert set(rewritten_spec.joint_names) == set(spec.joint_names), 'the gripper joints are not in the model'
    assert rewritten_spec.interfaces == spec.interfaces and rewritten_spec.joint_rates_hz == spec.joint_rates_hz
    expected = list(bag_windows(clean, spec, CAMERA, JOINTS))
    windows = list(bag_windows(rewritten, spec, CAMERA, JOINTS))
    assert len(windows) == len(expected) > 800
    assert all(same_window(a, b) for a, b in zip(windows, expected, strict=True))


@pytest.mark.parametrize(
    ('habit', 'interfaces', 'transport'),
    [
        ('nan_effort', ('position', 'velocity'), 'raw'),
        ('position_only', ('position',), 'raw'),
        ('jpeg', ALL, 'compressed'),
        ('png', ALL, 'compressed'),
        ('mono8', ALL, 'raw'),
    ],
)
def test_a_habit_that_changes_the_data_trains_and_evaluates_on_what_the_driver_has(
    driver_cell, tmp_path, habit, interfaces, transport
):
    normal, faults = driver_cell(habit)
    model = tmp_path / 'model.mcf'
    logged = []
    train_from_bags(
        [str(normal)], str(model), CAMERA, JOINTS, TrainConfig(epochs=2), 'cpu', image_size=32, log=logged.append
    )
    header = load_artifact(model).header
    assert header['window']['interfaces'] == [list(interfaces)] * 6
    assert header['modalities']['camera']['transport'] == transport
    assert header['model']['joint_features'] == 6 * len(interfaces)
    summary = '\n'.join(logged)
    assert 'joints on /joint_states: 6 used' in summary, summary
    for channel in set(ALL) - set(interfaces):
        assert f'{channel} not used:' in summary, summary
    _, metrics, windows, _ = evaluate_bag(str(model), str(faults), 'cpu')
    assert metrics['input']['rejected'] == {}, metrics['input']
    warm_up = metrics['input']['frames'] - len(windows)
    assert 29 <= warm_up <= 31, f'every frame after the 1 s warm-up is a window; {warm_up} were not'
    assert metrics['auroc'] is not None and set(metrics['per_kind']) == {'camera_black', 'joint_offset'}


@pytest.fixture(scope='module')
def clean_model(driver_cell, tmp_path_factory):
    clean, _ = driver_cell('')
    model = tmp_path_factory.mktemp('clean') / 'model.mcf'
    train_from_bags([str(clean)], str(model), CAMERA, JOINTS, TrainConfig(epochs=1), 'cpu', image_size=32, log=print)
    return model


def test_a_model_refuses_a_recording_without_an_interface_it_uses(driver_cell, clean_model, tmp_path):
    """A model trained with effort, on a driver that publishes NaN effort: one line naming the cause."""
    _, faults = driver_cell('nan_effort')
    result = run_mcf('eval', '--model', str(clean_model), '--bag', str(faults), '--report', str(tmp_path / 'r'))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'uses the effort of shoulder_pan_joint' in result.stderr
    assert 'NaN or inf in every one of' in result.stderr, result.stderr


def test_eval_says_which_joints_it_ignored_and_in_how_many_messages(driver_cell, clean_model, tmp_path):
    _, faults = driver_cell('gripper')
    result = run_mcf('eval', '--model', str(clean_model), '--bag', str(faults), '--report', str(tmp_path / 'r'))
    assert result.returncode == 0, result.stderr
    expected = 'ignored joints not in the model (gripper_left_finger_joint, gripper_right_finger_joint) in 600 messages'
    assert expected in result.stdout, result.stdout
