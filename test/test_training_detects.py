"""Training works: a model trained from scratch on 3 min of a simulated cell detects faults it never saw.

The test bag is another seed of the cell with two physical faults from the simulator and eight
evaluation faults (`mcf_ros.eval_faults`, which training never injects). The floors sit below what
the code gives today with a margin, and above what breakages gave when tried once (the numbers are
in docs/evaluation.md, "CI: training works"): a calibration without its margin (false alarms) and a
model whose decoders output zeros. A corruption library that corrupts nothing is caught by
test/test_faults.py, not here: at 16 epochs such a model detects these faults as well.
"""

import csv
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from mcf_process import run_mcf

from mcf_ros.data.labels import read_labels

EVAL_FAULTS = [
    'camera_bumped', 'camera_flicker', 'camera_fog', 'camera_tearing',
    'joint_sign_flip', 'joint_swap', 'joint_lag', 'joint_slow_drift',
]  # fmt: skip
# Today (round 8): camera 0.930, kinematics 0.878, physical 0.902, 8 detected, headroom 0.23. Broken: no calibration
# margin -> headroom 0.54; zero decoders -> camera 0.737, 5 detected, sensor blame 0.61.
AUROC_FLOORS = {'camera': 0.88, 'kinematics': 0.80, 'physical': 0.80}
DETECTED_FLOOR = 6  # of 10 episodes
# Flagged windows blamed right. Today: 0.98 and 0.94. With the blame of before (each sensor not asked
# what it shows alone), the collision and the heavy payload were blamed on a sensor: physical 0.0.
SENSOR_BLAME_FLOOR = 0.9
PHYSICAL_BLAME_FLOOR = 0.8
HEADROOM_P99 = 0.3  # 99 % of clean normal windows score below this share of the threshold
EPOCHS = 16  # 8 were too few once the wrist was parked (docs/evaluation.md, development round 4)
AFTERMATH_S = 8.0  # after a fault the cycle channel may take this long to settle; not clean normal running


def run_chain(steps: list[list[str]]) -> None:
    """Run `mcf` steps one after another, each to success."""
    for step in steps:
        result = run_mcf(*step, timeout=600)
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('training')
    physical = 'collision,heavy_payload'
    normal = [
        ['sim', '--out', str(root / 'normal'), '--duration', '180', '--seed', '901'],
        ['train', '--bag', str(root / 'normal'), '--out', str(root / 'model.mcf'), '--epochs', str(EPOCHS)],
    ]
    faulty = [
        ['sim', '--out', str(root / 'world'), '--duration', '150', '--seed', '903', '--faults', physical],
        ['inject', str(root / 'world'), '--out', str(root / 'test'), '--seed', '904', '--faults', ','.join(EVAL_FAULTS),
         '--drift-rate', '0.1'],
    ]  # fmt: skip
    with ThreadPoolExecutor(2) as pool:  # the two chains at once: the injection runs while the longer sim ends
        for chain in [pool.submit(run_chain, normal), pool.submit(run_chain, faulty)]:
            chain.result()
    report = root / 'report'
    run_chain([['eval', '--model', str(root / 'model.mcf'), '--bag', str(root / 'test'), '--report', str(report)]])
    with (report / 'scores.csv').open() as handle:
        scores = list(csv.DictReader(handle))
    return json.loads((report / 'metrics.json').read_text()), scores, read_labels(root / 'test')


@pytest.mark.timeout(900)  # the module's fixture trains: about 3 min on 2 free cores
def test_a_model_trained_on_three_minutes_detects_faults_training_never_injected(trained):
    trained, _, _ = trained
    groups = {group: round(value, 3) for group, value in trained['per_group_auroc'].items()}
    detected = sum(kind['detected'] for kind in trained['per_kind'].values())
    print(f'\nAUROC per group {groups}; {detected} of {len(trained["per_kind"])} episodes detected')
    for group, floor in AUROC_FLOORS.items():
        assert groups[group] >= floor, f'{group} AUROC {groups[group]} < {floor}'
    assert detected >= DETECTED_FLOOR


def test_it_raises_no_false_alarm_and_normal_running_keeps_its_headroom(trained):
    metrics, scores, labels = trained
    assert metrics['normal_hours'] * 3600 > 60
    assert metrics['false_alarm_episodes'] == 0
    clean = [
        float(row['anomaly_score']) / float(row['threshold'])
        for row in scores
        if not any(label.covers(float(row['stamp_s']) - AFTERMATH_S, float(row['stamp_s']) + 2.0) for label in labels)
    ]
    headroom = np.percentile(clean, 99)
    print(f'\n{len(clean)} clean normal windows score at most {headroom:.3f} of the threshold at p99')
    assert len(clean) > 600 and headroom <= HEADROOM_P99


def test_it_blames_a_lying_sensor_on_the_sensor_and_a_changed_world_on_the_world(trained):
    metrics, _, _ = trained
    sensor, physical = metrics['blame_accuracy'], metrics['physical_blame_accuracy']
    per_kind = {kind: info['blame_accuracy'] for kind, info in metrics['per_kind'].items()}
    print(f'\nblamed right: sensor faults {sensor:.3f}, physical faults {physical:.3f}; per kind {per_kind}')
    assert sensor >= SENSOR_BLAME_FLOOR and physical >= PHYSICAL_BLAME_FLOOR
