"""`ros2 launch FILE NAME:=VALUE ...` without ros2cli: runs a launch file through `launch.LaunchService`,
which handles SIGINT as `ros2 launch` does, and exits with its return code."""

import sys

from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource


def main() -> int:
    path, *arguments = sys.argv[1:]
    launch_arguments = [argument.split(':=', 1) for argument in arguments]
    service = LaunchService()
    source = PythonLaunchDescriptionSource(path)
    service.include_launch_description(
        LaunchDescription([IncludeLaunchDescription(source, launch_arguments=launch_arguments)])
    )
    return service.run()


if __name__ == '__main__':
    sys.exit(main())
