"""Regression-test a model on a bag: `ros2 launch mcf_ros replay.launch.py bag:=DIR [model:=M] [rviz:=true]`.

Starts the monitor on sim time, the bag player (`mcf replay`, with /clock), and optionally rviz
with config/monitor.rviz (overlay image and markers). Without rviz, everything stops when the bag has
been played.
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    EmitEvent,
    ExecuteProcess,
    IncludeLaunchDescription,
    RegisterEventHandler,
)
from launch.conditions import IfCondition, UnlessCondition
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage, FindPackageShare

ARGUMENTS = {
    'bag': (None, 'rosbag2 directory (MCAP or sqlite3) to replay'),
    'rate': ('1.0', 'replay speed factor'),
    'start_offset': ('0.0', 'seconds of the bag to skip'),
    'model': ('', 'model artifact (.mcf); empty = the shipped default-cell model'),
    'rviz': ('false', 'also start rviz2 with config/monitor.rviz'),
}


def generate_launch_description():
    config = LaunchConfiguration
    share = FindPackageShare('mcf_ros')
    declared = [
        DeclareLaunchArgument(name, description=text, **({} if default is None else {'default_value': default}))
        for name, (default, text) in ARGUMENTS.items()
    ]
    monitor = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(PathJoinSubstitution([share, 'launch', 'monitor.launch.py'])),
        launch_arguments={'model': config('model'), 'use_sim_time': 'true'}.items(),
    )
    options = ['--rate', config('rate'), '--start-offset', config('start_offset'), '--wait-for-subscribers', '10']
    player = ExecuteProcess(
        cmd=[ExecutableInPackage('mcf', 'mcf_ros'), 'replay', config('bag'), *options], output='screen'
    )
    rviz = Node(
        package='rviz2',
        executable='rviz2',
        arguments=['-d', PathJoinSubstitution([share, 'config', 'monitor.rviz'])],
        condition=IfCondition(config('rviz')),
    )
    stop_when_played = RegisterEventHandler(
        OnProcessExit(target_action=player, on_exit=[EmitEvent(event=Shutdown(reason='the bag has been played'))]),
        condition=UnlessCondition(config('rviz')),
    )
    return LaunchDescription([*declared, monitor, player, rviz, stop_when_played])
