"""`mcf train` and `mcf eval` end to end on a small simulated cell: the artifact and the report contracts."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from mcf_process import run_mcf, run_mcf_together
from synthetic_bags import write_camera_joint_bag

from mcf_ros.model import bag_eval
from mcf_ros.model.artifact import ArtifactError, load_artifact, save_artifact
from mcf_ros.model.inference import Detector

METRIC_KEYS = [
    'auroc', 'aupr', 'f1', 'precision', 'recall', 'false_alarms_per_hour', 'detection_delay_s_median',
    'blame_accuracy', 'physical_blame_accuracy', 'per_kind', 'n_windows', 'duration_s',
]  # fmt: skip


@pytest.fixture(scope='module')
def cell(tmp_path_factory):
    root = tmp_path_factory.mktemp('cell')
    small = ['--width', '32', '--height', '32']
    runs = {
        'normal': ['--seed', '1', '--duration', '30'],
        'faults': ['--seed', '2', '--duration', '30', '--faults', 'camera_black,joint_offset'],
    }
    simulations = [['sim', '--out', str(root / name), *small, *args] for name, args in runs.items()]
    for result in run_mcf_together(*simulations, timeout=300):
        assert result.returncode == 0, result.stderr
    result = run_mcf(
        'train', '--bag', str(root / 'normal'), '--out', str(root / 'model.mcf'), '--epochs', '2', '--image-size', '32'
    )
    assert result.returncode == 0, result.stderr
    return root


def test_train_writes_an_artifact_with_the_cell_and_its_calibration(cell):
    header = load_artifact(cell / 'model.mcf').header
    assert header['window']['joint_names'][0] == 'shoulder_pan_joint' and len(header['window']['joint_names']) == 6
    assert header['window']['camera_hz'] == pytest.approx(30.0, rel=0.01)
    assert header['window']['joint_hz'] == pytest.approx(500.0, rel=0.01)
    assert header['calibration']['threshold'] > 0
    assert header['calibration']['target_false_alarms_per_hour'] == 1.0
    for key in ('package_version', 'created', 'normalisation', 'modalities', 'training'):
        assert key in header, f'artifact header lacks {key}'
    assert len(header['training']['fingerprint']) == 64
    assert header['modalities']['camera']['resolution'] == [32, 32]


def test_the_artifact_records_whether_the_cycle_channel_is_on_and_why(cell, tmp_path):
    header = load_artifact(cell / 'model.mcf').header
    assert header['cycle_channel'] == {
        'on': False, 'reason': 'off: no cycle learnt (the arm rests nowhere, or came home fewer than 5 times)'
    } and header['calibration']['cycle'] is None  # fmt: skip
    args = ['--epochs', '1', '--image-size', '32', '--no-cycle']
    result = run_mcf('train', '--bag', str(cell / 'normal'), '--out', str(tmp_path / 'm.mcf'), *args)
    assert result.returncode == 0, result.stderr
    assert 'cycle channel off (--no-cycle): the cycle channel stays silent' in result.stdout
    assert load_artifact(tmp_path / 'm.mcf').header['cycle_channel']['on'] is False
    result = run_mcf('calibrate', '--model', str(tmp_path / 'm.mcf'), '--bag', str(cell / 'normal'), '--out',
                     str(tmp_path / 'r.mcf'))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert 'cycle channel off (--no-cycle)' in result.stdout, 'a recalibration turned --no-cycle back on'


def test_a_model_refuses_frames_of_another_camera_resolution(cell, tmp_path):
    bag = write_camera_joint_bag(tmp_path / 'wide', duration_s=2.0, width=64, height=48)
    result = run_mcf('eval', '--model', str(cell / 'model.mcf'), '--bag', str(bag), '--report', str(tmp_path / 'r'))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'has frames of 64x48; the model was trained on 32x32: train on data from this camera' in result.stderr


def test_kinematics_evidence_is_the_worst_joint_channel_against_its_normal_scale(cell):
    """A fault on one joint channel must not be averaged away over the others."""
    import numpy as np
    import torch

    from mcf_ros.data.dataset import bag_windows
    from mcf_ros.model.inference import window_tensors

    detector = Detector(load_artifact(cell / 'model.mcf'), 'cpu')
    scale = detector.normalisation.residual_scale
    assert scale is not None and scale.shape == (detector.spec.joint_features,) and (scale > 0).all()
    windows = [w for w in bag_windows(cell / 'normal', detector.spec, '/camera/image_raw', '/joint_states')][40:48]
    hit = windows[-1].joints.copy()
    hit[:, 4] += 2.0  # one joint's position, off by 2 rad: 4x the normal residual of this 2-epoch model
    windows[-1] = type(windows[-1])(windows[-1].end_s, windows[-1].image, hit, 1 / 30, 1.0)
    image, joints, mask = window_tensors(windows, detector.spec, detector.normalisation)
    with torch.inference_mode():
        residual = ((detector.model(image, joints, mask)['joints'] - joints) ** 2).mean(dim=1).numpy()
    evidence = detector.evidence(windows)['kinematics_error']
    np.testing.assert_allclose(evidence, (residual / scale).max(axis=1), rtol=1e-4)
    assert evidence[-1] > 5 * evidence[:-1].max()
    assert (residual[-1] / scale).argmax() == 4


def test_latent_disagreement_is_the_cosine_distance_of_the_two_latents_when_both_are_present(cell):
    from dataclasses import replace

    import numpy as np
    import torch

    from mcf_ros.data.dataset import bag_windows
    from mcf_ros.model.inference import latent_disagreement, window_tensors

    same, opposite, orthogonal = [[1.0, 2.0], [2.0, 4.0]], [[1.0, 0.0], [-3.0, 0.0]], [[1.0, 0.0], [0.0, 5.0]]
    distances = latent_disagreement(torch.tensor([same, opposite, orthogonal]))
    np.testing.assert_allclose(distances, [0.0, 2.0, 1.0], atol=1e-6)

    detector = Detector(load_artifact(cell / 'model.mcf'), 'cpu')
    windows = [w for w in bag_windows(cell / 'normal', detector.spec, '/camera/image_raw', '/joint_states')][40:44]
    windows[1], windows[2] = replace(windows[1], image=None), replace(windows[2], joints=None)
    image, joints, mask = window_tensors(windows, detector.spec, detector.normalisation)
    with torch.inference_mode():
        expected = latent_disagreement(detector.model(image, joints, mask)['latents']).numpy()
    evidence = detector.evidence(windows)['latent_disagreement']
    assert np.isnan(evidence[1]) and np.isnan(evidence[2]), 'one sensor alone cannot disagree with the other'
    np.testing.assert_allclose(evidence[[0, 3]], expected[[0, 3]], rtol=1e-5)


def test_fitting_the_residual_scale_returns_the_evidence_scoring_then_gives(cell):
    """One pass over the held-out windows sets each joint feature's scale and yields their evidence."""
    import numpy as np
    import torch

    from mcf_ros.data.dataset import bag_windows
    from mcf_ros.model.inference import channel_floored, window_tensors

    detector = Detector(load_artifact(cell / 'model.mcf'), 'cpu')
    windows = list(bag_windows(cell / 'normal', detector.spec, '/camera/image_raw', '/joint_states'))[40:240]
    image, joints, mask = window_tensors(windows, detector.spec, detector.normalisation)
    with torch.inference_mode():
        residual = ((detector.model(image, joints, mask)['joints'] - joints) ** 2).mean(dim=1).numpy()
    detector.normalisation.residual_scale = None
    fitted = detector.fit_residual_scale(windows)
    expected = channel_floored(np.quantile(residual, 0.9, axis=0), detector.normalisation.std, detector.spec.features)
    np.testing.assert_allclose(detector.normalisation.residual_scale, expected, rtol=1e-5)
    scored = detector.evidence(windows)
    assert set(fitted) == set(scored)
    for key in scored:
        np.testing.assert_array_equal(fitted[key], scored[key], err_msg=key)


def test_no_joint_residual_scale_is_below_its_channels_median_in_physical_units():
    import numpy as np

    from mcf_ros.model.inference import channel_floored

    # 2 joints; position, velocity, effort. Physical RMS = sqrt(scale) x std = [2, 0.2 | 0.5, 1 | 0.5, 0.6].
    scale = np.array([4.0, 0.01, 1.0, 1.0, 0.25, 0.36])
    std = np.array([1.0, 2.0, 0.5, 1.0, 1.0, 1.0])
    # Channel medians 1.1, 0.75 and 0.55, back in each feature's normalised units and squared.
    expected = [4.0, (1.1 / 2.0) ** 2, (0.75 / 0.5) ** 2, 1.0, 0.55**2, 0.36]
    features = ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1))  # (channel, joint), channel-major
    np.testing.assert_allclose(channel_floored(scale, std, features), expected)


def test_the_residual_floor_takes_each_channels_median_over_the_joints_that_have_it():
    import numpy as np

    from mcf_ros.model.inference import channel_floored

    # 3 joints with position; only joint 2 has velocity: its floor is its own scale, nothing is raised.
    features = ((0, 0), (0, 1), (0, 2), (1, 2))
    scale, std = np.array([1.0, 4.0, 9.0, 0.01]), np.ones(4)
    np.testing.assert_allclose(channel_floored(scale, std, features), [4.0, 4.0, 9.0, 0.01])


@pytest.mark.parametrize('level', ['residual_scale', 'alone_residual_scale', 'camera_cell_scale'])
def test_a_detector_without_its_normal_residual_levels_refuses_to_score(cell, level):
    artifact = load_artifact(cell / 'model.mcf')
    del artifact.header['normalisation'][level]
    with pytest.raises(ArtifactError, match=f'lacks {level}'):
        Detector(artifact, 'cpu').evidence([])


def test_eval_writes_metrics_scores_and_plots(cell):
    report = cell / 'report'
    result = run_mcf('eval', '--model', str(cell / 'model.mcf'), '--bag', str(cell / 'faults'), '--report', str(report))
    assert result.returncode == 0, result.stderr
    metrics = json.loads((report / 'metrics.json').read_text())
    missing = [key for key in METRIC_KEYS if key not in metrics]
    assert not missing, f'metrics.json lacks {missing}'
    assert set(metrics['per_kind']) == {'camera_black', 'joint_offset'}
    with (report / 'scores.csv').open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        'stamp_s', 'anomaly_score', 'concept_score', 'threshold', 'is_anomaly',
        'camera_error', 'kinematics_error', 'blame',
    ]  # fmt: skip
    assert len(rows) - 1 == metrics['n_windows']
    for png in ('timeline.png', 'roc.png', 'per_kind.png'):
        assert (report / png).stat().st_size > 5000, f'{png} is missing or empty'


def test_eval_refuses_a_bag_whose_joints_differ_from_the_model(cell, tmp_path):
    other = write_camera_joint_bag(tmp_path / 'other', duration_s=2, width=32, height=32, joint_names=list('abcdef'))
    result = run_mcf('eval', '--model', str(cell / 'model.mcf'), '--bag', str(other), '--report', str(tmp_path / 'r'))
    assert result.returncode == 2 and 'Traceback' not in result.stderr
    assert 'the bag lacks the model joints shoulder_pan_joint' in result.stderr, result.stderr


def test_train_refuses_a_bag_with_labelled_faults(cell, tmp_path):
    result = run_mcf('train', '--bag', str(cell / 'faults'), '--out', str(tmp_path / 'm.mcf'), '--epochs', '1')
    assert result.returncode == 2 and 'train on normal operation only' in result.stderr


def test_eval_with_a_missing_model_is_a_one_line_error(cell, tmp_path):
    result = run_mcf(
        'eval', '--model', str(tmp_path / 'no.mcf'), '--bag', str(cell / 'faults'), '--report', str(tmp_path)
    )
    assert result.returncode == 2 and result.stderr.count('\n') == 1 and 'model not found' in result.stderr


def test_eval_with_baselines_scores_each_baseline_in_the_same_harness(cell):
    report = cell / 'report_baselines'
    arguments = ['--model', str(cell / 'model.mcf'), '--bag', str(cell / 'faults'), '--report', str(report)]
    result = run_mcf('eval', *arguments, '--baselines', timeout=600)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((report / 'metrics.json').read_text())
    assert set(metrics['baselines']) == {'camera', 'kinematics', 'concat', 'pyod_ecod'}
    for name, block in metrics['baselines'].items():
        assert block['auroc'] is not None and 'per_kind' in block, f'{name} baseline has no metrics'
        if name != 'pyod_ecod':
            assert load_artifact(cell / f'model.baseline-{name}.mcf').header['model']['fusion'] == name
    assert metrics['baselines']['pyod_ecod']['blame_accuracy'] is None, 'the PyOD baseline names no modality'
    assert '| camera |' in result.stdout and '| pyod_ecod |' in result.stdout and '| MCF |' in result.stdout


def test_cached_baselines_are_reused_for_the_same_model_and_retrained_when_it_changes(cell, tmp_path, monkeypatch):
    bag_eval.baseline_models(str(cell / 'model.mcf'), 'cpu', log=print)  # trains them unless an earlier test did
    logged = []
    bag_eval.baseline_models(str(cell / 'model.mcf'), 'cpu', log=logged.append)
    assert not logged, f'the cached baselines were retrained: {logged}'
    model = load_artifact(cell / 'model.mcf')
    retrained = {name: w + 1 if k == 0 else w for k, (name, w) in enumerate(model.state_dict.items())}
    recalibrated = {**model.header, 'calibration': {**model.header['calibration'], 'threshold': 99.0}}

    def refuse(*args, **kwargs):
        raise AssertionError('retraining')

    monkeypatch.setattr(bag_eval, 'train_from_bags', refuse)
    other_data = {**model.header, 'training': {**model.header['training'], 'fingerprint': 'another-recording'}}
    changes = {'weights': (model.header, retrained), 'calibration': (recalibrated, model.state_dict),
               'data': (other_data, model.state_dict), 'code': (model.header, model.state_dict)}  # fmt: skip
    for change, (header, weights) in changes.items():
        save_artifact(tmp_path / 'model.mcf', header, weights)
        for path in cell.glob('model.baseline-*.mcf'):
            shutil.copy(path, tmp_path / path.name)
        if change == 'code':
            monkeypatch.setattr(bag_eval, 'training_code_version', lambda: 'other-code')
        with pytest.raises(AssertionError, match='retraining'):
            bag_eval.baseline_models(str(tmp_path / 'model.mcf'), 'cpu', log=logged.append)


def test_train_learns_any_arm_from_the_bag_a_seven_joint_one_included(tmp_path):
    joints = [f'iiwa_joint_{k}' for k in range(1, 8)]
    bag = write_camera_joint_bag(tmp_path / 'iiwa', duration_s=24, width=48, height=40, joint_names=joints)
    model = tmp_path / 'iiwa.mcf'
    result = run_mcf('train', '--bag', str(bag), '--out', str(model), '--epochs', '1', '--image-size', '32')
    assert result.returncode == 0, result.stderr
    header = load_artifact(model).header
    assert header['window']['joint_names'] == joints
    assert header['model']['joint_features'] == 21
    result = run_mcf('eval', '--model', str(model), '--bag', str(bag), '--report', str(tmp_path / 'report'))
    assert result.returncode == 0, result.stderr


def test_the_drift_sweep_scores_each_rate_and_draws_delay_against_rate(cell, tmp_path):
    args = ['--model', str(cell / 'model.mcf'), '--bag', str(cell / 'normal'), '--out', str(tmp_path)]
    result = subprocess.run(
        [sys.executable, '-m', 'mcf_ros.eval_faults.sweep', *args, '--rates', '0.05,5', '--episodes', '1',
         '--episode-s', '3'], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with (tmp_path / 'sweep.csv').open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row['rate_rad_s']) for row in rows] == [0.05, 5.0]
    assert rows[1]['delay_s'], 'a drift of 5 rad/s is flagged'
    assert (tmp_path / 'sweep.png').stat().st_size > 5000
    assert 'smallest rate with every episode flagged within 5 s:' in result.stdout
    assert not list(tmp_path.glob('drift_*')), 'the injected bags are removed'


def test_a_freshly_trained_model_scores_a_fault_bag_the_same_in_onnxruntime(cell, tmp_path):
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    from test_onnx import SCORE_RELATIVE, assert_same_evidence, exported

    model = exported(cell / 'model.mcf', tmp_path)
    expected, _, windows, torch_detector = bag_eval.evaluate_bag(str(cell / 'model.mcf'), str(cell / 'faults'), 'cpu')
    got, _, _, onnx_detector = bag_eval.evaluate_bag(str(model), str(cell / 'faults'), 'cpu')
    assert torch_detector.backend.startswith('torch') and onnx_detector.backend.startswith('onnxruntime')
    np.testing.assert_array_equal(got['is_anomaly'], expected['is_anomaly'])
    np.testing.assert_array_equal(got['blame'], expected['blame'])
    evidence = torch_detector.evidence(windows[:1]).keys()  # what the model computes, before the calibration
    assert_same_evidence({key: got[key] for key in evidence}, {key: expected[key] for key in evidence})
    np.testing.assert_allclose(got['anomaly_score'], expected['anomaly_score'], rtol=SCORE_RELATIVE)


def test_calibrate_writes_a_new_model_with_the_same_weights_and_leaves_the_source_as_it_was(cell, tmp_path):
    source = cell / 'model.mcf'
    before = source.read_bytes()
    out = tmp_path / 'recalibrated.mcf'
    result = run_mcf('calibrate', '--model', str(source), '--bag', str(cell / 'normal'), '--out', str(out), timeout=300)
    assert result.returncode == 0, result.stderr
    assert source.read_bytes() == before, 'the source artifact was changed'
    old, new = load_artifact(source), load_artifact(out)
    assert new.header['weights_sha256'] == old.header['weights_sha256']
    assert new.model_id != old.model_id and new.header['recalibration']['source_model_id'] == old.model_id
    # Refitted on the bag the source was trained on, split the same way: the same scales, cycle and threshold.
    for key in ('calibration', 'normalisation', 'cycle_channel'):
        assert new.header[key] == old.header[key], key
    threshold = old.header['calibration']['threshold']
    assert f'threshold {threshold:.2f} -> {threshold:.2f}' in result.stdout
    assert f'the weights of {old.model_id}, recalibrated' in result.stdout


def test_a_format_5_model_is_refused_with_how_to_refit_it_and_calibrate_brings_it_to_format_6(
    cell, tmp_path, monkeypatch
):  # fmt: skip
    """Format 5 lacks the repeated-readings channel; `mcf calibrate` reads it and fits the channel."""
    from mcf_ros.model import artifact as artifact_module

    model = load_artifact(cell / 'model.mcf')
    header = {key: value for key, value in model.header.items() if key not in ('format_version', 'weights_sha256')}
    calibration = json.loads(json.dumps(header['calibration']))
    for part in ('centre', 'scale'):
        del calibration[part]['joint_repeats']
    old = tmp_path / 'old.mcf'
    monkeypatch.setattr(artifact_module, 'FORMAT_VERSION', 5)
    save_artifact(old, {**header, 'calibration': calibration}, model.state_dict)
    monkeypatch.undo()
    refit = r'is artifact format 5; this mcf reads format 6: refit it with `mcf calibrate'
    with pytest.raises(ArtifactError, match=refit):
        load_artifact(old)
    out = tmp_path / 'new.mcf'
    result = run_mcf('calibrate', '--model', str(old), '--bag', str(cell / 'normal'), '--out', str(out))
    assert result.returncode == 0, result.stderr
    new = load_artifact(out)
    assert new.header['format_version'] == 6 and new.header['weights_sha256'] == model.header['weights_sha256']
    assert new.header['calibration'] == model.header['calibration'], 'the channel fitted, everything else as trained'


def test_calibrate_refuses_fault_bags_and_a_cell_the_model_scores_far_beyond_its_threshold(cell, tmp_path):
    from mcf_ros.errors import UserError
    from mcf_ros.model.recalibration import recalibrate

    source = cell / 'model.mcf'
    with pytest.raises(UserError, match='has labelled faults'):
        recalibrate(str(source), [str(cell / 'faults')], str(tmp_path / 'a.mcf'), log=lambda _: None)
    artifact = load_artifact(source)
    header = {key: value for key, value in artifact.header.items() if key not in ('format_version', 'weights_sha256')}
    # A threshold far under the normal running's scores stands for a cell the model no longer explains.
    header['calibration'] = {**header['calibration'], 'threshold': 1e-3}
    save_artifact(tmp_path / 'strict.mcf', header, artifact.state_dict)
    with pytest.raises(UserError, match='looks unlike what it was trained on'):
        recalibrate(str(tmp_path / 'strict.mcf'), [str(cell / 'normal')], str(tmp_path / 'b.mcf'), log=lambda _: None)
    assert not (tmp_path / 'b.mcf').exists()
