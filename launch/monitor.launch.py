"""Run the mcf monitor: `ros2 launch mcf_ros monitor.launch.py model:=cell.mcf image_topic:=/cam/image_raw`.

`cells:=line_1,line_2` runs one monitor per cell, in namespaces /line_1, /line_2, in one process.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = {
    'model': ('', 'model artifact (.mcf); empty = the shipped default-cell model'),
    'params_file': (
        PathJoinSubstitution([FindPackageShare('mcf_ros'), 'config', 'monitor.yaml']),
        'parameter file (config/monitor.yaml)',
    ),
    'namespace': ('', 'namespace of the node (of one cell; with cells, leave it empty)'),
    'cells': ('', 'comma-separated cell names: one monitor per cell, each in its namespace, in one process'),
    'image_topic': ('camera/image_raw', 'camera topic (the raw one; compressed reads <image_topic>/compressed)'),
    'image_transport': ('raw', 'raw (sensor_msgs/Image) or compressed (CompressedImage, JPEG or PNG)'),
    'joint_topic': ('joint_states', 'joint state topic (sensor_msgs/JointState)'),
    'use_sim_time': ('false', 'follow /clock (bag replay)'),
    'log_level': ('info', 'logging level'),
    'autostart': ('true', 'configure and activate at once; false leaves it to a lifecycle manager'),
}


def monitor(context) -> list[Node]:
    config = LaunchConfiguration
    cells = config('cells').perform(context)
    namespace = config('namespace').perform(context)
    if cells and namespace:
        raise ValueError(f'namespace:={namespace} and cells:={cells}: each cell is its own namespace; give one')
    autostart = IfCondition(config('autostart')).evaluate(context)
    return [
        Node(
            package='mcf_ros',
            executable='monitor',
            name='mcf_monitor',
            namespace=None if cells else namespace,  # '' would still remap every cell's node to /
            output='screen',
            arguments=(['--autostart'] if autostart else []) + (['--cells', cells] if cells else []),
            parameters=[
                config('params_file'),
                {
                    'model_path': config('model'),
                    'image_topic': config('image_topic'),
                    'image_transport': config('image_transport'),
                    'joint_topic': config('joint_topic'),
                    'use_sim_time': config('use_sim_time'),
                },
            ],
            ros_arguments=['--log-level', config('log_level')],
        )
    ]


def generate_launch_description():
    declared = [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in ARGUMENTS.items()
    ]
    return LaunchDescription([*declared, OpaqueFunction(function=monitor)])
