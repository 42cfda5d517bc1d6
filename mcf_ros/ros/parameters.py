"""The monitor node's parameters: each declared with a description and range, and their allowed choices."""

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.qos import ReliabilityPolicy

from mcf_ros.errors import UserError

RELIABILITY = {
    'best_effort': ReliabilityPolicy.BEST_EFFORT,
    'reliable': ReliabilityPolicy.RELIABLE,
    'best_available': ReliabilityPolicy.BEST_AVAILABLE,
}


def _float_range(low, high):
    return {'floating_point_range': [FloatingPointRange(from_value=float(low), to_value=float(high))]}


def _int_range(low, high):
    return {'integer_range': [IntegerRange(from_value=low, to_value=high, step=1)]}


# name: (default, description, range)
PARAMETERS = {
    'model_path': ('', 'model artifact (.mcf); empty = the shipped models/ur5e_cell.mcf', {}),
    'image_topic': ('camera/image_raw', 'camera topic (the raw one; compressed reads <image_topic>/compressed)', {}),
    'image_transport': ('raw', 'raw (sensor_msgs/Image) or compressed (CompressedImage, JPEG or PNG)', {}),
    'joint_topic': ('joint_states', 'sensor_msgs/JointState topic of the arm (other joints on it are ignored)', {}),
    'device': ('auto', 'auto (cuda when present), cpu or cuda', {}),
    'cpu_threads': (1, 'torch threads for CPU inference (the executor needs a core too)', _int_range(1, 256)),
    'hop_frames': (1, "score every N-th frame (the window length is the model's)", _int_range(1, 100)),
    'sync_slop_s': (0.0, 'largest stamp gap of a paired frame and joint state; 0 = auto', _float_range(0.0, 1.0)),
    'max_latency_s': (0.2, 'transport delay the sync queues must absorb', _float_range(0.01, 5.0)),
    'image_reliability': ('best_effort', 'camera subscription: best_effort, reliable or best_available', {}),
    'image_queue_depth': (2, 'camera subscription depth', _int_range(1, 100)),
    'joint_queue_depth': (100, 'joint state subscription depth', _int_range(1, 10000)),
    'threshold_override': (0.0, 'anomaly threshold; 0 = the calibrated one', _float_range(0.0, 1e9)),
    'flag_persistence': (0, 'windows past threshold to raise or clear the flag; 0 = calibrated', _int_range(0, 1000)),
    'joint_check_timeout_s': (
        2.0, 'activate waits this long for joint states to check their names against the model; 0 = no wait',
        _float_range(0.0, 60.0),
    ),
    'stale_after_s': (0.5, 'a stream silent this long is lost: the other is scored alone', _float_range(0.05, 60.0)),
    'diagnostics_period_s': (1.0, 'period of /diagnostics', _float_range(0.05, 60.0)),
    'overlay_hz': (10.0, 'largest ~/overlay rate (only while subscribed); 0 = off', _float_range(0.0, 1000.0)),
    'clip_dir': ('', 'anomaly clips (one MCAP bag per flag episode) and episodes.jsonl go here; empty = off', {}),
    'clip_pre_s': (5.0, 'a clip starts this long before its episode', _float_range(0.0, 120.0)),
    'clip_post_s': (2.0, 'a clip ends this long after its episode', _float_range(0.0, 120.0)),
    'clip_max_mb': (1000, 'clips in clip_dir take at most this (oldest removed first); bounds the input kept in memory',
                    _int_range(1, 1_000_000)),
    'mark_normal_s': (
        0.0, '~/mark_normal marks the last N seconds as normal running; 0 = the last flag episode',
        _float_range(0.0, 600.0),
    ),
    'feedback_dir': ('', 'models recalibrated by ~/mark_normal are saved here; empty = $ROS_HOME/mcf_ros (~/.ros)', {}),
    'inference_delay_s': (0.0, 'testing only: extra seconds per window (overload)', _float_range(0.0, 10.0)),
}  # fmt: skip
CHOICES = {
    'device': ('auto', 'cpu', 'cuda'),
    'image_reliability': tuple(RELIABILITY),
    'image_transport': ('raw', 'compressed'),
}


def declare_parameters(node) -> None:
    """Declare every parameter on `node` with its descriptor."""
    for name, (default, description, ranges) in PARAMETERS.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=description, **ranges))


def check_choices(node) -> None:
    """Raise UserError naming a parameter whose value is not one of its choices."""
    for name, choices in CHOICES.items():
        value = node.get_parameter(name).value
        if value not in choices:
            raise UserError(f'parameter {name} must be one of {", ".join(choices)}, got {value!r}')
