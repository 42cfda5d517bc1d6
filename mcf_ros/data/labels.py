"""Fault labels: `faults.csv` inside a bag directory (header `start_s,end_s,kind,modality`).

Times are absolute ROS time in seconds on the header-stamp clock. A normal bag has a header-only
file, or none.
"""

import csv
from dataclasses import dataclass
from pathlib import Path

from mcf_ros.errors import UserError

LABELS_FILE = 'faults.csv'
COLUMNS = ['start_s', 'end_s', 'kind', 'modality']
MODALITIES = ('camera', 'kinematics', 'physical')


@dataclass(frozen=True)
class FaultLabel:
    """One labelled fault episode: [start_s, end_s) on the header-stamp clock."""

    start_s: float
    end_s: float
    kind: str
    modality: str

    def covers(self, start_s: float, end_s: float) -> bool:
        """Return whether the interval [start_s, end_s] overlaps this episode."""
        return start_s < self.end_s and end_s > self.start_s


def write_labels(bag_dir: str | Path, labels: list[FaultLabel]) -> Path:
    """Write `faults.csv` into a bag directory; times with microsecond precision."""
    path = Path(bag_dir) / LABELS_FILE
    with path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for label in labels:
            writer.writerow([f'{label.start_s:.6f}', f'{label.end_s:.6f}', label.kind, label.modality])
    return path


def read_labels(bag_dir: str | Path) -> list[FaultLabel]:
    """Read `faults.csv` from a bag directory; no file means a normal bag."""
    path = Path(bag_dir) / LABELS_FILE
    if not path.exists():
        return []
    with path.open(newline='') as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != COLUMNS:
            raise UserError(f'{path}: header must be {",".join(COLUMNS)}, got {",".join(reader.fieldnames or [])}')
        labels = []
        for line, row in enumerate(reader, start=2):
            try:
                label = FaultLabel(float(row['start_s']), float(row['end_s']), row['kind'], row['modality'])
            except (TypeError, ValueError):
                raise UserError(f'{path}:{line}: start_s and end_s must be numbers') from None
            if label.modality not in MODALITIES:
                raise UserError(f'{path}:{line}: modality must be one of {", ".join(MODALITIES)}')
            if label.end_s <= label.start_s:
                raise UserError(f'{path}:{line}: end_s must be after start_s')
            labels.append(label)
    return labels
