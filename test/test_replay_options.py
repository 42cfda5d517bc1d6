"""Replay options over real DDS: --start-offset, --loop, /clock, and a clean stop on SIGINT."""

import signal
import time

import numpy as np
import pytest
from mcf_process import start_mcf, wait_for_line
from synthetic_bags import START_NS, write_camera_joint_bag

from mcf_ros.data.bags import BagReader, typestore

BAG_S = 2.0


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    return write_camera_joint_bag(tmp_path_factory.mktemp('bag') / 'bag', duration_s=BAG_S, width=64, height=48)


def record_while(replay_args, topics, tmp_path, stop_replay_after_s=None):
    """Record `topics` while `mcf replay` plays /joint_states with `replay_args`; return {topic: [(stamp, bytes)]}."""
    out = tmp_path / 'out'
    recorder = start_mcf('record', str(out), '--topics', *topics, log=tmp_path / 'record.log')
    replay = start_mcf(
        'replay',
        *replay_args,
        '--topics',
        '/joint_states',
        '--wait-for-subscribers',
        '20',
        '--quiet',
        log=tmp_path / 'replay.log',
    )
    try:
        if stop_replay_after_s is not None:
            wait_for_line(tmp_path / 'record.log', f'recording {topics[-1]}')
            time.sleep(stop_replay_after_s)
            replay.send_signal(signal.SIGINT)
        assert replay.wait(timeout=60) == 0, (tmp_path / 'replay.log').read_text()
        time.sleep(0.3)
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(timeout=30) == 0, (tmp_path / 'record.log').read_text()
    finally:
        replay.kill()
        recorder.kill()
    with BagReader(out) as recorded:
        by_topic = {}
        for message in recorded.messages():
            by_topic.setdefault(message.topic, []).append((message.stamp_ns, message.data))
    return by_topic


def header_stamps_ns(messages, msgtype='sensor_msgs/msg/JointState'):
    store = typestore()
    stamps = []
    for _, data in messages:
        stamp = store.deserialize_cdr(data, msgtype).header.stamp
        stamps.append(stamp.sec * 10**9 + stamp.nanosec)
    return np.array(stamps)


def test_start_offset_skips_the_first_seconds(bag, tmp_path):
    recorded = record_while([str(bag), '--start-offset', '1.5'], ['/joint_states'], tmp_path)
    stamps = header_stamps_ns(recorded['/joint_states'])
    assert stamps.min() >= START_NS + 1.5e9, 'a message from before the offset was replayed'
    assert len(stamps) == 250, f'expected the last 0.5 s (250 joint states), got {len(stamps)}'


def test_loop_starts_over_until_interrupted_and_exits_cleanly(bag, tmp_path):
    recorded = record_while([str(bag), '--loop', '--rate', '4'], ['/joint_states'], tmp_path, stop_replay_after_s=1.6)
    stamps = header_stamps_ns(recorded['/joint_states'])
    restarts = int(np.sum(np.diff(stamps) < 0))
    assert restarts >= 2, f'expected at least 2 restarts in 1.6 s at 4x of a 2 s bag, saw {restarts}'


def test_clock_follows_bag_time_at_the_requested_rate(bag, tmp_path):
    recorded = record_while([str(bag), '--clock-hz', '50'], ['/joint_states', '/clock'], tmp_path)
    store = typestore()
    clock = [store.deserialize_cdr(data, 'rosgraph_msgs/msg/Clock').clock for _, data in recorded['/clock']]
    clock_ns = np.array([c.sec * 10**9 + c.nanosec for c in clock])
    received_ns = np.array([stamp for stamp, _ in recorded['/clock']])
    assert np.all(np.diff(clock_ns) > 0), '/clock went backwards without a loop'
    assert clock_ns.min() >= START_NS and clock_ns.max() <= START_NS + BAG_S * 1e9
    assert 0.8 * 50 * BAG_S <= len(clock_ns) <= 1.1 * 50 * BAG_S, (
        f'{len(clock_ns)} clock messages in {BAG_S} s at 50 Hz'
    )
    drift_ms = np.abs((clock_ns - clock_ns[0]) - (received_ns - received_ns[0])) / 1e6
    assert drift_ms.max() < 20, f'/clock drifts from wall time at --rate 1 by {drift_ms.max():.1f} ms'
