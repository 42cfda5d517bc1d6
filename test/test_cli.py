"""The `mcf` command: its subcommands, and one-line errors (no traceback) for user mistakes."""

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mcf_process import run_mcf
from synthetic_bags import write_camera_joint_bag

from mcf_ros.data.bags import bag_writer
from mcf_ros.faults.catalogue import CATALOGUE


def torch_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


SUBCOMMANDS = ['sim', 'inject', 'inspect', 'train', 'calibrate', 'eval', 'replay', 'record', 'demo', 'bench']


def assert_one_line_error(result, expected_text):
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0, f'exit code 0 for a user mistake; stderr: {result.stderr}'
    assert 'Traceback' not in result.stderr, result.stderr
    assert len(lines) == 1, f'expected one error line, got {len(lines)}:\n{result.stderr}'
    assert expected_text in lines[0], lines[0]


@pytest.fixture(scope='module')
def small_bag(tmp_path_factory):
    return write_camera_joint_bag(tmp_path_factory.mktemp('small') / 'bag', duration_s=0.5, width=32, height=24)


def test_mcf_on_path_lists_every_subcommand():
    mcf = shutil.which('mcf')
    assert mcf, 'the install did not put `mcf` on PATH'
    result = subprocess.run([mcf, '--help'], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for name in SUBCOMMANDS:
        listed = re.search(rf'^    {name}(\s|$)', result.stdout, re.MULTILINE)  # a long name has its help below
        assert listed, f'`mcf --help` does not list {name}:\n{result.stdout}'


def test_replay_of_missing_bag_is_a_one_line_error(tmp_path):
    assert_one_line_error(run_mcf('replay', str(tmp_path / 'nope')), 'bag not found')


def test_replay_of_a_directory_that_is_no_bag_is_a_one_line_error(tmp_path):
    assert_one_line_error(run_mcf('replay', str(tmp_path)), 'not a rosbag2 directory')


def test_replay_of_a_bag_without_messages_is_a_one_line_error(tmp_path):
    with bag_writer(tmp_path / 'empty') as writer:
        writer.add_topic('/joint_states', 'sensor_msgs/msg/JointState')
    assert_one_line_error(run_mcf('replay', str(tmp_path / 'empty')), 'bag has no messages')


def test_replay_of_an_unknown_topic_is_a_one_line_error(small_bag):
    result = run_mcf('replay', str(small_bag), '--topics', '/camera/image_raw', '/no_such_topic')
    assert_one_line_error(result, 'topic /no_such_topic not in bag')


@pytest.mark.parametrize(
    'damage',
    [
        pytest.param(lambda data: data[:5000], id='truncated'),
        pytest.param(lambda data: data[:100] + b'\xff' * 3900 + data[4000:], id='garbled'),
    ],
)
def test_replay_of_a_corrupt_mcap_is_a_one_line_error(small_bag, tmp_path, damage):
    corrupt = tmp_path / 'corrupt'
    shutil.copytree(small_bag, corrupt)
    mcap = next(corrupt.glob('*.mcap'))
    mcap.write_bytes(damage(mcap.read_bytes()))
    result = run_mcf('replay', str(corrupt), '--quiet')
    assert_one_line_error(result, str(corrupt))


@pytest.mark.parametrize(
    ('args', 'expected'),
    [
        (['--rate', '0'], 'must be positive'),
        (['--rate', 'fast'], 'expected a number'),
        (['--start-offset', '-1'], 'must be >= 0'),
        (['--start-offset', '99'], 'past the end of the bag'),
    ],
)
def test_replay_rejects_bad_arguments_in_one_line(small_bag, args, expected):
    assert_one_line_error(run_mcf('replay', str(small_bag), *args), expected)


def test_sim_lists_every_fault_with_its_modality():
    result = run_mcf('sim', '--list-faults')
    assert result.returncode == 0
    for name, spec in CATALOGUE.items():
        assert any(line.split()[:2] == [name, spec.modality] for line in result.stdout.splitlines()), name


# Every subcommand's bad arguments and bad files. Placeholders: {file} a plain file, {dir} an empty
# directory, {tmp} a fresh path's parent, {bag} a small valid bag, {model} the shipped model.
BAD_INPUT = [
    ('sim', ['--out', '{tmp}/b', '--duration', '-1'], 'must be positive'),
    ('sim', ['--out', '{tmp}/b', '--width', '0'], 'must be positive'),
    ('sim', ['--out', '{tmp}/b', '--height', '5000'], 'must be 8 to 4096 pixels'),
    ('sim', ['--out', '{tmp}/b', '--seed', 'abc'], "invalid int value: 'abc'"),
    ('sim', ['--out', '{tmp}/b', '--task', 'paint'], "the ur5e cell runs pick_place, weld_seam, not 'paint'"),
    ('sim', ['--out', '{tmp}/b', '--cell', 'kuka'], "unknown cell 'kuka'; choose one of ur5e, yumi"),
    ('sim', ['--out', '{tmp}/b', '--light', '5'], '--light 5 is outside 0.2 to 3'),
    ('sim', ['--out', '{tmp}/b', '--pacing', 'shift'], "unknown pacing 'shift'; choose one of takt, operator"),
    ('inject', ['{tmp}/none', '--out', '{tmp}/o'], 'bag not found'),
    ('inject', ['{tmp}/none', '--out', '{tmp}/o', '--faults', 'gremlins'], 'unknown evaluation fault gremlins'),
    ('inject', ['--out', '{tmp}/o'], 'BAG and --out are required'),
    ('sim', ['--out', '{tmp}/b', '--faults', 'gremlins'], 'unknown fault gremlins'),
    ('sim', ['--out', '{tmp}/b', '--duration', '10', '--faults', 'collision'], 'too short for these faults'),
    ('sim', ['--out', '{tmp}/b', '--task', 'weld_seam', '--duration', '40', '--faults', 'dropped_payload'],
     'needs a task that carries parts'),
    ('sim', [], '--out is required'),
    ('sim', ['--out', '{tmp}/b', '--driver', 'flaky'], 'unknown driver habit flaky'),
    ('sim', ['--out', '{tmp}/b', '--driver', 'jpeg,png'], 'at most one camera habit'),
    ('sim', ['--out', '{bag}'], 'output already exists'),
    ('sim', ['--out', '{file}/b'], 'is a file'),
    ('sim', ['--out', '{tmp}/b', '--preview', '{file}/p.png'], 'is a file'),
    ('sim', ['--out', '{tmp}/b', '--colour'], 'unrecognized arguments: --colour'),
    ('train', ['--out', '{tmp}/m.mcf'], 'the following arguments are required: --bag'),
    ('train', ['--bag', '{tmp}/none', '--out', '{tmp}/m.mcf'], 'bag not found'),
    ('train', ['--bag', '{dir}', '--out', '{tmp}/m.mcf'], 'not a rosbag2 directory'),
    ('train', ['--bag', '{bag}', '--out', '{file}/m.mcf'], 'is a file'),
    ('train', ['--bag', '{bag}', '--out', '{dir}'], 'is a directory'),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--epochs', '0'], 'must be positive'),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--image-size', '20'], 'multiple of 16'),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--resume'], 'no checkpoint to resume from'),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--init-from', '{tmp}/no.mcf'], 'model not found'),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--init-from', '{file}'], 'not an mcf model artifact'),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--camera-topic', '/nope'], 'Image topic /nope'),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--device', 'tpu'], "invalid choice: 'tpu'"),
    ('train', ['--bag', '{bag}', '--out', '{tmp}/m.mcf', '--joints', 'elbow'], '--joints elbow: not on /joint_states'),
    ('calibrate', ['--model', '{model}', '--out', '{tmp}/m.mcf'], 'the following arguments are required: --bag'),
    ('calibrate', ['--model', '{tmp}/no.mcf', '--bag', '{bag}', '--out', '{tmp}/m.mcf'], 'model not found'),
    ('calibrate', ['--model', '{model}', '--bag', '{bag}', '--out', '{model}'], 'is the model itself'),
    ('calibrate', ['--model', '{model}', '--bag', '{bag}', '--out', '{tmp}/m.mcf'], 'does not fit the model'),
    ('calibrate', ['--model', '{model}', '--bag', '{bag}', '--out', '{tmp}/m.mcf', '--false-alarms-per-hour', '0'],
     'must be positive'),
    ('inspect', [], 'the following arguments are required: bag'),
    ('inspect', ['{bag}', '--model', '{tmp}/no.mcf'], 'model not found'),
    ('eval', ['--model', '{tmp}/no.mcf', '--bag', '{bag}', '--report', '{tmp}/r'], 'model not found'),
    ('eval', ['--model', '{file}', '--bag', '{bag}', '--report', '{tmp}/r'], 'not an mcf model artifact'),
    ('eval', ['--model', '{model}', '--bag', '{tmp}/none', '--report', '{tmp}/r'], 'bag not found'),
    ('eval', ['--model', '{model}', '--bag', '{dir}', '--report', '{tmp}/r'], 'not a rosbag2 directory'),
    ('eval', ['--model', '{model}', '--bag', '{bag}', '--report', '{file}'], '--report: '),
    ('eval', ['--model', '{model}', '--bag', '{bag}'], 'the following arguments are required: --report'),
    ('record', ['{bag}', '--topics', '/joint_states'], 'output already exists'),
    ('record', ['{tmp}/out', '--topics', '/x', '--duration', '0'], 'must be positive'),
    ('record', ['{tmp}/out', '--topics', 'bad topic!'], "invalid topic name 'bad topic!'"),
    ('record', ['{file}/out', '--topics', '/x'], 'is a file'),
    ('record', ['{tmp}/out'], 'the following arguments are required: --topics'),
    ('demo', ['--out', '{tmp}/d', '--faults', 'no_such_fault'], 'unknown fault'),
    ('demo', ['--out', '{file}'], '--out: '),
    ('export', [], 'the following arguments are required: --onnx'),
    ('export', ['--onnx', '{tmp}/no.mcf'], 'model not found'),
    ('export', ['--onnx', '{file}'], 'not an mcf model artifact'),
    ('export', ['--onnx', '{model}', '--out', '{file}/m.onnx'], 'is a file'),
    ('bench', ['--duration', '0'], '--duration must be positive'),
    ('bench', ['--cells', '0'], '--cells must be at least 1'),
    ('bench', ['--model', '{tmp}/cell.mcf'], 'model not found'),
    ('bench', ['--json', '{file}/bench.json'], 'is a file'),
    ('bench', ['--device', 'gpu'], "invalid choice: 'gpu'"),
]  # fmt: skip


def test_the_design_doc_counts_these_cases():
    design = (Path(__file__).resolve().parent.parent / 'docs' / 'design.md').read_text()
    assert f'of {len(BAD_INPUT)} such cases across all subcommands is tested' in design


@pytest.fixture(scope='module')
def bad_input_runs(small_bag, tmp_path_factory):
    """Run every BAD_INPUT case at once (each mostly waits on imports), each in a directory of its own
    holding a plain file and an empty directory; return (result, directory, places) per case."""

    def run_case(index):
        command, args, _ = BAD_INPUT[index]
        directory = tmp_path_factory.mktemp(f'bad_input_{index}')
        plain_file = directory / 'plain_file'
        plain_file.write_text('not what was asked for')
        (directory / 'empty_dir').mkdir()
        places = {
            'file': plain_file, 'dir': directory / 'empty_dir', 'tmp': directory, 'bag': small_bag,
            'model': 'models/ur5e_cell.mcf',
        }  # fmt: skip
        return run_mcf(command, *(arg.format(**places) for arg in args)), directory, places

    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(run_case, range(len(BAD_INPUT))))


@pytest.mark.parametrize('index', range(len(BAD_INPUT)), ids=[f'{c}-{i}' for i, (c, _, _) in enumerate(BAD_INPUT)])
def test_bad_arguments_and_files_are_one_line_errors(index, bad_input_runs):
    result, directory, places = bad_input_runs[index]
    assert_one_line_error(result, BAD_INPUT[index][2].format(**places))
    assert sorted(p.name for p in directory.iterdir()) == ['empty_dir', 'plain_file'], 'an error left files behind'


@pytest.mark.skipif(torch_sees_cuda(), reason='this machine has CUDA')
@pytest.mark.parametrize(
    'args',
    [
        ['bench', '--duration', '1'],
        ['train', '--bag', '{bag}', '--out', '{tmp}/m.mcf'],
        ['eval', '--model', 'models/ur5e_cell.mcf', '--bag', '{bag}', '--report', '{tmp}/r'],
    ],
    ids=['bench', 'train', 'eval'],
)
def test_asking_for_cuda_without_a_gpu_is_a_one_line_error(args, small_bag, tmp_path):
    result = run_mcf(*(arg.format(bag=small_bag, tmp=tmp_path) for arg in args), '--device', 'cuda')
    assert_one_line_error(result, 'torch sees no CUDA device')


def test_export_without_the_onnx_packages_is_a_one_line_error(tmp_path):
    hide_onnx = 'import sys; sys.modules["onnxscript"] = None; from mcf_ros.cli import main; sys.exit(main())'
    args = ['export', '--onnx', 'models/ur5e_cell.mcf', '--out', str(tmp_path / 'm.onnx')]
    result = subprocess.run([sys.executable, '-c', hide_onnx, *args], capture_output=True, text=True, timeout=120)
    assert_one_line_error(result, "exporting needs onnxscript: pip install 'mcf_ros[onnx]'")
    assert not (tmp_path / 'm.onnx').exists()


def test_baselines_without_pyod_is_a_one_line_error_before_any_training(small_bag, tmp_path):
    hide_pyod = 'import sys; sys.modules["pyod"] = None; from mcf_ros.cli import main; sys.exit(main())'
    args = ['eval', '--model', 'models/ur5e_cell.mcf', '--bag', str(small_bag), '--report', str(tmp_path / 'r')]
    result = subprocess.run(
        [sys.executable, '-c', hide_pyod, *args, '--baselines'], capture_output=True, text=True, timeout=120
    )
    assert_one_line_error(result, "pip install 'mcf_ros[baselines]'")
