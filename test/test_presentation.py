"""What people and tools see: the ~/scores field mapping, the state line and the overlay image."""

import numpy as np
import pytest

from mcf_ros.model.scoring import BLAME
from mcf_ros.presentation import ALARM_RGB, MODES, SCORE_FIELDS, draw_overlay, score_values, state_line

SCORED = {
    'concept_score': 0.48, 'anomaly_score': 12.5, 'threshold': 8.0, 'is_anomaly': True, 'camera_error': 0.02,
    'kinematics_error': float('nan'), 'camera_evidence': 12.5, 'kinematics_evidence': 0.3, 'blame': 'camera',
    'latent_disagreement': float('nan'), 'attention': np.array([0.4, 0.56]), 'cycle_lag': 1.25,
}  # fmt: skip


def test_scores_map_every_value_to_a_named_field():
    names, values = score_values(SCORED, 'degraded-kinematics', 3.5, '1d47531200a8')
    fields = dict(zip(names, values, strict=True))
    assert names[: len(SCORE_FIELDS)] == list(SCORE_FIELDS)
    assert names[len(SCORE_FIELDS) :] == ['concept_0', 'concept_1']
    assert fields['anomaly_score'] == 12.5 and fields['is_anomaly'] == 1.0 and np.isnan(fields['kinematics_error'])
    assert np.isnan(fields['latent_disagreement'])
    assert BLAME[int(fields['blame'])] == 'camera' and MODES[int(fields['mode'])] == 'degraded-kinematics'
    assert f'{int(fields["model_id"]):012x}' == '1d47531200a8', 'the model id must survive float64 exactly'
    assert fields['latency_ms'] == 3.5 and fields['concept_1'] == pytest.approx(0.56)
    assert fields['cycle_lag'] == 1.25


def test_state_line_says_flag_blame_scores_and_mode():
    line = state_line(SCORED, 'nominal')
    assert line.startswith('ANOMALY (camera)') and '12.5 / 8.0' in line and '[nominal]' in line
    assert state_line({**SCORED, 'is_anomaly': False}, 'nominal').startswith('normal')


def test_overlay_draws_on_a_copy_and_frames_an_alarm_in_red():
    frame = np.full((480, 640, 3), 128, np.uint8)
    alarm = draw_overlay(frame, SCORED, 'nominal')
    quiet = draw_overlay(frame, {**SCORED, 'is_anomaly': False}, 'nominal')
    assert (frame == 128).all(), 'the camera frame must not be drawn on'
    assert alarm.shape == frame.shape
    assert tuple(alarm[240, 1]) == ALARM_RGB and tuple(quiet[240, 1]) == (128, 128, 128)
    assert (alarm[:40] != frame[:40]).any(), 'the score band is drawn at the top'


def test_a_small_frame_is_enlarged_so_the_text_stays_legible():
    overlay = draw_overlay(np.zeros((128, 128, 3), np.uint8), SCORED, 'nominal')
    assert overlay.shape == (512, 512, 3)
