"""Replay and record over real DDS between separate processes: every message, byte-exact, on time."""

import signal
import time

import numpy as np
import pytest
from mcf_process import run_mcf, start_mcf
from synthetic_bags import write_camera_joint_bag

from mcf_ros.data.bags import BagReader

TOPICS = ['/camera/image_raw', '/joint_states']
BAG_S = 10.0


def read_by_topic(path):
    with BagReader(path) as bag:
        by_topic = {}
        for message in bag.messages():
            by_topic.setdefault(message.topic, []).append((message.stamp_ns, message.data))
    return by_topic


def replay_into_recorder(bag, out, tmp_path, *replay_args, record_s=None):
    """Start `mcf record`, replay `bag` into it, and return (replay result, recorder result)."""
    log = tmp_path / f'{out.name}.log'
    record_args = ['record', str(out), '--topics', *TOPICS]
    if record_s:
        record_args += ['--duration', str(record_s)]
    recorder = start_mcf(*record_args, log=log)
    try:
        replay = run_mcf('replay', str(bag), '--wait-for-subscribers', '20', '--quiet', *replay_args)
        assert replay.returncode == 0, replay.stderr
        if record_s is None:
            time.sleep(0.5)
            recorder.send_signal(signal.SIGINT)
        assert recorder.wait(timeout=30) == 0, log.read_text()
    finally:
        recorder.kill()
    return replay, log.read_text()


def timing_errors_ms(original, recorded):
    """Per-message error between recorded receive times and the original schedule, constant latency removed."""
    sent = np.array([stamp for stamp, _ in original], dtype=np.int64)
    received = np.array([stamp for stamp, _ in recorded], dtype=np.int64)
    offset = received - sent
    return np.abs(offset - np.median(offset)) / 1e6


@pytest.fixture(scope='module')
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp('bags')
    return {
        storage: write_camera_joint_bag(root / storage, storage, duration_s=BAG_S) for storage in ('mcap', 'sqlite3')
    }


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_replay_then_record_keeps_every_message_byte_exact_and_on_time(bags, storage, tmp_path):
    out = tmp_path / 'recorded'
    _, record_log = replay_into_recorder(bags[storage], out, tmp_path)
    original, recorded = read_by_topic(bags[storage]), read_by_topic(out)
    for topic in TOPICS:
        assert len(recorded[topic]) == len(original[topic]), f'{topic}: lost messages\n{record_log}'
        mismatched = sum(a[1] != b[1] for a, b in zip(original[topic], recorded[topic], strict=True))
        assert mismatched == 0, f'{topic}: {mismatched} payloads differ from the bag'
    errors = np.concatenate([timing_errors_ms(original[t], recorded[t]) for t in TOPICS])
    print(
        f'\n{storage}: {sum(len(original[t]) for t in TOPICS)} messages, all byte-exact; timing error '
        f'p50 {np.percentile(errors, 50):.2f} ms, p99 {np.percentile(errors, 99):.2f} ms, max {errors.max():.2f} ms'
    )
    assert np.percentile(errors, 99) < 10.0, f'timing error p99 {np.percentile(errors, 99):.2f} ms'


def test_replay_at_rate_5_takes_a_quarter_of_the_bag_or_less_and_loses_nothing(bags, tmp_path):
    out = tmp_path / 'recorded'
    replay_into_recorder(bags['mcap'], out, tmp_path, '--rate', '5')
    recorded = read_by_topic(out)
    original = read_by_topic(bags['mcap'])
    stamps = [stamp for topic in TOPICS for stamp, _ in recorded[topic]]
    played_s = (max(stamps) - min(stamps)) / 1e9
    print(f'\n--rate 5: {BAG_S} s bag played in {played_s:.2f} s')
    assert played_s <= BAG_S / 4, f'replay at --rate 5 took {played_s:.2f} s for a {BAG_S} s bag'
    for topic in TOPICS:
        assert len(recorded[topic]) == len(original[topic]), f'{topic}: lost messages at --rate 5'


def test_record_expands_relative_topic_names_as_ros2_bag_does(tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'bag', duration_s=2.0, width=32, height=24)
    log = tmp_path / 'record.log'
    recorder = start_mcf('record', str(tmp_path / 'out'), '--topics', 'camera/image_raw', 'joint_states', log=log)
    try:
        replay = run_mcf('replay', str(bag), '--wait-for-subscribers', '20', '--quiet')
        assert replay.returncode == 0, replay.stderr
        time.sleep(0.5)
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(timeout=30) == 0, log.read_text()
    finally:
        recorder.kill()
    recorded = read_by_topic(tmp_path / 'out')
    assert {topic: len(messages) for topic, messages in recorded.items()} == {
        '/camera/image_raw': 60,
        '/joint_states': 1000,
    }
