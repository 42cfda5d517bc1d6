"""Replay a rosbag2 over DDS with /clock: `ros2 launch mcf_ros replay.launch.py bag:=DIR [rate:=R]`."""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument('bag', description='rosbag2 directory (MCAP or sqlite3) to replay'),
            DeclareLaunchArgument('rate', default_value='1.0', description='replay speed factor'),
            DeclareLaunchArgument('start_offset', default_value='0.0', description='seconds of the bag to skip'),
            ExecuteProcess(
                cmd=[
                    'mcf',
                    'replay',
                    LaunchConfiguration('bag'),
                    '--rate',
                    LaunchConfiguration('rate'),
                    '--start-offset',
                    LaunchConfiguration('start_offset'),
                ],
                output='screen',
            ),
        ]
    )
