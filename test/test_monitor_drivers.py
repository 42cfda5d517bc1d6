"""The monitor over real DDS on recordings as real drivers make them: NaN or no effort, a gripper on the
joint topic, joints split and reordered, compressed and mono cameras. It scores every window `mcf eval`
scores, with the same flags, and counts the gripper's joints as ignored, not rejected."""

import signal

import pytest
from live_cell import start_monitor, stop_process
from mcf_process import run_mcf, start_mcf, wait_for_line
from test_monitor import DIAGNOSTIC_KEYS, recorded_outputs

from mcf_ros.model.bag_eval import evaluate_bag
from mcf_ros.model.training import TrainConfig
from mcf_ros.model.workflow import train_from_bags
from mcf_ros.sim.drivers import GRIPPER_JOINTS

OUTPUTS = ['/mcf_monitor/scores', '/mcf_monitor/anomaly', '/diagnostics']


@pytest.mark.parametrize(
    ('habits', 'transport'),
    [
        ('nan_effort,gripper,jpeg', 'compressed'),
        pytest.param('position_only,split_joints,reordered,mono8', 'raw', marks=pytest.mark.slow),
        pytest.param('png', 'compressed', marks=pytest.mark.slow),
        pytest.param('bgr8', 'raw', marks=pytest.mark.slow),
    ],
)
def test_the_node_scores_a_drivers_recording_as_mcf_eval_does(driver_cell, tmp_path, habits, transport):
    normal, faults = driver_cell(habits)
    model = tmp_path / 'model.mcf'
    train_from_bags([str(normal)], str(model), '/camera/image_raw', '/joint_states', TrainConfig(epochs=2), 'cpu', 32)
    scored, _, _, _ = evaluate_bag(str(model), str(faults), 'cpu')
    offline = {round(t * 1e3): bool(flag) for t, flag in zip(scored['end_s'], scored['is_anomaly'], strict=True)}
    log = tmp_path / 'monitor.log'
    monitor = start_monitor(
        log, f'model_path:={model}', 'use_sim_time:=true', f'image_transport:={transport}', 'diagnostics_period_s:=0.5'
    )
    recorder = start_mcf('record', str(tmp_path / 'out'), '--topics', *OUTPUTS, log=tmp_path / 'record.log')
    try:
        wait_for_line(log, 'active on', timeout=30)
        wait_for_line(tmp_path / 'record.log', 'recording /mcf_monitor/scores', timeout=30)
        replay = run_mcf('replay', str(faults), '--wait-for-subscribers', '20', '--quiet', timeout=120)
        assert replay.returncode == 0, replay.stderr
        wait_for_line(log, '-> stale', timeout=10)  # the last frame and joint state end together, in either order
        recorder.send_signal(signal.SIGINT)
        assert recorder.wait(30) == 0
        assert stop_process(monitor) == 0, log.read_text()
    finally:
        recorder.kill()
        monitor.kill()
    scores, anomaly, diagnostics = recorded_outputs(tmp_path / 'out')
    common = sorted(set(scores) & set(offline))
    agreement = sum(bool(scores[t]['is_anomaly']) == offline[t] for t in common) / len(common)
    print(f'\n{habits}: {len(scores)} windows online, {len(offline)} offline, {len(common)} in common, '
          f'flags agree on {100 * agreement:.1f} %')  # fmt: skip
    assert len(common) >= 0.98 * len(offline), 'the node scored other windows than mcf eval'
    assert agreement >= 0.98
    assert len(anomaly) == len(scores), '~/anomaly is published for every window'
    last = [d for d in diagnostics if 'windows_scored' in d][-1]
    for key in DIAGNOSTIC_KEYS:
        assert key in last, f'/diagnostics lacks {key}: {last}'
    assert int(last['windows_scored']) == len(scores)
    assert not [key for key in last if key.startswith('rejected_')], f'nothing is rejected: {last}'
    assert last['image_transport'] == transport
    if 'gripper' in habits:
        assert int(last['joint_states_ignored']) > 0 and last['ignored_joints'] == ', '.join(GRIPPER_JOINTS), last
