"""One markdown table from several `mcf eval` reports: `python -m mcf_ros.model.summary REPORT [REPORT ...]`.

AUROC per fault group and pooled come from the reports that hold faults; false alarms per hour
pool the normal time of every report; the delay is the median over every detected episode, and
blame pools the flagged windows of every episode. Reports made with
`--baselines` add a row per baseline.
"""

import json
import sys
from pathlib import Path

import numpy as np

GROUPS = ('camera', 'kinematics', 'physical')


def summary_row(reports: list[dict]) -> dict:
    """Pool the metrics of several reports into the README's columns."""
    faulty = [r for r in reports if r.get('per_kind')]
    row = {f'auroc_{g}': [r['per_group_auroc'][g] for r in faulty if g in r['per_group_auroc']] for g in GROUPS}
    row = {key: float(np.mean(values)) if values else None for key, values in row.items()}
    row['auroc_pooled'] = float(np.mean([r['auroc'] for r in faulty])) if faulty else None
    hours = sum(r['normal_hours'] for r in reports)
    row['false_alarms_per_hour'] = sum(r['false_alarm_episodes'] for r in reports) / hours if hours else None
    kinds = [k for r in faulty for k in r['per_kind'].values()]
    delays = [delay for r in faulty for delay in r['detection_delays_s']]
    row['detection_delay_s_median'] = float(np.median(delays)) if delays else None
    row['detected'] = f'{sum(k["detected"] for k in kinds)}/{sum(k["episodes"] for k in kinds)}'
    for key in ('blame', 'physical_blame'):
        windows = sum(r[f'{key}_windows'] for r in faulty)
        right = sum(r[f'{key}_accuracy'] * r[f'{key}_windows'] for r in faulty if r[f'{key}_windows'])
        row[f'{key}_accuracy'] = right / windows if windows else None
    return row


def markdown(rows: dict[str, dict]) -> str:
    """Render rows (name -> summary_row) as a markdown table."""

    def cell(value, fmt='{:.3f}'):
        return '-' if value is None else fmt.format(value) if not isinstance(value, str) else value

    lines = [
        '| model | AUROC camera | AUROC kinematics | AUROC physical | AUROC pooled | false alarms/h '
        '| median delay | faults detected | blame: sensor faults | blame: physical faults |',
        '|---|---|---|---|---|---|---|---|---|---|',
    ]
    for name, row in rows.items():
        lines.append(
            f'| {name} | {cell(row["auroc_camera"])} | {cell(row["auroc_kinematics"])} | {cell(row["auroc_physical"])} '
            f'| {cell(row["auroc_pooled"])} | {cell(row["false_alarms_per_hour"], "{:.2f}")} '
            f'| {cell(row["detection_delay_s_median"], "{:.2f} s")} | {row["detected"]} '
            f'| {cell(row["blame_accuracy"], "{:.0%}")} | {cell(row["physical_blame_accuracy"], "{:.0%}")} |'
        )
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table for the report directories given."""
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print('usage: python -m mcf_ros.model.summary REPORT_DIR [REPORT_DIR ...]', file=sys.stderr)
        return 2
    reports = [json.loads((Path(p) / 'metrics.json').read_text()) for p in paths]
    rows = {'MCF (this package)': summary_row(reports)}
    names = sorted({name for report in reports for name in report.get('baselines', {})})
    for name in names:
        rows[f'baseline: {name}'] = summary_row(
            [r['baselines'][name] for r in reports if name in r.get('baselines', {})]
        )
    print(markdown(rows))
    return 0


if __name__ == '__main__':
    sys.exit(main())
