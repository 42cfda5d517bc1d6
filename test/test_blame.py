"""Blame on the shipped model and a new run of its cell: a changed world is physical, a lying sensor is that sensor.

A box set down in view, clear of the arm, is something only the camera can see: the world
changed, and maintenance should look in the cell, not at the camera. A fogged lens is the camera;
a joint read with the wrong sign is the joint sensor, though the arm then looks off its cycle.
"""

import json

import pytest
from mcf_process import run_mcf

FAULTS = ['object_set_down', 'camera_fog', 'joint_sign_flip', 'object_set_down']
# Today the box's flagged windows are blamed physical in 0.70 (2 of 2 detected); the blame of before
# put a change only the camera sees on the camera (0.0).
BOX_PHYSICAL_FLOOR = 0.6


@pytest.fixture(scope='module')
def per_kind(tmp_path_factory):
    root = tmp_path_factory.mktemp('blame')
    steps = [
        ['sim', '--out', str(root / 'normal'), '--duration', '70', '--seed', '906'],
        ['inject', str(root / 'normal'), '--out', str(root / 'test'), '--seed', '907', '--faults', ','.join(FAULTS)],
        ['eval', '--model', 'models/ur5e_cell.mcf', '--bag', str(root / 'test'), '--report', str(root / 'report')],
    ]
    for step in steps:
        result = run_mcf(*step, timeout=240)
        assert result.returncode == 0, result.stderr
    return json.loads((root / 'report' / 'metrics.json').read_text())['per_kind']


def test_a_box_set_down_in_the_cell_is_blamed_on_the_world(per_kind):
    box = per_kind['object_set_down']
    print(f'\nbox: {box["detected"]} of {box["episodes"]} detected, blamed physical in {box["blame_accuracy"]}')
    assert box['detected'] >= 1 and box['blame_accuracy'] >= BOX_PHYSICAL_FLOOR


def test_a_fogged_lens_and_a_joint_read_with_the_wrong_sign_are_blamed_on_their_sensors(per_kind):
    for kind in ('camera_fog', 'joint_sign_flip'):
        assert per_kind[kind]['detected'] == 1 and per_kind[kind]['blame_accuracy'] >= 0.9, (kind, per_kind[kind])
