"""The monitor with the real ROS packages a distro has (`../shared/ros-upstream`: message_filters and
diagnostic_updater, unmodified), over real DDS: its DDS tests run again in a child pytest with them first
on PYTHONPATH. Where `../shared` is absent (a user's clone), this skips and says why."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import DRIVER_CELL_ENV

from mcf_ros import ros_env

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / 'shared' / 'ros-upstream'
DDS_TESTS = [
    'test/test_monitor_fuzz.py',
    'test/test_monitor.py::test_lifecycle_transitions_start_and_stop_scoring',
    'test/test_monitor_drivers.py',
]

pytestmark = pytest.mark.skipif(
    not (UPSTREAM / 'message_filters').is_dir(),
    reason=f'{UPSTREAM} is absent (a clone without ../shared): the real message_filters and diagnostic_updater '
    'are not here to test against',
)


def with_upstream() -> dict[str, str]:
    return {**os.environ, 'PYTHONPATH': os.pathsep.join(filter(None, [str(UPSTREAM), os.environ.get('PYTHONPATH')]))}


def test_the_seam_picks_the_real_packages_when_they_are_importable():
    code = 'from mcf_ros.ros.seams import BACKENDS; print(BACKENDS["sync"], BACKENDS["diagnostics"])'
    result = subprocess.run([sys.executable, '-c', code], env=with_upstream(), capture_output=True, text=True)
    assert result.stdout.split() == ['message_filters', 'diagnostic_updater'], result.stderr


def test_the_monitors_dds_tests_pass_with_the_real_message_filters_and_diagnostic_updater(tmp_path, driver_cell_dir):
    """Drivers' data is scored with the flags `mcf eval` gives, /diagnostics carries every key, malformed input
    is counted, lifecycle transitions start and stop scoring: the same assertions as with the stand-ins."""
    command = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', f'--basetemp={tmp_path / "t"}']
    env = {**with_upstream(), DRIVER_CELL_ENV: str(driver_cell_dir)}  # the recordings this run already simulated
    try:
        result = subprocess.run([*command, *DDS_TESTS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    finally:  # processes a failing child test killed can leave shared memory that later tests would count
        time.sleep(1.0)
        ros_env.remove_orphaned_shm_segments()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
