"""A 10-minute soak of the monitor's clips over DDS (slow): a fault every 30 s, clip_max_mb holds, no window lost to it.

`python -m pytest -m slow test/test_clip_soak.py` (about 20 min on 2 cores: 10 to simulate, 10 to replay).
"""

import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from live_cell import start_monitor, stop_process
from mcf_process import MCF, run_mcf, start_mcf, wait_for_line

from mcf_ros.data.bags import BagReader
from mcf_ros.data.clips import CLIP_PREFIX, EPISODE_LOG
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import parse
from mcf_ros.eval_faults.catalogue import EVAL_FAULTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
CLIP_MAX_MB = 40  # a clip of a 4 s fault is about 18 MB: the bound keeps two
DIAGNOSTICS_PERIOD_S = 0.2


def used_bytes(clip_dir: Path) -> int:
    """Bytes under clip_dir now; files removed meanwhile are skipped."""
    total = 0
    for root, _, files in os.walk(clip_dir):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def recorded(path: Path) -> tuple[list[tuple[float, dict]], list[tuple[float, dict]]]:
    """Return the monitor's /diagnostics values and its ~/episodes records, with their reception times (s)."""
    diagnostics, episodes = [], []
    with BagReader(path) as bag:
        for message in bag.messages(['/diagnostics', '/mcf_monitor/episodes']):
            parsed = parse(message.data, message.msgtype)
            received = message.stamp_ns / 1e9
            if message.topic == '/diagnostics':
                diagnostics += [(received, {kv.key: kv.value for kv in s.values}) for s in parsed.status]
            else:
                episodes.append((received, json.loads(parsed.data)))
    return diagnostics, episodes


def drops_while_writing(diagnostics, published) -> list[float]:
    """Return when windows were dropped (a status's time) within a status period of a clip being written.

    A clip is written from the time in its name (UTC, when writing began) until its episode is
    published on ~/episodes.
    """
    writing = []
    for received, record in published:
        started = datetime.strptime(Path(record['clip']).name, f'{CLIP_PREFIX}%Y%m%dT%H%M%S_%f')
        writing.append((started.replace(tzinfo=UTC).timestamp(), received))
    drops = [
        now for (_, before), (now, after) in itertools.pairwise(diagnostics)
        if int(after['windows_dropped']) > int(before['windows_dropped'])
    ]  # fmt: skip
    return [
        t
        for t in drops
        if any(start - DIAGNOSTICS_PERIOD_S <= t <= end + DIAGNOSTICS_PERIOD_S for start, end in writing)
    ]


@pytest.fixture(scope='module')
def soak_bag(tmp_path_factory):
    """10 min of normal running with an evaluation fault every 30 s (4 s each)."""
    root = tmp_path_factory.mktemp('soak')
    result = run_mcf('sim', '--out', str(root / 'normal'), '--duration', '600', '--seed', '890', timeout=1500)
    assert result.returncode == 0, result.stderr
    kinds = [*EVAL_FAULTS, 'camera_bumped', 'object_set_down', 'joint_sign_flip', 'camera_fog']  # 19, 30 s apart
    result = run_mcf(
        'inject', str(root / 'normal'), '--out', str(root / 'faults'), '--episode-s', '4', '--gap-s', '26',
        '--seed', '891', '--faults', ','.join(kinds), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root / 'faults'


def test_clips_stay_within_clip_max_mb_and_no_window_is_dropped(soak_bag, tmp_path):
    clip_dir = tmp_path / 'clips'
    monitor = start_monitor(
        tmp_path / 'monitor.log', 'model_path:=models/ur5e_cell.mcf', 'use_sim_time:=true',
        f'clip_dir:={clip_dir}', f'clip_max_mb:={CLIP_MAX_MB}', f'diagnostics_period_s:={DIAGNOSTICS_PERIOD_S}',
    )  # fmt: skip
    topics = ['/diagnostics', '/mcf_monitor/episodes']
    recorder = start_mcf('record', str(tmp_path / 'out'), '--topics', *topics, log=tmp_path / 'record.log')
    largest = 0
    try:
        wait_for_line(tmp_path / 'monitor.log', 'active on', timeout=30)
        wait_for_line(tmp_path / 'record.log', 'recording /diagnostics', timeout=30)
        replay = subprocess.Popen([*MCF, 'replay', str(soak_bag), '--wait-for-subscribers', '20', '--quiet'])
        while replay.poll() is None:
            largest = max(largest, used_bytes(clip_dir))
            time.sleep(0.2)
        assert replay.returncode == 0
        time.sleep(3)
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(30) == 0
        assert stop_process(monitor, timeout=60) == 0, (tmp_path / 'monitor.log').read_text()[-3000:]
    finally:
        recorder.kill()
        monitor.kill()
    largest = max(largest, used_bytes(clip_dir))
    faults = read_labels(soak_bag)
    episodes = [json.loads(line) for line in (clip_dir / EPISODE_LOG).read_text().splitlines()]
    diagnostics, published = recorded(tmp_path / 'out')
    diagnostics = [(t, values) for t, values in diagnostics if 'clips_written' in values]
    last = diagnostics[-1][1]
    while_writing = drops_while_writing(diagnostics, published)
    print(
        f'\n{len(faults)} faults, {len(episodes)} episodes; clips written {last["clips_written"]}, '
        f'removed {last["clips_removed"]}; largest use {largest / 1e6:.1f} MB of {CLIP_MAX_MB}; '
        f'windows scored {last["windows_scored"]}, dropped {last["windows_dropped"]}, '
        f'{len(while_writing)} status periods with drops while a clip was written'
    )
    assert len(faults) >= 19 and len(episodes) >= 15, 'too few episodes to test the bound'
    assert largest <= CLIP_MAX_MB * 1e6
    assert int(last['clips_removed']) >= len(episodes) - 3, 'the bound never removed a clip'
    assert last['clips_dropped'] == last['clip_failures'] == last['clip_input_trimmed'] == '0'
    assert not while_writing, 'windows were dropped while a clip was being written'
    assert int(last['windows_dropped']) <= 0.001 * int(last['windows_scored'])
    assert [record for _, record in published] == episodes[: len(published)] and len(published) >= len(episodes) - 1
    kept = sorted(str(path) for path in clip_dir.glob('clip_*'))
    assert kept == sorted(e['clip'] for e in episodes)[-len(kept) :] and len(kept) >= 1
