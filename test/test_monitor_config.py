"""The monitor's parameters: the shipped YAML and the node's descriptors say the same (the docs: test_docs.py)."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mcf_ros.ros.monitor import cell_names
from mcf_ros.ros.parameters import PARAMETERS

ROOT = Path(__file__).resolve().parent.parent


def test_the_shipped_params_file_sets_every_parameter_to_its_default():
    shipped = yaml.safe_load((ROOT / 'config/monitor.yaml').read_text())['/**']['ros__parameters']
    assert shipped == {name: default for name, (default, _, _) in PARAMETERS.items()}


@pytest.mark.parametrize(
    ('ros_args', 'expected'),
    [
        (['-p', 'stale_after_s:=abc'], "parameter 'stale_after_s' to 'abc' of type 'STRING'"),
        (['-p', 'stale_after_s:=100.0'], 'stale_after_s out of range'),
        (['-p', 'cpu_threads:=0'], 'cpu_threads out of range'),
        (['-p', 'bogus'], "Couldn't parse parameter override rule: '-p bogus'"),
    ],
)
def test_bad_parameters_on_the_command_line_are_one_line_errors(ros_args, expected):
    command = [sys.executable, '-m', 'mcf_ros.ros.monitor', '--autostart', '--ros-args', *ros_args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith('mcf_monitor: error: ') and expected in lines[0], lines


@pytest.mark.parametrize('cells', ['a,a', 'a,b-c', ''])
def test_cell_names_are_distinct_identifiers(cells):
    with pytest.raises(
        ValueError, match=f'--cells takes distinct names of letters, digits and _, comma-separated; got {cells}$'
    ):
        cell_names(['monitor', '--cells', cells, '--ros-args', '-p', 'x:=1'])


def test_cells_are_namespaces_and_without_them_there_is_one_monitor():
    assert cell_names(['monitor', '--cells', 'line_1,line_2', '--ros-args', '-p', 'x:=1']) == ['line_1', 'line_2']
    assert cell_names(['monitor', '--autostart']) == ['']


@pytest.mark.parametrize(
    ('arguments', 'error'),
    [
        (['--cells', 'a,a'], '--cells takes distinct names of letters, digits and _, comma-separated; got a,a'),
        (
            ['--cells', 'a,b', '--ros-args', '-r', '__ns:=/plant'],
            'a namespace remap (__ns) puts every cell in /plant: drop it to use --cells',
        ),
    ],
    ids=['names', 'namespace remap'],
)
def test_bad_cells_on_the_command_line_are_a_one_line_error(arguments, error):
    command = [sys.executable, '-m', 'mcf_ros.ros.monitor', '--autostart', *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert (result.stdout + result.stderr).strip().splitlines() == [f'mcf_monitor: error: {error}']
