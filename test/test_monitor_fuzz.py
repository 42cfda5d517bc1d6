"""Malformed input into a running monitor over DDS: each kind is counted by reason, logged once, and
valid input in between goes on being scored."""

import time

import numpy as np
from live_cell import LiveCell, start_monitor, stop_process
from mcf_process import wait_for_line
from sensor_msgs.msg import Image, JointState
from synthetic_bags import UR_JOINTS


def joint_state(cell, names=UR_JOINTS, position=None, stamp_s=None, lengths=(6, 6, 6)):
    message = JointState(name=list(names))
    message.position = list(position if position is not None else [0.1] * lengths[0])
    message.velocity, message.effort = [0.0] * lengths[1], [0.0] * lengths[2]
    message.header.stamp = cell.node.get_clock().now().to_msg()
    if stamp_s is not None:
        message.header.stamp.sec, message.header.stamp.nanosec = int(stamp_s), int(stamp_s % 1 * 1e9)
    return message


def image(cell, height=128, width=128, encoding='rgb8', step=None, data_bytes=None):
    message = Image(height=height, width=width, encoding=encoding, step=width * 3 if step is None else step)
    message.header.stamp = cell.node.get_clock().now().to_msg()
    message.data = bytes(message.step * height if data_bytes is None else data_bytes)
    return message


def now_s(cell):
    return cell.node.get_clock().now().nanoseconds / 1e9


# kind: (reason counted on /diagnostics, message factory, topic)
MALFORMED = {
    'image step too small': ('image_step', lambda c: image(c, step=100), 'camera'),
    'image data too short': ('image_data_length', lambda c: image(c, data_bytes=1000), 'camera'),
    'image data too long': ('image_data_length', lambda c: image(c, data_bytes=128 * 384 + 7), 'camera'),
    'image of zero size': ('image_empty', lambda c: image(c, height=0, width=0, data_bytes=0), 'camera'),
    'image of huge size': ('image_too_large', lambda c: image(c, height=50000, width=50000, data_bytes=16), 'camera'),
    'image encoding 16UC1': ('image_encoding', lambda c: image(c, encoding='16UC1'), 'camera'),
    'image of another resolution': ('image_resolution', lambda c: image(c, height=48, width=64), 'camera'),
    'joint lengths disagree': ('joint_velocity_length', lambda c: joint_state(c, lengths=(6, 5, 6)), 'kinematics'),
    'joint NaN': ('joint_position_not_finite', lambda c: joint_state(c, position=[np.nan] + [0.1] * 5), 'kinematics'),
    'joint inf': ('joint_position_not_finite', lambda c: joint_state(c, position=[np.inf] + [0.1] * 5), 'kinematics'),
    'a name twice': ('joint_names', lambda c: joint_state(c, names=[*UR_JOINTS[:5], UR_JOINTS[0]]), 'kinematics'),
    'joints overlapping the live layout': (
        'joint_layout', lambda c: joint_state(c, UR_JOINTS[:5], lengths=(5,) * 3), 'kinematics'
    ),
    'zero stamp': ('stamp_invalid', lambda c: joint_state(c, stamp_s=0.0), 'kinematics'),
    'stamp far in the future': ('stamp_jump', lambda c: joint_state(c, stamp_s=now_s(c) + 3600), 'kinematics'),
    'stamp far in the past': ('stamp_jump', lambda c: joint_state(c, stamp_s=now_s(c) - 3600), 'kinematics'),
    'stamp going backwards (a loop)': ('stamp_jump', lambda c: joint_state(c, stamp_s=now_s(c) - 30), 'kinematics'),
}  # fmt: skip
COPIES = 5


def test_every_kind_of_malformed_input_is_counted_logged_once_and_scoring_goes_on(tmp_path):
    log = tmp_path / 'monitor.log'
    monitor = start_monitor(log, 'diagnostics_period_s:=0.2')
    try:
        wait_for_line(log, 'active on', timeout=30)
        with LiveCell() as cell:
            cell.wait_for(lambda: len(cell.received.scores) >= 30, 20, 'scoring before the fuzzing')
            publishers = {'camera': cell.frames, 'kinematics': cell.joints}
            scored_between = []
            for kind, (_reason, make, stream) in MALFORMED.items():
                before = len(cell.received.scores)
                for _ in range(COPIES):
                    publishers[stream].publish(make(cell))
                    time.sleep(0.05)
                cell.wait_for(lambda b=before: len(cell.received.scores) > b + 3, 5, f'scoring after {kind}')
                scored_between.append(kind)
            reordered = [UR_JOINTS[i] for i in (5, 3, 1, 0, 2, 4)]
            for _ in range(10):  # reordered names are valid input, not a reject
                cell.joints.publish(joint_state(cell, names=reordered))
            before = len(cell.received.scores)
            for _ in range(COPIES):  # another driver's joints on the topic (a gripper) are ignored and counted
                cell.joints.publish(joint_state(cell, names=[f'j{i}' for i in range(6)]))
                time.sleep(0.05)
            cell.wait_for(lambda b=before: len(cell.received.scores) > b + 3, 5, 'scoring after other joints')
            burst_start = len(cell.received.scores)
            for _ in range(5000):  # ten times the joint rate, for about a second
                cell.joints.publish(joint_state(cell))
            cell.wait_for(lambda: len(cell.received.scores) > burst_start + 30, 10, 'scoring after the burst')
            time.sleep(0.5)
            counts = cell.last_diagnostics()[3]
            assert monitor.poll() is None, 'the node died'
    finally:
        code = stop_process(monitor)
    text = log.read_text()
    assert code == 0 and 'Traceback' not in text, text
    assert len(scored_between) == len(MALFORMED)
    assert counts['internal_errors'] == '0'
    sent = {}
    for reason, _, _ in MALFORMED.values():
        sent[reason] = sent.get(reason, 0) + COPIES
    for reason, number in sent.items():
        assert int(counts.get(f'rejected_{reason}', 0)) >= number, f'{reason}: {counts}'
        logged = [line for line in text.splitlines() if 'rejected input' in line and f': {reason}:' in line]
        assert len(logged) == 1, f'{reason} logged {len(logged)} times (must be once per 10 s)'
    assert int(counts['rejected_joint_names']) == COPIES, 'reordered joint names must be accepted'
    assert int(counts['joint_states_ignored']) == COPIES, 'joint states of other joints are ignored, not rejected'
    assert counts['ignored_joints'] == ', '.join(f'j{i}' for i in range(6))
    print(f'\nrejects by reason: { {k: v for k, v in counts.items() if k.startswith("rejected_")} }')
