"""SIGINT and SIGTERM end the monitor, `mcf replay` and `mcf record` cleanly over real DDS.

Clean means exit code 0, no traceback, every message the player published recorded (the recorder
is signalled the moment the player exits, so nothing has time to settle), and no Fast DDS
shared-memory file left behind.
"""

import re
import signal
import time
from pathlib import Path

import pytest
from live_cell import start_monitor
from mcf_process import start_mcf, wait_for_line
from synthetic_bags import write_camera_joint_bag

from mcf_ros.data.bags import BagReader
from mcf_ros.ros_env import SHM_DIR, orphaned_shm_segments


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    return write_camera_joint_bag(tmp_path_factory.mktemp('bag') / 'bag', duration_s=2.0, width=128, height=128)


def fastdds_files() -> set[str]:
    return {path.name for path in SHM_DIR.glob('*fastdds_*')}


def stop(process, signum: int, log: Path) -> str:
    process.send_signal(signum)
    assert process.wait(timeout=30) == 0, log.read_text()
    text = log.read_text()
    assert 'Traceback' not in text, text
    return text


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_a_signal_ends_monitor_replay_and_record_cleanly_losing_nothing_and_leaving_no_shm(bag, tmp_path, signum):
    before = fastdds_files()
    logs = {name: tmp_path / f'{name}.log' for name in ('monitor', 'record', 'replay')}
    topics = ['/joint_states', '/camera/image_raw', '/mcf_monitor/scores']
    recorder = start_mcf('record', str(tmp_path / 'out'), '--topics', *topics, log=logs['record'])
    replay = start_mcf(
        'replay', str(bag), '--loop', '--topics', '/joint_states', '/camera/image_raw',
        '--wait-for-subscribers', '30', '--quiet', log=logs['replay'],
    )  # fmt: skip
    monitor = None
    try:
        wait_for_line(logs['record'], 'recording /camera/image_raw', timeout=30)  # the player starts now
        monitor = start_monitor(logs['monitor'])
        wait_for_line(logs['monitor'], 'active on', timeout=30)
        time.sleep(3.0)  # past the first window and into the next loop of the bag
        during = fastdds_files() - before
        replayed = stop(replay, signum, logs['replay'])
        recorded = stop(recorder, signum, logs['record'])  # at once: in-flight messages must be drained
        stop(monitor, signum, logs['monitor'])
    finally:
        for process in (replay, recorder, monitor):
            if process is not None and process.poll() is None:
                process.kill()
    published = int(re.search(r'/joint_states (\d+)', replayed).group(1))
    with BagReader(tmp_path / 'out') as out:
        counts = {topic: sum(1 for _ in out.messages([topic])) for topic in topics}
    assert published > 300, replayed
    assert counts['/joint_states'] == published, f'published {published}, recorded {counts}; {recorded}'
    assert counts['/mcf_monitor/scores'] > 0, 'the monitor scored nothing'
    assert during, 'the processes used no shared memory: the SHM transport is not in use'
    left = fastdds_files() - before
    assert not left, f'Fast DDS shared memory left behind: {sorted(left)}'
    assert not orphaned_shm_segments()
