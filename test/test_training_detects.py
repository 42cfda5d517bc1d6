"""Training works: a model trained from scratch on 3 min of a simulated cell detects faults it never saw.

The test bag is another seed of the cell with two physical faults from the simulator and eight
evaluation faults (`mcf_ros.eval_faults`, which training never injects). The floors sit below what
the code gives today with a margin, and above what each of three breakages gave when tried once
(the numbers are in the README's "CI: training works"): a calibration without its margin (false
alarms), a corruption library that corrupts nothing, and a model whose decoders output zeros.
"""

import csv
import json

import numpy as np
import pytest
from mcf_process import run_mcf, run_mcf_together

from mcf_ros.data.labels import read_labels

EVAL_FAULTS = [
    'camera_bumped', 'camera_flicker', 'camera_fog', 'camera_tearing',
    'joint_sign_flip', 'joint_swap', 'joint_lag', 'joint_slow_drift',
]  # fmt: skip
# Today: camera 0.942, kinematics 0.853, physical 0.894, 7 detected, headroom 0.15. Broken: no calibration
# margin -> headroom 0.53; corruptions that corrupt nothing -> camera 0.827; zero decoders -> camera 0.713, 4.
AUROC_FLOORS = {'camera': 0.88, 'kinematics': 0.80, 'physical': 0.80}
DETECTED_FLOOR = 6  # of 10 episodes
# Flagged windows blamed right. Today: see the README. With the blame of before (each sensor not asked
# what it shows alone), the collision and the heavy payload were blamed on a sensor: physical 0.0.
SENSOR_BLAME_FLOOR = 0.9
PHYSICAL_BLAME_FLOOR = 0.8
HEADROOM_P99 = 0.3  # 99 % of clean normal windows score below this share of the threshold
AFTERMATH_S = 8.0  # after a fault the cycle channel may take this long to settle; not clean normal running


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('training')
    physical = 'collision,heavy_payload'
    simulations = [
        ['sim', '--out', str(root / 'normal'), '--duration', '180', '--seed', '901'],
        ['sim', '--out', str(root / 'world'), '--duration', '150', '--seed', '903', '--faults', physical],
    ]
    for result in run_mcf_together(*simulations, timeout=600):
        assert result.returncode == 0, result.stderr
    steps = [
        ['inject', str(root / 'world'), '--out', str(root / 'test'), '--seed', '904', '--faults', ','.join(EVAL_FAULTS),
         '--drift-rate', '0.1'],
        ['train', '--bag', str(root / 'normal'), '--out', str(root / 'model.mcf'), '--epochs', '8'],
        ['eval', '--model', str(root / 'model.mcf'), '--bag', str(root / 'test'), '--report', str(root / 'report')],
    ]  # fmt: skip
    for step in steps:
        result = run_mcf(*step, timeout=600)
        assert result.returncode == 0, result.stderr
    with (root / 'report' / 'scores.csv').open() as handle:
        scores = list(csv.DictReader(handle))
    return json.loads((root / 'report' / 'metrics.json').read_text()), scores, read_labels(root / 'test')


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
