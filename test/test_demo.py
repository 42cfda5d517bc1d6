"""`mcf demo --fast` end to end: the node's flags, received over DDS and recorded, find every fault; its clips."""

import json

import pytest
from mcf_process import run_mcf, run_mcf_together

from mcf_ros.data.bags import BagReader
from mcf_ros.data.labels import read_labels
from mcf_ros.demo import FAST_FAULTS, read_episode_log, read_node_output
from mcf_ros.model.evaluation import detection_metrics


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp('demo') / 'run'
    result = run_mcf('demo', '--fast', '--out', str(out), timeout=280)
    assert result.returncode == 0, result.stderr
    return out, result


def test_every_injected_fault_is_detected_from_the_recorded_node_output(demo):
    out, result = demo
    scored, latency = read_node_output(out / 'monitor_output')
    labels = read_labels(out / 'cell')
    assert sorted(label.kind for label in labels) == sorted(FAST_FAULTS)
    metrics = detection_metrics(scored, labels, 1.0, 30.0)
    missed = [kind for kind, info in metrics['per_kind'].items() if info['detected'] != info['episodes']]
    assert not missed, f'not detected by the node: {missed}'
    assert metrics['false_alarm_episodes'] == 0, 'the flag rose in normal running'
    assert set(scored['mode']) == {'nominal'} and len(latency) > 900
    print(f'\n{result.stdout}')


def test_the_report_files_exist_and_are_not_empty(demo):
    out, result = demo
    for name in ('report.md', 'timeline.png', 'thumbnails.png', 'metrics.json', 'scores.csv'):
        path = out / 'report' / name
        assert path.is_file() and path.stat().st_size > 0, f'{name} is missing or empty'
    report = (out / 'report' / 'report.md').read_text()
    for kind in FAST_FAULTS:
        assert f'| {kind} |' in report
    assert 'the monitor node over DDS' in report
    assert 'faults detected' in result.stdout


def test_each_fault_gives_one_clip_that_replays_and_whose_episode_mcf_eval_finds(demo, tmp_path):
    out, result = demo
    labels = read_labels(out / 'cell')
    episodes = read_episode_log(out / 'clips')
    clips = sorted(str(path) for path in (out / 'clips').glob('clip_*'))
    assert sorted(episode['clip'] for episode in episodes) == clips
    for label in labels:
        overlapping = [e for e in episodes if e['start_s'] < label.end_s and e['end_s'] > label.start_s]
        assert len(overlapping) == 1, f'{label.kind}: {len(overlapping)} episodes'
    assert len(episodes) == len(labels), 'an episode outside the faults'
    assert f'clips: {len(labels)} flag episodes' in result.stdout
    replay, *evals = run_mcf_together(
        ['replay', clips[0], '--quiet'],
        *(['eval', '--model', 'models/ur5e_cell.mcf', '--bag', clip, '--report', str(tmp_path / str(i))]
          for i, clip in enumerate(clips)),
        timeout=240,
    )  # fmt: skip
    with BagReader(clips[0]) as bag:
        assert set(bag.topics) == {'/camera/image_raw', '/joint_states', '/mcf_monitor/scores'}
        assert replay.returncode == 0 and f'replayed {bag.message_count} messages' in replay.stdout, replay.stderr
    for i, evaluation in enumerate(evals):
        assert evaluation.returncode == 0, evaluation.stderr
        kinds = json.loads((tmp_path / str(i) / 'metrics.json').read_text())['per_kind']
        assert kinds['flag_episode']['detected'] == kinds['flag_episode']['episodes'] >= 1, clips[i]
