"""`mcf replay` plays every message a bag holds, whatever its metadata says, or says in one line why not."""

import sqlite3

import pytest
import yaml
from mcf_process import run_mcf
from synthetic_bags import write_camera_joint_bag

from mcf_ros.errors import UserError
from mcf_ros.ros.runtime import message_class


def test_a_bag_whose_metadata_starts_after_its_first_message_replays_every_message(tmp_path):
    """A split bag's metadata.yaml can name a later start than its first message (ros2/rosbag2 test bags do)."""
    bag = write_camera_joint_bag(tmp_path / 'bag', duration_s=2.0, width=32, height=24)
    metadata_path = bag / 'metadata.yaml'
    metadata = yaml.safe_load(metadata_path.read_text())
    metadata['rosbag2_bagfile_information']['starting_time']['nanoseconds_since_epoch'] += 10**9
    metadata_path.write_text(yaml.safe_dump(metadata))
    result = run_mcf('replay', str(bag), '--quiet', '--clock-hz', '0')
    assert result.returncode == 0, result.stderr
    assert 'replayed 1060 messages (/camera/image_raw 60, /joint_states 1000)' in result.stdout


def test_a_bag_whose_messages_cannot_all_be_read_is_a_one_line_error(tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'bag', 'sqlite3', duration_s=1.0, width=32, height=24)
    with sqlite3.connect(next(bag.glob('*.db3'))) as db:  # rows of a topic the bag does not declare
        db.execute('UPDATE messages SET topic_id = 99 WHERE rowid % 2 = 0')
    result = run_mcf('replay', str(bag), '--quiet', '--clock-hz', '0')
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'replayed 265 of the 530 messages' in result.stderr and 'the rest cannot be read' in result.stderr


@pytest.mark.parametrize('name', ['std_msgs/String', 'std_msgs/msg/String'])
def test_old_and_new_type_names_find_the_message_class(name):
    assert message_class(name).__name__ == 'String'


@pytest.mark.parametrize('name', ['test_msgs/BasicTypes', 'String'])
def test_a_type_that_is_not_installed_is_a_user_error(name):
    with pytest.raises(UserError, match=f'message type {name} is not installed'):
        message_class(name)


def test_a_bag_with_old_style_type_names_replays_and_an_unknown_type_is_a_one_line_error(tmp_path):
    """Bags written before Dashing name types `pkg/Type` (ros2/rosbag2's oldest test bags hold test_msgs/BasicTypes)."""
    bag = write_camera_joint_bag(tmp_path / 'bag', 'sqlite3', duration_s=0.5, width=32, height=24)
    renames = {'sensor_msgs/msg/Image': 'sensor_msgs/Image', 'sensor_msgs/msg/JointState': 'test_msgs/BasicTypes'}
    with sqlite3.connect(next(bag.glob('*.db3'))) as db:
        for new_style, old_style in renames.items():
            db.execute('UPDATE topics SET type = ? WHERE type = ?', (old_style, new_style))
    metadata = (bag / 'metadata.yaml').read_text()
    for new_style, old_style in renames.items():
        metadata = metadata.replace(new_style, old_style)
    (bag / 'metadata.yaml').write_text(metadata)
    result = run_mcf('replay', str(bag), '--quiet', '--clock-hz', '0', '--topics', '/camera/image_raw')
    assert result.returncode == 0, result.stderr
    assert 'replayed 15 messages (/camera/image_raw 15)' in result.stdout
    result = run_mcf('replay', str(bag), '--quiet', '--clock-hz', '0')
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'message type test_msgs/BasicTypes is not installed' in result.stderr
