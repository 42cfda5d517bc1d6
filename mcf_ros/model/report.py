"""The evaluation report: `scores.csv`, `metrics.json` and PNG plots a person can read at a glance."""

import csv
import json
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from mcf_ros.data.bags import BagReader
from mcf_ros.data.images import full_frame_rgb
from mcf_ros.data.labels import FaultLabel
from mcf_ros.data.messages import parse, stamp_ns
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
    report_dir: str | Path, scored: dict, metrics: dict, labels: list[FaultLabel], length_s: float,
    bag: str | Path | None = None, camera_topic: str | None = None, source: str = 'mcf eval',
) -> list[Path]:  # fmt: skip
    """Write metrics.json, scores.csv and the PNG plots; given the bag, also thumbnails.png and report.md.

    Return the paths written.
    """
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
    if bag is not None:
        rows = fault_rows(scored, labels)
        if rows:
            paths.append(thumbnails_png(out / 'thumbnails.png', bag, camera_topic, rows))
        paths.append(markdown_report(out / 'report.md', bag, metrics, rows, [p.name for p in paths], source))
    return paths


def fault_rows(scored: dict, labels: list[FaultLabel]) -> list[dict]:
    """Per labelled fault: whether and when the flag rose inside it, and what the flagged windows blamed."""
    rows = []
    for label in labels:
        inside = np.flatnonzero((scored['end_s'] >= label.start_s) & (scored['end_s'] <= label.end_s))
        flagged = inside[scored['is_anomaly'][inside]]
        blamed = Counter(scored['blame'][i] for i in flagged).most_common(1)
        rows.append({
            'kind': label.kind, 'modality': label.modality, 'start_s': label.start_s,
            'detected': len(flagged) > 0,
            'at_s': float(scored['end_s'][flagged[0]]) if len(flagged) else label.start_s,
            'delay_s': float(scored['end_s'][flagged[0]] - label.start_s) if len(flagged) else None,
            'blamed': blamed[0][0] if blamed else None,
        })  # fmt: skip
    return rows


def _frames_at(bag: str | Path, camera_topic: str, stamps: list[float]) -> list[np.ndarray | None]:
    """Return the camera frame nearest each stamp (seconds), read in one pass over the bag."""
    best: list[tuple[float, np.ndarray | None]] = [(np.inf, None) for _ in stamps]
    with BagReader(bag) as reader:
        for message in reader.messages([camera_topic]):
            parsed = parse(message.data, message.msgtype)
            t = stamp_ns(parsed) / 1e9
            for i, stamp in enumerate(stamps):
                if abs(t - stamp) < best[i][0]:
                    best[i] = (abs(t - stamp), full_frame_rgb(parsed, message.msgtype))
    return [frame for _, frame in best]


def thumbnails_png(path: Path, bag: str | Path, camera_topic: str, rows: list[dict]) -> Path:
    """The camera frame at each fault's detection (or its start, if missed), titled with what was decided."""
    frames = _frames_at(bag, camera_topic, [row['at_s'] for row in rows])
    columns = min(len(rows), 4)
    lines = (len(rows) + columns - 1) // columns
    figure, axes = plt.subplots(
        lines, columns, figsize=(3.4 * columns, 4.0 * lines), squeeze=False, constrained_layout=True
    )
    for axis in axes.flat:
        axis.axis('off')
    for axis, row, frame in zip(axes.flat, rows, frames, strict=False):
        if frame is not None:
            axis.imshow(frame, cmap='gray' if frame.ndim == 2 else None)
        if row['detected']:
            verdict, colour = f'flagged after {row["delay_s"]:.2f} s\nblamed: {row["blamed"]}', 'black'
        else:
            verdict, colour = 'MISSED (frame at its start)', 'tab:red'
        axis.set_title(f'{row["kind"]} ({row["modality"]})\n{verdict}', fontsize=9, color=colour)
    figure.savefig(path, dpi=90, bbox_inches='tight')
    plt.close(figure)
    return path


def _show(value, fmt: str) -> str:
    return '-' if value is None else fmt.format(value)


def markdown_report(
    path: Path, bag: str | Path, metrics: dict, rows: list[dict], images: list[str], source: str
) -> Path:  # fmt: skip
    """A one-page report: the timeline, each fault's outcome with thumbnails, the metrics and the latency."""
    lines = [
        f'# mcf report: `{Path(bag).name}`', '',
        f'Scored by {source}, model `{metrics.get("model_id", "?")}`: {metrics["n_windows"]} windows over '
        f'{metrics["duration_s"]:.0f} s.', '',
        '![timeline: concept score, anomaly score and threshold, flag, fault windows](timeline.png)', '',
    ]  # fmt: skip
    if rows:
        lines += ['## Faults', '', '| fault | modality | detected | delay | blamed |', '|---|---|---|---|---|']
        for row in rows:
            detected = 'yes' if row['detected'] else '**no**'
            lines.append(
                f'| {row["kind"]} | {row["modality"]} | {detected} | {_show(row["delay_s"], "{:.2f} s")} '
                f'| {row["blamed"] or "-"} |'
            )
        lines += ['']
    per_hour = _show(metrics['false_alarms_per_hour'], '{:.2f}')
    lines += [
        f'False alarms in normal running: {metrics.get("false_alarm_episodes", 0)} '
        f'({per_hour} per hour over {metrics["normal_hours"] * 3600:.0f} s).', '',
    ]  # fmt: skip
    if 'thumbnails.png' in images:
        lines += ['![camera frame at each detection](thumbnails.png)', '']
    values = [
        _show(metrics['auroc'], '{:.3f}'), _show(metrics['aupr'], '{:.3f}'), _show(metrics['f1'], '{:.3f}'),
        _show(metrics['detection_delay_s_median'], '{:.2f} s'), _show(metrics['blame_accuracy'], '{:.0%}'),
        _show(metrics['physical_blame_accuracy'], '{:.0%}'),
    ]  # fmt: skip
    lines += [
        '## Metrics', '',
        '| AUROC | AUPR | F1 | median delay | blamed right: sensor faults | physical faults |',
        '|---|---|---|---|---|---|',
        f'| {" | ".join(values)} |', '',
    ]  # fmt: skip
    latency = metrics.get('latency_ms')
    if latency:
        lines += [
            '## Latency', '',
            f'Frame received → scores published in the node: p50 {latency["p50"]:.1f} ms, p99 {latency["p99"]:.1f} ms '
            f'over {latency["windows"]} windows.', '',
        ]  # fmt: skip
    lines += [f'Also here: {", ".join(name for name in images if name not in ("timeline.png", "thumbnails.png"))}.']
    path.write_text('\n'.join(lines) + '\n')
    return path


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
    linthresh = max(threshold, 1.0)
    anomaly.set_yscale('symlog', linthresh=linthresh)
    bottom = min(0.0, float(np.min(scored['anomaly_score'])))
    anomaly.set_ylim(bottom, top)
    # In the linear part below the threshold only 0 is labelled: 1 would sit on top of it.
    ticks = [t for t in anomaly.get_yticks() if bottom <= t <= top and (t <= 0 or t >= linthresh)]
    anomaly.set_yticks(ticks)
    anomaly.set_ylabel('anomaly score (normal tail units,\nlinear up to the threshold)')
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
    anomaly.legend(handles=handles, loc='upper left', bbox_to_anchor=(1.005, 1.0), fontsize=8)  # never over a trace
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def loss_curve_png(path: Path, train_loss: list[float], holdout_loss: list[float]) -> Path:
    """Training loss (failure-injected inputs) and held-out loss (clean normal inputs) per epoch."""
    figure, axis = plt.subplots(figsize=(6, 3.5), constrained_layout=True)
    epochs = np.arange(1, len(train_loss) + 1)
    training = 'training: pose-jittered, failure-injected inputs\n(reconstruction + concept loss)'
    axis.plot(epochs, train_loss, marker='.', label=training)
    axis.plot(epochs, holdout_loss, marker='.', label='held-out normal: clean inputs\n(reconstruction)')
    axis.set_yscale('log')
    axis.set_xlabel('epoch')
    axis.set_ylabel('loss')
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
