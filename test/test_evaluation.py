"""Detection metrics against hand-computed values."""

import numpy as np
import pytest

from mcf_ros.data.labels import FaultLabel
from mcf_ros.model.evaluation import auroc, average_precision, detection_metrics


def test_auroc_matches_the_pairwise_definition():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 60).astype(float)
    positive = rng.random(60) < 0.3
    pairs = [(p, n) for p in scores[positive] for n in scores[~positive]]
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert auroc(scores, positive) == pytest.approx(expected)


def test_auroc_is_undefined_with_one_class():
    assert auroc(np.arange(3.0), np.zeros(3, bool)) is None


def test_average_precision_of_a_perfect_ranking_is_one():
    assert average_precision(np.array([3.0, 2.0, 1.0]), np.array([True, True, False])) == 1.0


def test_detection_metrics_on_a_hand_made_sequence():
    end_s = np.arange(0.0, 100.0, 1.0)
    raised = np.zeros(100, bool)
    raised[41:50] = True  # the fault, detected 1 s late
    raised[80:83] = True  # a false alarm
    scored = {
        'end_s': end_s,
        'anomaly_score': raised.astype(float),
        'is_anomaly': raised,
        'blame': np.where(raised, 'camera', 'none'),
    }
    labels = [FaultLabel(40.0, 50.0, 'camera_black', 'camera')]
    metrics = detection_metrics(scored, labels, length_s=0.5, camera_hz=1.0)
    assert metrics['detection_delay_s_median'] == pytest.approx(1.0)
    assert metrics['false_alarms_per_hour'] == pytest.approx(1 / (90 / 3600))  # 10 of 100 windows overlap the fault
    assert metrics['blame_accuracy'] == 1.0
    assert metrics['per_kind']['camera_black']['detected'] == 1
    assert metrics['precision'] == pytest.approx(9 / 12)


def fault_report(**values) -> dict:
    """Return the metrics.json keys summary_row reads, of a report with one detected camera fault."""
    return {
        'per_kind': {'camera_black': {'detected': 1, 'episodes': 1}},
        'per_group_auroc': {'camera': 0.99},
        'auroc': 0.97,
        'false_alarm_episodes': 0,
        'normal_hours': 0.5,
        'detection_delays_s': [0.1],
        'blame_accuracy': 1.0,
        'blame_windows': 10,
        'physical_blame_accuracy': None,
        'physical_blame_windows': 0,
        **values,
    }


def test_summary_pools_false_alarms_over_all_normal_time():
    from mcf_ros.model.summary import markdown, summary_row

    normal = {'per_kind': {}, 'false_alarm_episodes': 1, 'normal_hours': 0.5, 'auroc': None, 'blame_accuracy': None}
    row = summary_row([normal, fault_report()])
    assert row['false_alarms_per_hour'] == 1.0
    assert row['auroc_camera'] == 0.99 and row['auroc_kinematics'] is None
    assert row['detected'] == '1/1'
    assert '| 0.990 | - |' in markdown({'m': row})


def test_summary_pools_delays_and_blame_over_episodes_not_kinds():
    from mcf_ros.model.summary import summary_row

    many = fault_report(
        per_kind={'slow': {'detected': 3, 'episodes': 3}}, detection_delays_s=[1.0] * 3, blame_windows=90
    )
    one = fault_report(detection_delays_s=[0.1], blame_accuracy=0.0, blame_windows=10)
    row = summary_row([many, one])
    # A median of the two kinds' medians would be 0.55 s, a mean of the two reports' blame 50 %.
    assert row['detection_delay_s_median'] == 1.0
    assert row['blame_accuracy'] == pytest.approx(0.9)
