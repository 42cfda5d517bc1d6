"""The CUDA path: the same scores as the CPU, and the monitor node on the GPU over DDS (training: test_training)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from mcf_process import run_mcf
from synthetic_bags import write_camera_joint_bag

from mcf_ros.data.dataset import bag_windows
from mcf_ros.model.artifact import load_artifact
from mcf_ros.model.inference import Detector
from mcf_ros.paths import share_dir

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason='torch sees no CUDA device'),
]

SHIPPED = share_dir() / 'models' / 'ur5e_cell.mcf'


@pytest.fixture(scope='module')
def cell_windows(tmp_path_factory):
    """Windows of the shipped model's shape, from a bag of the default cell's camera size and joints."""
    bag = write_camera_joint_bag(tmp_path_factory.mktemp('gpu') / 'bag', duration_s=4.0, width=128, height=128)
    spec = Detector(load_artifact(SHIPPED), 'cpu').spec
    return list(bag_windows(bag, spec, '/camera/image_raw', '/joint_states'))


def test_the_model_on_cuda_gives_the_cpu_evidence_batched_and_window_by_window(cell_windows):
    on_cpu, on_cuda = Detector(load_artifact(SHIPPED), 'cpu'), Detector(load_artifact(SHIPPED), 'cuda')
    on_cpu.compile()
    on_cuda.compile()
    expected = on_cpu.evidence(cell_windows)
    batched = on_cuda.evidence(cell_windows)
    one_by_one = [on_cuda.evidence([window]) for window in cell_windows]  # the CUDA graph, as the monitor runs it
    in_sevens = [on_cuda.evidence(cell_windows[start : start + 7]) for start in range(0, len(cell_windows), 7)]
    assert len(cell_windows) > 60 and len(cell_windows) % 7 != 0, 'graphs of two more batch sizes'
    for key in ('camera_error', 'kinematics_error', 'latent_disagreement', 'attention'):
        np.testing.assert_allclose(batched[key], expected[key], rtol=1e-4, atol=1e-5, err_msg=key)
        for graphed in (one_by_one, in_sevens):
            each = np.concatenate([evidence[key] for evidence in graphed])
            np.testing.assert_allclose(each, expected[key], rtol=1e-4, atol=1e-5, err_msg=key)
    masked = replace(cell_windows[5], image=None)  # a frame missing: the graph's mask input follows the window
    assert np.isnan(on_cuda.evidence([masked])['camera_error']).all()
    np.testing.assert_allclose(
        on_cuda.evidence([masked])['kinematics_error'], on_cpu.evidence([masked])['kinematics_error'], rtol=1e-4
    )


def test_mcf_bench_runs_the_monitor_on_cuda(tmp_path):
    json_path = tmp_path / 'bench.json'
    result = run_mcf('bench', '--device', 'cuda', '--duration', '5', '--json', str(json_path), timeout=240)
    assert result.returncode == 0, result.stderr
    results = json.loads(json_path.read_text())
    assert results['model']['device'].startswith('cuda') and results['monitor']['device'].startswith('cuda')
    assert results['monitor']['windows'] >= 120
    assert '| monitor (cuda' in result.stdout


def test_one_process_serves_16_cells_on_cuda_each_within_10_ms(tmp_path):
    json_path = tmp_path / 'bench.json'
    result = run_mcf(
        'bench', '--device', 'cuda', '--cells', '16', '--duration', '10', '--json', str(json_path), timeout=400
    )
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    cells = json.loads(json_path.read_text())['monitor']['cells']
    assert len(cells) == 16
    for cell in cells:
        assert cell['p99_ms'] <= 10.0, cell
        assert cell['windows'] >= 0.99 * cell['frames'], f'windows of {cell["cell"]} were dropped: {cell}'
