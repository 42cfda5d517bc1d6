"""Confine every test to this host: loopback discovery, a private ROS domain, a temp log dir.

The variables are set once, before any test imports rclpy, and are inherited by the mcf
processes the tests start. Fast DDS shared memory left by killed processes is removed at the
start and the end of the session.
"""

import os
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mcf_ros import ros_env

# Each pytest-xdist worker gets its own domain; serial runs use the first.
FIRST_TEST_DOMAIN = 60


def test_domain_id() -> int:
    """Return this test process's ROS domain: one per xdist worker, all within 0-101."""
    worker = os.environ.get('PYTEST_XDIST_WORKER', 'gw0')
    return FIRST_TEST_DOMAIN + int(worker.removeprefix('gw')) % (ros_env.MAX_DOMAIN_ID - FIRST_TEST_DOMAIN + 1)


test_domain_id.__test__ = False


def pytest_configure(config):
    log_dir = tempfile.mkdtemp(prefix='mcf_test_ros_log_')
    os.environ.update(ros_env.isolated(test_domain_id(), log_dir))


@pytest.fixture(scope='session', autouse=True)
def clean_shared_memory():
    ros_env.remove_orphaned_shm_segments()
    yield
    ros_env.remove_orphaned_shm_segments()


# A child pytest (test_real_ros.py) is handed its parent's simulated driver cell here instead of simulating it again.
DRIVER_CELL_ENV = 'MCF_TEST_DRIVER_CELL'
DRIVER_CELL_RUNS = {
    'normal': ['--seed', '11', '--duration', '30'],
    'faults': ['--seed', '12', '--duration', '30', '--faults', 'camera_black,joint_offset'],
}


@pytest.fixture(scope='session')
def driver_cell_dir(tmp_path_factory) -> Path:
    """A short simulated cell at 128x96, normal and with a camera and a kinematics fault (DRIVER_CELL_RUNS)."""
    if os.environ.get(DRIVER_CELL_ENV):
        return Path(os.environ[DRIVER_CELL_ENV])
    from mcf_process import run_mcf_together

    root = tmp_path_factory.mktemp('drivers')
    size = ['--width', '128', '--height', '96']
    simulations = [['sim', '--out', str(root / name), *size, *args] for name, args in DRIVER_CELL_RUNS.items()]
    for result in run_mcf_together(*simulations, timeout=300):
        assert result.returncode == 0, result.stderr
    return root


@pytest.fixture(scope='session')
def driver_cell(driver_cell_dir):
    """A maker of the driver cell's driver-habit variants: `variant('nan_effort,gripper')` -> (normal, faults) bag
    directories, each made once."""
    from mcf_ros.sim.drivers import parse_habits, rewrite_bag

    def variant(habits: str) -> tuple[Path, Path]:
        if not habits:
            return driver_cell_dir / 'normal', driver_cell_dir / 'faults'
        out = driver_cell_dir / habits.replace(',', '+')
        if not out.exists():
            out.mkdir()
            for name in DRIVER_CELL_RUNS:
                rewrite_bag(driver_cell_dir / name, out / name, parse_habits(habits))
        return out / 'normal', out / 'faults'

    return variant
