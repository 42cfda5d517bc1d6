"""`mcf inspect`, the preflight: what a bag holds, whether it trains a model, whether it fits one; never a traceback."""

import shutil

import numpy as np
import pytest
from mcf_process import run_mcf
from synthetic_bags import write_camera_joint_bag

from mcf_ros.data.bags import BagReader, bag_writer
from mcf_ros.data.messages import joint_state_cdr, joint_state_fields
from mcf_ros.model.training import TrainConfig
from mcf_ros.model.workflow import train_from_bags
from mcf_ros.presentation import SCORE_FIELDS, score_values
from mcf_ros.sim.drivers import HABITS


def inspect(*args):
    result = run_mcf('inspect', *map(str, args))
    assert 'Traceback' not in result.stderr, result.stderr
    return result


def verdict(result) -> list[str]:
    lines = result.stdout.splitlines()
    return lines[lines.index(next(line for line in lines if line.startswith('verdict:'))) :]


@pytest.mark.parametrize('habit', ['', *HABITS])
def test_every_driver_habit_is_trainable_and_the_report_says_what_the_driver_does(driver_cell, habit):
    normal, _ = driver_cell(habit)
    result = inspect(normal)
    assert result.returncode == 0, result.stdout + result.stderr
    text = '\n'.join(verdict(result))
    assert 'verdict: trainable' in text and '\n  no ' not in text, text
    if habit == 'parked_axis':  # its encoder noise spans more than the travel rule's 0.001 rad: it is used
        assert 'joints: 7 move' in text and 'parked_axis_joint' in text, text
    else:
        assert 'joints: 6 move' in text, text
    if habit == 'nan_effort':
        assert 'effort absent for 6 joint(s) (NaN or inf in every one of' in text
        assert 'NaN in all' in result.stdout
    if habit == 'position_only':
        assert 'velocity absent for 6 joint(s) (empty in every one of' in text
    if habit == 'gripper':
        assert 'gripper_left_finger_joint, gripper_right_finger_joint; ignored' in text
        assert '20.0 Hz' in result.stdout
    if habit in ('jpeg', 'png'):
        assert f'compressed ({habit} 901)' in result.stdout and '128x96 (901 frames)' in result.stdout


def test_a_bag_with_labelled_faults_is_not_for_training(driver_cell):
    _, faults = driver_cell('')
    result = inspect(faults)
    assert result.returncode == 1
    assert 'no   it has 2 labelled faults: evaluate on it, train on normal running' in result.stdout


@pytest.fixture(scope='module')
def clean_model(driver_cell, tmp_path_factory):
    normal, _ = driver_cell('')
    model = tmp_path_factory.mktemp('inspect') / 'model.mcf'
    train_from_bags([str(normal)], str(model), '/camera/image_raw', '/joint_states', TrainConfig(epochs=1), 'cpu', 32)
    return model


def test_with_a_model_it_says_whether_the_bag_fits(driver_cell, clean_model):
    _, faults = driver_cell('')
    fits = inspect(faults, '--model', clean_model)
    assert fits.returncode == 0 and f'model {clean_model}: fits' in fits.stdout, fits.stdout
    _, nan_faults = driver_cell('nan_effort')
    misfit = inspect(nan_faults, '--model', clean_model)
    assert misfit.returncode == 1 and f'model {clean_model}: does not fit' in misfit.stdout
    assert 'the model uses the effort of shoulder_pan_joint' in misfit.stdout


def copy_with_joint_states(source, out, rewrite):
    with BagReader(source) as bag, bag_writer(out) as writer:
        for message in bag.messages():
            writer.add_topic(message.topic, message.msgtype)
            data = rewrite(message.data) if message.topic == '/joint_states' else message.data
            writer.write(message.topic, message.stamp_ns, data)
    return out


def nan_positions(data):
    stamp, names, _, velocity, effort = joint_state_fields(data)
    return joint_state_cdr(stamp, list(names), np.full(len(names), np.nan), velocity, effort)


def test_train_on_a_recording_whose_every_joint_state_is_unusable_names_the_cause_and_the_count(tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'clean', duration_s=2.0, width=32, height=24)
    broken = copy_with_joint_states(bag, tmp_path / 'nan', nan_positions)
    result = run_mcf('train', '--bag', str(broken), '--out', str(tmp_path / 'm.mcf'))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'have no usable position (NaN or inf in every one of 1,000 messages)' in result.stderr, result.stderr
    verdict_lines = verdict(inspect(broken))
    assert any('no usable position (NaN or inf in every one of 1,000 messages)' in line for line in verdict_lines)


def test_too_short_a_recording_says_how_much_was_read_and_how_much_is_needed(tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'short', duration_s=3.0, width=32, height=24)
    result = run_mcf('train', '--bag', str(bag), '--out', str(tmp_path / 'm.mcf'))
    assert result.returncode == 2
    assert 'too little normal data' in result.stderr and '90 frames and 1,500 joint states read' in result.stderr
    assert any('3 s of usable frames; training needs at least 14 s' in line for line in verdict(inspect(bag)))


def test_a_bag_without_messages_is_not_trainable(tmp_path):
    with bag_writer(tmp_path / 'empty') as writer:
        writer.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
    result = inspect(tmp_path / 'empty')
    assert result.returncode == 1 and 'no   the bag has no messages' in result.stdout


def test_a_bag_without_a_camera_names_the_topics_it_has(tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'bag', duration_s=1.0, width=32, height=24)
    result = inspect(bag, '--camera-topic', '/front/image')
    assert result.returncode == 1
    assert (
        'no sensor_msgs Image or CompressedImage topic /front/image (its camera topics: /camera/image_raw)'
        in result.stdout
    )


@pytest.mark.parametrize(
    ('make', 'expected'),
    [
        (lambda tmp: tmp / 'none', 'bag not found'),
        (lambda tmp: tmp, 'not a rosbag2 directory'),
    ],
)
def test_a_path_that_is_no_bag_is_a_one_line_error(tmp_path, make, expected):
    result = inspect(make(tmp_path))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr


def test_a_corrupt_bag_is_a_one_line_error(tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'bag', duration_s=0.5, width=32, height=24)
    corrupt = tmp_path / 'corrupt'
    shutil.copytree(bag, corrupt)
    mcap = next(corrupt.glob('*.mcap'))
    mcap.write_bytes(mcap.read_bytes()[:5000])
    result = inspect(corrupt)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize('flagged', [False, True])
def test_a_monitors_scores_in_a_clip_are_one_line_not_a_table_of_joints(tmp_path, flagged):
    with bag_writer(tmp_path / 'clip') as writer:
        writer.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
        writer.add_topic('/mcf_monitor/scores', 'sensor_msgs/msg/JointState')
        for i in range(30):
            stamp = 1_000_000_000 + i * 33_333_333
            scored = {'blame': 'none', 'attention': np.full(4, 0.5), 'is_anomaly': float(flagged and i > 20)}
            scored |= {key: 0.1 for key in SCORE_FIELDS if key not in scored}
            names, values = score_values(scored, 'nominal', 5.0, '00000000abcd')
            empty = np.array([])
            writer.write('/mcf_monitor/scores', stamp, joint_state_cdr(stamp, names, np.array(values), empty, empty))
            writer.write('/joint_states', stamp, joint_state_cdr(stamp, ['a', 'b'], np.full(2, i), np.ones(2), empty))
    text = inspect(tmp_path / 'clip').stdout
    raised = 'raised' if flagged else 'never raised'
    assert (
        'monitor scores on /mcf_monitor/scores: 30 messages at 30.0 Hz, 14 score fields and 4 concept values each '
        f'(not joints); the flag was {raised} within it'
    ) in text, text
    assert 'joint states on /joint_states: 2 names' in text
    assert 'concept_0' not in text and 'anomaly_score ' not in text
