"""The `mcf` command: its subcommands, and one-line errors (no traceback) for user mistakes."""

import shutil
import subprocess

import pytest
from mcf_process import run_mcf
from synthetic_bags import write_camera_joint_bag

from mcf_ros.data.bags import bag_writer
from mcf_ros.faults.catalogue import CATALOGUE

SUBCOMMANDS = ['sim', 'train', 'eval', 'replay', 'record', 'demo', 'bench']


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
        assert f'    {name} ' in result.stdout, f'`mcf --help` does not list {name}:\n{result.stdout}'


def test_demo_with_an_unknown_fault_is_a_one_line_error(tmp_path):
    assert_one_line_error(run_mcf('demo', '--out', str(tmp_path / 'd'), '--faults', 'no_such_fault'), 'unknown fault')


@pytest.mark.parametrize(
    ('args', 'expected'),
    [
        (['--duration', '0'], '--duration must be positive'),
        (['--model', '/nonexistent/cell.mcf'], 'model not found'),
        (['--json', '/nonexistent/dir/bench.json'], '--json: no such directory'),
    ],
)
def test_bench_bad_arguments_are_one_line_errors(args, expected):
    assert_one_line_error(run_mcf('bench', *args), expected)


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


@pytest.mark.parametrize(
    ('args', 'expected'),
    [
        (['--faults', 'gremlins'], 'unknown fault gremlins'),
        (['--duration', '10', '--faults', 'collision'], 'too short for these faults'),
        (['--task', 'weld_seam', '--duration', '40', '--faults', 'dropped_payload'], 'needs a task that carries parts'),
        ([], '--out is required'),
    ],
)
def test_sim_rejects_bad_requests_in_one_line(tmp_path, args, expected):
    out = [] if args == [] else ['--out', str(tmp_path / 'bag')]
    assert_one_line_error(run_mcf('sim', *out, *args), expected)


def test_sim_lists_every_fault_with_its_modality():
    result = run_mcf('sim', '--list-faults')
    assert result.returncode == 0
    for name, spec in CATALOGUE.items():
        assert any(line.split()[:2] == [name, spec.modality] for line in result.stdout.splitlines()), name


def test_record_refuses_to_overwrite_an_existing_output(small_bag):
    assert_one_line_error(run_mcf('record', str(small_bag), '--topics', '/joint_states'), 'output already exists')


def test_record_rejects_a_non_positive_duration(tmp_path):
    result = run_mcf('record', str(tmp_path / 'out'), '--topics', '/x', '--duration', '0')
    assert_one_line_error(result, 'must be positive')
