"""Both launch files under the real `launch` and `launch_ros` (`../shared/ros-upstream`), from a pip install
and from a colcon workspace, as users install the package: the node goes active and publishes ~/scores,
`autostart:=false` leaves it unconfigured, the replay stops when the bag has been played, and SIGINT ends
everything with exit 0. The child's PATH lacks this venv's bin/, so nothing is found there by accident."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from live_cell import LiveCell
from mcf_process import run_mcf

from mcf_ros import ros_env

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / 'shared' / 'ros-upstream'
RUN_LAUNCH = Path(__file__).with_name('run_launch.py')
# What a source tarball of the package holds: what setup.py installs, nothing of the developer's tree.
SOURCES = ['mcf_ros', 'launch', 'config', 'models', 'resource', 'libexec', 'package.xml', 'setup.py']
SITE_PACKAGES = f'lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages'

pytestmark = pytest.mark.skipif(
    not (UPSTREAM / 'launch_ros').is_dir(),
    reason=f'{UPSTREAM} is absent (a clone without ../shared): the real launch and launch_ros are not here',
)


@dataclass
class Install:
    kind: str  # pip or colcon
    prefix: Path  # what AMENT_PREFIX_PATH names: share/mcf_ros, lib/mcf_ros/<executables>
    site_packages: Path

    def launch_file(self, name: str) -> Path:
        return self.prefix / 'share' / 'mcf_ros' / 'launch' / name

    def env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        path = os.pathsep.join(p for p in os.environ.get('PATH', '').split(os.pathsep) if p != venv_bin)
        python_path = [str(UPSTREAM), str(self.site_packages), os.environ.get('PYTHONPATH')]
        ament = [str(self.prefix), os.environ.get('AMENT_PREFIX_PATH')]
        return {
            **os.environ,
            'PATH': path,
            'PYTHONPATH': os.pathsep.join(filter(None, python_path)),
            'AMENT_PREFIX_PATH': os.pathsep.join(filter(None, ament)),
        }


def copy_sources(destination: Path) -> Path:
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns('__pycache__'))
        else:
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope='module', params=['pip', 'colcon'])
def install(request, tmp_path_factory) -> Install:
    """The package installed as a user would: `pip install` into a prefix, or `colcon build` of a workspace."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == 'pip':
        source = copy_sources(root / 'source')
        prefix = root / 'prefix'
        # --ignore-installed: without it pip uninstalls the copy this test session runs from.
        command = [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation', '--ignore-installed']
        command += ['--prefix', prefix]
        result = subprocess.run([*command, source], capture_output=True, text=True, timeout=300)
    else:
        copy_sources(root / 'src' / 'mcf_ros')
        prefix = root / 'install' / 'mcf_ros'
        colcon = shutil.which('colcon', path=str(Path(sys.executable).parent))
        assert colcon, 'colcon is not installed: pip install -e ".[test]"'
        result = subprocess.run([colcon, 'build'], cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (prefix / 'lib' / 'mcf_ros' / 'monitor').is_file()
    return Install(request.param, prefix, prefix / SITE_PACKAGES)


@pytest.fixture(scope='module')
def short_bag(tmp_path_factory):
    bag = tmp_path_factory.mktemp('launch') / 'cell'
    result = run_mcf('sim', '--out', str(bag), '--duration', '8', '--seed', '5', timeout=300)
    assert result.returncode == 0, result.stderr
    return bag


def start_launch(install: Install, name: str, log: Path, *arguments: str) -> subprocess.Popen:
    command = [sys.executable, str(RUN_LAUNCH), str(install.launch_file(name)), *arguments]
    output = {'stdout': log.open('w'), 'stderr': subprocess.STDOUT, 'text': True}
    # A process group of its own, so that SIGINT reaches every process the way ctrl-c in a terminal does.
    return subprocess.Popen(command, env=install.env(), start_new_session=True, **output)


def finish(launch: subprocess.Popen, log: Path, interrupt: bool, processes: int) -> str:
    """End a launch (ctrl-c, or wait for it to stop itself) and check that it and every process exited 0."""
    try:
        if interrupt:
            os.killpg(launch.pid, signal.SIGINT)
        code = launch.wait(120)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever outlived the launch
            os.killpg(launch.pid, signal.SIGKILL)
        time.sleep(0.5)
        ros_env.remove_orphaned_shm_segments()
    text = log.read_text()
    assert code == 0, text
    assert 'process has died' not in text and 'Traceback' not in text, text
    assert text.count('process has finished cleanly') == processes, text
    return text


def test_monitor_launch_goes_active_and_scores_and_exits_0_on_sigint(install, tmp_path):
    log = tmp_path / 'launch.log'
    launch = start_launch(install, 'monitor.launch.py', log, 'image_topic:=/camera/image_raw')
    with LiveCell() as cell:
        try:
            cell.wait_for(lambda: len(cell.received.scores) >= 10, 60, '~/scores from the launched node')
            assert cell.state() == 'active'
        finally:
            finish(launch, log, interrupt=True, processes=1)


def test_monitor_launch_without_autostart_stays_unconfigured(install, tmp_path):
    log = tmp_path / 'launch.log'
    launch = start_launch(install, 'monitor.launch.py', log, 'autostart:=false')
    with LiveCell() as cell:
        try:
            assert cell.state(timeout=60) == 'unconfigured'
            time.sleep(1.5)
            assert not cell.received.scores, 'an unconfigured node scores nothing'
            assert cell.state() == 'unconfigured'
        finally:
            finish(launch, log, interrupt=True, processes=1)


@pytest.mark.parametrize('install', ['pip'], indirect=True)  # the launch file is the same in either install
def test_monitor_launch_with_cells_runs_a_monitor_in_each_cells_namespace(install, tmp_path):
    log = tmp_path / 'launch.log'
    launch = start_launch(install, 'monitor.launch.py', log, 'cells:=line_1,line_2')
    with LiveCell(namespace='/line_1') as cell:
        try:
            cell.wait_for(lambda: len(cell.received.scores) >= 10, 60, '~/scores of /line_1/mcf_monitor')
            assert cell.state('line_2/mcf_monitor') == 'active'
        finally:
            text = finish(launch, log, interrupt=True, processes=1)
    assert '[line_1.mcf_monitor]: active on' in text and '[line_2.mcf_monitor]: active on' in text, text


def test_replay_launch_scores_the_bag_and_stops_when_it_has_been_played(install, short_bag, tmp_path):
    log = tmp_path / 'launch.log'
    with LiveCell(publish=False) as cell:
        launch = start_launch(install, 'replay.launch.py', log, f'bag:={short_bag}')
        text = finish(launch, log, interrupt=False, processes=2)
        windows = len(cell.received.scores)
    print(f'\n{windows} windows scored from the {install.kind} install')
    assert windows >= 100, text
