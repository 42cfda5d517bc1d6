"""`mcf demo --fast` end to end: the node's flags, received over DDS and recorded, find every fault."""

import pytest
from mcf_process import run_mcf

from mcf_ros.data.labels import read_labels
from mcf_ros.demo import FAST_FAULTS, read_node_output
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
