"""The evaluation report: `scores.csv`, `metrics.json` and PNG plots a person can read at a glance."""

import csv
import json
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from mcf_ros.data.labels import FaultLabel
from mcf_ros.model.evaluation import roc_curve, window_truth

CSV_COLUMNS = [
    'stamp_s', 'anomaly_score', 'concept_score', 'threshold', 'is_anomaly', 'camera_error', 'kinematics_error', 'blame',
]  # fmt: skip
MODALITY_COLORS = {'camera': 'tab:orange', 'kinematics': 'tab:purple', 'physical': 'tab:red'}


def write_scores_csv(path: Path, scored: dict) -> None:
    """One row per window, in the column order of DESIGN.md."""
    with path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for i in range(len(scored['end_s'])):
            writer.writerow([
                f'{scored["end_s"][i]:.6f}', f'{scored["anomaly_score"][i]:.4f}', f'{scored["concept_score"][i]:.5f}',
                f'{scored["threshold"][i]:.4f}', int(scored['is_anomaly'][i]), f'{scored["camera_error"][i]:.6g}',
                f'{scored["kinematics_error"][i]:.6g}', scored['blame'][i],
            ])  # fmt: skip


def write_report(
    report_dir: str | Path, scored: dict, metrics: dict, labels: list[FaultLabel], length_s: float
) -> list[Path]:
    """Write metrics.json, scores.csv, timeline.png, roc.png and per_kind.png; return the paths."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'metrics.json').write_text(json.dumps(metrics, indent=2))
    write_scores_csv(out / 'scores.csv', scored)
    paths = [out / 'metrics.json', out / 'scores.csv', timeline_png(out / 'timeline.png', scored, labels)]
    positive = np.array([bool(t) for t in window_truth(scored['end_s'], labels, length_s)])
    if positive.any() and (~positive).any():
        paths.append(roc_png(out / 'roc.png', scored['anomaly_score'], positive, metrics['auroc']))
    if metrics.get('per_kind'):
        paths.append(per_kind_png(out / 'per_kind.png', metrics['per_kind']))
    return paths


def timeline_png(path: Path, scored: dict, labels: list[FaultLabel]) -> Path:
    """Concept score, anomaly score with threshold and flag, and the fault windows shaded and named."""
    t0 = scored['end_s'][0]
    t = scored['end_s'] - t0
    threshold = float(scored['threshold'][0])
    figure, (concept, anomaly) = plt.subplots(2, 1, figsize=(14, 7), sharex=True, constrained_layout=True)
    concept.plot(t, scored['concept_score'], color='tab:blue', linewidth=0.8)
    concept.set_ylabel('concept score\nmean(a)')
    anomaly.plot(t, scored['anomaly_score'], color='black', linewidth=0.7, label='anomaly score')
    anomaly.axhline(threshold, color='tab:red', linestyle='--', linewidth=1, label=f'threshold ({threshold:.1f})')
    top = max(float(np.max(scored['anomaly_score'])), threshold) * 2.0
    anomaly.fill_between(
        t, 0, top, where=scored['is_anomaly'], color='black', alpha=0.15, step='post', label='flag raised'
    )
    anomaly.set_yscale('symlog', linthresh=max(threshold, 1.0))
    anomaly.set_ylim(min(0.0, float(np.min(scored['anomaly_score']))), top)
    anomaly.set_ylabel('anomaly score (robust z,\nlinear up to the threshold)')
    anomaly.set_xlabel('time since the first window (s)')
    for axis in (concept, anomaly):
        for label in labels:
            axis.axvspan(label.start_s - t0, label.end_s - t0, color=MODALITY_COLORS[label.modality], alpha=0.18)
    for label in labels:
        concept.text(
            label.start_s - t0, 1.02, label.kind, transform=concept.get_xaxis_transform(), rotation=40,
            fontsize=7, color=MODALITY_COLORS[label.modality], va='bottom', ha='left',
        )  # fmt: skip
    handles = anomaly.get_legend_handles_labels()[0] + [
        Patch(color=color, alpha=0.3, label=f'{modality} fault') for modality, color in MODALITY_COLORS.items()
    ]
    anomaly.legend(handles=handles, loc='upper right', fontsize=8, ncol=2)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def loss_curve_png(path: Path, train_loss: list[float], holdout_loss: list[float]) -> Path:
    """Training loss (failure-injected inputs) and held-out loss (clean normal inputs) per epoch."""
    figure, axis = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    epochs = np.arange(1, len(train_loss) + 1)
    axis.plot(epochs, train_loss, marker='.', label='training (failure-injected inputs)')
    axis.plot(epochs, holdout_loss, marker='.', label='held-out normal (clean inputs)')
    axis.set_yscale('log')
    axis.set_xlabel('epoch')
    axis.set_ylabel('reconstruction loss (MSE)')
    axis.legend()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def roc_png(path: Path, scores: np.ndarray, positive: np.ndarray, auc: float | None) -> Path:
    """The ROC curve of the anomaly score over all windows."""
    fpr, tpr = roc_curve(scores, positive)
    figure, axis = plt.subplots(figsize=(4.5, 4.5), constrained_layout=True)
    axis.plot(fpr, tpr, color='tab:blue', label=f'MCF (AUROC {auc:.3f})' if auc is not None else 'MCF')
    axis.plot([0, 1], [0, 1], color='grey', linestyle=':')
    axis.set_xlabel('false positive rate (windows)')
    axis.set_ylabel('true positive rate (windows)')
    axis.legend(loc='lower right')
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def per_kind_png(path: Path, per_kind: dict) -> Path:
    """A table: per fault kind, its modality, AUROC, recall, detected episodes, delay and blame accuracy."""

    def show(value, fmt):
        return '-' if value is None else fmt.format(value)

    rows = [
        [kind, info['modality'], show(info['auroc'], '{:.3f}'), show(info['recall'], '{:.2f}'),
         f'{info["detected"]}/{info["episodes"]}', show(info['detection_delay_s_median'], '{:.2f} s'),
         show(info['blame_accuracy'], '{:.0%}')]
        for kind, info in sorted(per_kind.items(), key=lambda item: (item[1]['modality'], item[0]))
    ]  # fmt: skip
    figure, axis = plt.subplots(figsize=(9, 0.32 * len(rows) + 0.8), constrained_layout=True)
    axis.axis('off')
    table = axis.table(
        cellText=rows, colLabels=['fault', 'modality', 'AUROC', 'recall', 'detected', 'delay', 'blame ok'],
        loc='center', cellLoc='left', colWidths=[0.27, 0.13, 0.1, 0.1, 0.11, 0.1, 0.11],
    )  # fmt: skip
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.2)
    figure.savefig(path, dpi=90, bbox_inches='tight')
    plt.close(figure)
    return path
