"""faults.csv: the label contract of DESIGN.md."""

import pytest

from mcf_ros.data.labels import FaultLabel, read_labels, write_labels
from mcf_ros.errors import UserError


def test_labels_round_trip_through_faults_csv(tmp_path):
    labels = [FaultLabel(1767225606.5, 1767225609.25, 'camera_black', 'camera')]
    write_labels(tmp_path, labels)
    assert (tmp_path / 'faults.csv').read_text().splitlines()[0] == 'start_s,end_s,kind,modality'
    assert read_labels(tmp_path) == labels


def test_a_bag_without_faults_csv_is_normal(tmp_path):
    assert read_labels(tmp_path) == []


def test_a_header_only_faults_csv_is_normal(tmp_path):
    write_labels(tmp_path, [])
    assert read_labels(tmp_path) == []


@pytest.mark.parametrize(
    ('content', 'message'),
    [
        ('start,end,kind,modality\n', 'header must be'),
        ('start_s,end_s,kind,modality\n1,2,x,lidar\n', 'modality must be one of'),
        ('start_s,end_s,kind,modality\n2,1,x,camera\n', 'end_s must be after start_s'),
        ('start_s,end_s,kind,modality\nsoon,2,x,camera\n', 'must be numbers'),
    ],
)
def test_malformed_faults_csv_is_a_clear_error(tmp_path, content, message):
    (tmp_path / 'faults.csv').write_text(content)
    with pytest.raises(UserError, match=message):
        read_labels(tmp_path)


def test_overlap_is_inclusive_of_partial_windows():
    label = FaultLabel(10.0, 12.0, 'x', 'camera')
    assert label.covers(9.0, 10.5) and label.covers(11.9, 13.0)
    assert not label.covers(12.0, 13.0) and not label.covers(8.0, 10.0)
