"""`mcf export --onnx`, and onnxruntime as the CPU backend: the same evidence as torch (trained: test_train_eval)."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mcf_process import run_mcf

from mcf_ros.data.windows import Window
from mcf_ros.model.artifact import load_artifact
from mcf_ros.model.inference import Detector
from mcf_ros.model.onnx_backend import onnx_beside

pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')

SHIPPED = Path(__file__).resolve().parent.parent / 'models' / 'ur5e_cell.mcf'
# onnxruntime's float32 kernels are not torch's. Each evidence column agrees to 1e-5 of its largest
# value over the windows (measured on the UR5e development bags: at worst 9e-6, the attention vector);
# the anomaly score, which the calibration's tail scales amplify, to 2.1e-5 of itself, and flags and
# blame window by window.
EVIDENCE_TOLERANCE = 1e-5
SCORE_RELATIVE = 2e-4


def assert_same_evidence(got: dict, expected: dict) -> None:
    """Assert that every evidence column agrees to EVIDENCE_TOLERANCE of the column's largest magnitude."""
    for key, value in expected.items():
        if not np.issubdtype(np.asarray(value).dtype, np.floating) or not np.isfinite(value).any():
            continue
        got_value = np.asarray(got[key])
        np.testing.assert_array_equal(np.isnan(got_value), np.isnan(value), err_msg=f'{key}: missing values differ')
        scale = np.nan_to_num(np.nanmax(np.abs(value), axis=0, keepdims=True))
        worst = np.nanmax(np.abs(got_value - value) / np.where(scale > 0, scale, 1.0))
        assert worst <= EVIDENCE_TOLERANCE, f"{key}: off by {worst:.2e} of the column's largest value"


def exported(model: Path, where: Path) -> Path:
    """Copy `model` into `where` and export it beside the copy; return the copy."""
    copy = where / model.name
    shutil.copy(model, copy)
    result = run_mcf('export', '--onnx', str(copy), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(onnx_beside(copy))
    return copy


def normal_like_windows(detector: Detector, count: int) -> list[Window]:
    """Windows with random frames and joints drawn around the model's normal inputs, some missing a modality."""
    rng = np.random.default_rng(0)
    spec, normalisation = detector.spec, detector.normalisation
    windows = []
    for index in range(count):
        image = rng.integers(0, 256, (spec.image_size, spec.image_size, 3), dtype=np.uint8)
        joints = normalisation.mean + normalisation.std * rng.normal(size=(spec.grid_points, spec.joint_features))
        windows.append(
            Window(
                end_s=1.0 + index / spec.camera_hz,
                image=None if index % 7 == 3 else image,
                joints=None if index % 5 == 2 else joints.astype(np.float32),
                frame_gap_s=1 / spec.camera_hz,
                joint_coverage=1.0,
            )
        )
    return windows


@pytest.fixture(scope='module')
def shipped(tmp_path_factory) -> Path:
    """A copy of the shipped model with a fresh export beside it."""
    return exported(SHIPPED, tmp_path_factory.mktemp('shipped'))


def test_the_shipped_model_gives_the_same_evidence_in_onnxruntime(shipped):
    model = shipped
    torch_detector, onnx_detector = Detector(load_artifact(model), 'cpu'), Detector(load_artifact(model), 'cpu')
    torch_detector.compile()
    onnx_detector.compile(onnx_beside(model), threads=1)
    assert torch_detector.backend.startswith('torch') and onnx_detector.backend == 'onnxruntime (ur5e_cell.onnx)'
    windows = normal_like_windows(torch_detector, 64)
    assert_same_evidence(onnx_detector.evidence(windows), torch_detector.evidence(windows))


def test_an_onnx_file_of_another_model_is_not_used_and_the_backend_says_why(shipped):
    model = shipped
    artifact = load_artifact(model)
    artifact.header['weights_sha256'] = '0' * 64  # what a retrain to the same path would leave beside it
    detector = Detector(artifact, 'cpu')
    detector.compile(onnx_beside(model))
    assert detector.backend == (
        f'torch ({onnx_beside(model)} was exported from model {load_artifact(model).model_id}, '
        'not 000000000000: run `mcf export --onnx` again)'
    )
    with torch.inference_mode():
        assert np.isfinite(detector.evidence(normal_like_windows(detector, 2))['camera_error']).all()


def test_detectors_share_an_evidence_key_only_when_they_give_the_same_evidence(tmp_path):
    """Cells in one process batch their windows by this key: same weights with other scales must not share."""
    shipped = load_artifact(SHIPPED)
    rescaled = load_artifact(SHIPPED)
    rescaled.header['normalisation']['camera_cell_scale'][0] *= 2  # as a recalibration on new normal data would
    keys = [Detector(artifact, 'cpu').evidence_key for artifact in (shipped, load_artifact(SHIPPED), rescaled)]
    assert keys[0] == keys[1]
    assert keys[2] != keys[0] and keys[2][0] == keys[0][0], 'the same weights, other evidence scales'
