"""Window-level detection metrics against fault labels (the `metrics.json` contract of DESIGN.md).

A window is positive when it overlaps a labelled fault. Times are seconds on the header clock.
"""

import numpy as np

from mcf_ros.data.labels import FaultLabel

GROUPS = ('camera', 'kinematics', 'physical')


def auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Return the area under the ROC curve (ties count half); None without both classes."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]
    return float((average_rank[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Return the area under the precision-recall curve (average precision); None without positives."""
    if positive.sum() == 0:
        return None
    order = np.argsort(-scores, kind='stable')
    hits = positive[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (false positive rate, true positive rate) over all thresholds."""
    order = np.argsort(-scores, kind='stable')
    hits = positive[order]
    tpr = np.concatenate([[0.0], np.cumsum(hits) / max(hits.sum(), 1)])
    fpr = np.concatenate([[0.0], np.cumsum(~hits) / max((~hits).sum(), 1)])
    return fpr, tpr


def _episodes(flags: np.ndarray) -> np.ndarray:
    """Return the indices where the flag rises."""
    return np.flatnonzero(flags & ~np.concatenate([[False], flags[:-1]]))


def window_truth(end_s: np.ndarray, labels: list[FaultLabel], length_s: float) -> list[list[FaultLabel]]:
    """Return, per window ending at end_s, the labels it overlaps."""
    return [[label for label in labels if label.covers(end - length_s, end)] for end in end_s]


def detection_metrics(scored: dict, labels: list[FaultLabel], length_s: float, camera_hz: float) -> dict:
    """Compute the metrics of DESIGN.md for one scored, time-ordered window sequence."""
    end_s, scores, raised, blamed = scored['end_s'], scored['anomaly_score'], scored['is_anomaly'], scored['blame']
    truth = window_truth(end_s, labels, length_s)
    positive = np.array([bool(t) for t in truth])
    metrics = _block(scores, raised, positive)
    normal_hours = (~positive).sum() / camera_hz / 3600.0
    false_starts = [i for i in _episodes(raised) if not positive[i]]
    metrics['false_alarms_per_hour'] = len(false_starts) / normal_hours if normal_hours > 0 else None
    metrics['false_alarm_episodes'] = len(false_starts)
    metrics['normal_hours'] = float(normal_hours)
    delays, blame_hits, physical_hits, per_kind = [], [], [], {}
    for label in labels:
        inside = np.flatnonzero((end_s >= label.start_s) & (end_s <= label.end_s))
        detected = inside[raised[inside]]
        delay = float(end_s[detected[0]] - label.start_s) if len(detected) else None
        hits = [blamed[i] == label.modality for i in detected]
        if label.modality in ('camera', 'kinematics'):
            blame_hits += hits
        else:
            physical_hits += hits
        if delay is not None:
            delays.append(delay)
        kind = per_kind.setdefault(label.kind, {'modality': label.modality, 'episodes': 0, 'detected': 0, 'delays': []})
        kind['episodes'] += 1
        kind['detected'] += delay is not None
        kind['delays'] += [] if delay is None else [delay]
        kind.setdefault('blame_hits', []).extend(hits)
    metrics['detection_delay_s_median'] = float(np.median(delays)) if delays else None
    metrics['detection_delays_s'] = delays
    metrics['blame_accuracy'] = float(np.mean(blame_hits)) if blame_hits else None
    metrics['blame_windows'] = len(blame_hits)
    metrics['physical_blame_accuracy'] = float(np.mean(physical_hits)) if physical_hits else None
    metrics['physical_blame_windows'] = len(physical_hits)
    metrics['per_kind'] = {}
    for kind, info in per_kind.items():
        of_kind = np.array([any(label.kind == kind for label in t) for t in truth])
        subset = of_kind | ~positive
        block = _block(scores[subset], raised[subset], of_kind[subset])
        block.update(
            modality=info['modality'],
            episodes=info['episodes'],
            detected=info['detected'],
            detection_delay_s_median=float(np.median(info['delays'])) if info['delays'] else None,
            blame_accuracy=float(np.mean(info['blame_hits'])) if info['blame_hits'] else None,
        )
        metrics['per_kind'][kind] = block
    metrics['per_group_auroc'] = {}
    for group in GROUPS:
        of_group = np.array([any(label.modality == group for label in t) for t in truth])
        if of_group.any():
            subset = of_group | ~positive
            metrics['per_group_auroc'][group] = auroc(scores[subset], of_group[subset])
    metrics['n_windows'] = len(end_s)
    metrics['duration_s'] = float(end_s[-1] - end_s[0]) if len(end_s) else 0.0
    return metrics


def _block(scores: np.ndarray, raised: np.ndarray, positive: np.ndarray) -> dict:
    true_positive = int((raised & positive).sum())
    precision = true_positive / raised.sum() if raised.sum() else None
    recall = true_positive / positive.sum() if positive.sum() else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0 if recall is not None else None
    return {
        'auroc': auroc(scores, positive),
        'aupr': average_precision(scores, positive),
        'f1': f1,
        'precision': precision,
        'recall': recall,
    }
