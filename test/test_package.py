"""Packaging: a valid ament_python package for colcon, and a pip wheel that carries data and the `mcf` script."""

import ast
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_DEPENDENCIES = [
    'rclpy', 'sensor_msgs', 'std_msgs', 'diagnostic_msgs', 'visualization_msgs', 'rosgraph_msgs',
    'message_filters', 'cv_bridge', 'launch_ros', 'python3-torch', 'python3-numpy', 'lifecycle_msgs',
    'diagnostic_updater',
]  # fmt: skip


def test_package_xml_is_format_3_ament_python_with_the_runtime_dependencies():
    package = ET.parse(ROOT / 'package.xml').getroot()
    assert package.get('format') == '3'
    assert package.findtext('name') == 'mcf_ros'
    assert package.findtext('export/build_type') == 'ament_python'
    exec_depends = {e.text for e in package.iter('exec_depend')}
    missing = [d for d in RUNTIME_DEPENDENCIES if d not in exec_depends]
    assert not missing, f'package.xml lacks exec_depend on {missing}'


def test_colcon_layout_is_complete():
    for path in ('resource/mcf_ros', 'libexec/monitor', 'mcf_ros/__init__.py', 'config/fastdds_shm.xml'):
        assert (ROOT / path).exists(), f'{path} is missing'
    for folder in ('launch', 'config', 'models', 'test'):
        assert (ROOT / folder).is_dir(), f'{folder}/ is missing'


def test_wheel_installs_data_files_and_the_executables_where_ros_looks(tmp_path):
    subprocess.run(
        [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q', '-w', str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob('mcf_ros-*.whl')
    names = zipfile.ZipFile(wheel).namelist()
    share = 'mcf_ros-0.1.0.data/data/share'
    for expected in (
        f'{share}/ament_index/resource_index/packages/mcf_ros',
        f'{share}/mcf_ros/package.xml',
        f'{share}/mcf_ros/config/fastdds_shm.xml',
        f'{share}/mcf_ros/launch/replay.launch.py',
        f'{share}/mcf_ros/launch/monitor.launch.py',
        f'{share}/mcf_ros/config/monitor.yaml',
        f'{share}/mcf_ros/config/monitor.rviz',
        f'{share}/mcf_ros/models/ur5e_cell.mcf',
        f'{share}/mcf_ros/models/ur5e_cell.onnx',
    ):
        assert expected in names, f'the wheel does not install {expected}'
    for name in ('mcf', 'monitor'):  # where launch_ros and `ros2 run` look
        info = zipfile.ZipFile(wheel).getinfo(f'mcf_ros-0.1.0.data/data/lib/mcf_ros/{name}')
        assert info.external_attr >> 16 & 0o111, f'lib/mcf_ros/{name} is not executable'
    entry_points = zipfile.ZipFile(wheel).read('mcf_ros-0.1.0.dist-info/entry_points.txt').decode()
    assert 'mcf = mcf_ros.cli:main' in entry_points
    assert 'monitor = mcf_ros.ros.monitor:main' in entry_points


def launch_arguments(path: Path) -> set[str]:
    """Return the names in the file's ARGUMENTS table (each becomes a DeclareLaunchArgument)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', None) == 'ARGUMENTS':
            return {key.value for key in node.value.keys}
    raise AssertionError(f'{path} has no ARGUMENTS table')


def test_launch_files_declare_their_arguments():
    assert launch_arguments(ROOT / 'launch/replay.launch.py') == {'bag', 'rate', 'start_offset', 'model', 'rviz'}
    assert launch_arguments(ROOT / 'launch/monitor.launch.py') == {
        'model', 'params_file', 'namespace', 'cells', 'image_topic', 'image_transport', 'joint_topic',
        'use_sim_time', 'log_level', 'autostart',
    }  # fmt: skip


def test_rviz_config_shows_the_overlay_and_the_markers():
    rviz = (ROOT / 'config/monitor.rviz').read_text()
    for expected in ('rviz_default_plugins/Image', 'Value: /mcf_monitor/overlay', 'rviz_default_plugins/MarkerArray',
                     'Value: /mcf_monitor/markers'):  # fmt: skip
        assert expected in rviz, f'monitor.rviz lacks {expected}'


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / 'README.md').read_text()
    ci = (ROOT / '.ci/run').read_text()
    commands = [
        line for line in readme.splitlines() if 'python -m pytest' in line and line.startswith('python3 -m venv')
    ]
    assert len(commands) == 1, f'README must show exactly one test command, found {commands}'
    assert commands[0] in ci.splitlines(), '.ci/run does not run the README test command verbatim'
