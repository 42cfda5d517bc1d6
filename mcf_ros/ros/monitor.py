"""The mcf_monitor lifecycle node: camera and joint states in, anomaly flag, scores and diagnostics out.

- configure: load and validate the model artifact; create the publishers.
- activate: move the model to its device, start the inference thread and the subscriptions.
- deactivate / cleanup: stop and free them.

Joint states feed a message_filters Cache; an ApproximateTimeSynchronizer pairs each frame with a
joint state near its stamp, and the frame then closes a window over the cached joints (the same
WindowBuilder `mcf eval` uses). Windows are scored on their own thread, newest first. When one
stream goes quiet for `stale_after_s`, the other is scored alone (degraded mode); when both do,
nothing is scored and the flag is withheld (stale).

Run: `ros2 run mcf_ros monitor --autostart --ros-args --params-file config/monitor.yaml`, or
`python -m mcf_ros.ros.monitor --autostart`.
"""

import math
import os
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, replace

import cv2
import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.experimental import EventsExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from rclpy.utilities import remove_ros_args
from rclpy.wait_for_message import wait_for_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32
from visualization_msgs.msg import Marker, MarkerArray

from mcf_ros import ros_env
from mcf_ros.data.messages import stamp_ns
from mcf_ros.data.windows import RejectedInputError, Window, WindowBuilder
from mcf_ros.errors import UserError
from mcf_ros.model.artifact import load_artifact
from mcf_ros.model.inference import Detector
from mcf_ros.model.scoring import StreamScorer
from mcf_ros.paths import share_dir
from mcf_ros.presentation import draw_overlay, score_values, state_line
from mcf_ros.ros.runtime import rcl_reason, stop_event
from mcf_ros.ros.seams import (
    BACKENDS,
    ApproximateTimeSynchronizer,
    Cache,
    Subscriber,
    Updater,
    check_image,
    image_rgb,
)
from mcf_ros.ros.worker import LatestWins

NODE_NAME = 'mcf_monitor'
EXIT_USER_ERROR = 2
RCLInvalidROSArgsError = rclpy_implementation.RCLInvalidROSArgsError
LATENCY_WINDOWS = 1000
LOG_EVERY_S = 10.0
SWITCH_INTERVAL_S = 0.0005
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
    'image_topic': ('/camera/image_raw', 'sensor_msgs/Image topic of the cell camera', {}),
    'joint_topic': ('/joint_states', 'sensor_msgs/JointState topic of the arm', {}),
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
        2.0, 'activate waits this long for a joint state to check its names against the model; 0 = no wait',
        _float_range(0.0, 60.0),
    ),
    'stale_after_s': (0.5, 'a stream silent this long is lost: the other is scored alone', _float_range(0.05, 60.0)),
    'diagnostics_period_s': (1.0, 'period of /diagnostics', _float_range(0.05, 60.0)),
    'overlay_hz': (10.0, 'largest ~/overlay rate (only while subscribed); 0 = off', _float_range(0.0, 1000.0)),
    'inference_delay_s': (0.0, 'testing only: extra seconds per window (overload)', _float_range(0.0, 10.0)),
}  # fmt: skip
CHOICES = {'device': ('auto', 'cpu', 'cuda'), 'image_reliability': tuple(RELIABILITY)}


@dataclass
class Job:
    """One window to score, with the frame for the overlay and when its frame arrived."""

    window: Window
    stamp: object  # builtin_interfaces/Time of the window's end, as received
    rgb: np.ndarray | None
    frame_id: str
    received_s: float
    mode: str


class MonitorNode(LifecycleNode):
    """Scores synchronised camera and joint windows with an MCF model and publishes the decision."""

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, description, ranges) in PARAMETERS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=description, **ranges))
        self.counts: Counter[str] = Counter()
        self.mode = 'stale'
        self.error: str | None = None
        self.detector: Detector | None = None
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOWS)
        self._last_logged: dict[str, float] = {}
        self._rates = {'frames': (0, time.monotonic()), 'joint_states': (0, time.monotonic())}
        self._active: list = []
        self._worker: LatestWins | None = None
        self._lock = threading.Lock()
        self._diagnostics = Updater(self, period=self.get_parameter('diagnostics_period_s').value)
        self._diagnostics.setHardwareID(NODE_NAME)
        self._diagnostics.add('monitor', self._diagnose)

    def param(self, name: str):
        """Return a parameter's value."""
        return self.get_parameter(name).value

    # Lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and validate the model; create the publishers."""
        try:
            for name, choices in CHOICES.items():
                if self.param(name) not in choices:
                    raise UserError(f'parameter {name} must be one of {", ".join(choices)}, got {self.param(name)!r}')
            path = self.param('model_path') or str(share_dir() / 'models' / 'ur5e_cell.mcf')
            self.detector = Detector(load_artifact(path), 'cpu')
            self.detector.stream()  # refuses an artifact without calibration
        except UserError as err:
            return self._fail(f'cannot configure: {err}')
        spec = self.detector.spec
        calibration = self.detector.calibration
        self.calibration = replace(
            calibration,
            threshold=self.param('threshold_override') or calibration.threshold,
            persistence=self.param('flag_persistence') or calibration.persistence,
        )
        self.sync_slop_s = self.param('sync_slop_s') or 1.5 / spec.joint_hz
        self.sync_queue_size = math.ceil(spec.joint_hz * (self.sync_slop_s + self.param('max_latency_s'))) + 2
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_anomaly = self.create_lifecycle_publisher(Bool, '~/anomaly', reliable)
        self.pub_concept = self.create_lifecycle_publisher(Float32, '~/concept_score', 10)
        self.pub_scores = self.create_lifecycle_publisher(JointState, '~/scores', 10)
        self.pub_markers = self.create_lifecycle_publisher(MarkerArray, '~/markers', 10)
        self.pub_overlay = self.create_lifecycle_publisher(Image, '~/overlay', 2)
        self.error = None
        self.get_logger().info(
            f'model {self.detector.artifact.model_id} ({path}): joints {list(spec.joint_names)}, '
            f'{spec.length_s:g} s windows, threshold {self.calibration.threshold:.2f}; backends {BACKENDS}'
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the live joint names, move the model to its device, start inference and subscribe."""
        spec = self.detector.spec
        joint_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.param('joint_queue_depth'))
        try:
            self._check_live_joint_names(joint_qos)
            self.detector.to(self.param('device')).compile()
        except UserError as err:
            return self._fail(f'cannot activate: {err}')
        self.error = None
        self.builder = WindowBuilder(spec)
        self.scorer = StreamScorer(self.calibration, spec.length_s)
        self._resolution = self.detector.artifact.header['modalities']['camera'].get('resolution')
        self._frame_id = ''
        self._last_window_s = None
        self._frames_seen = 0
        self._overlay_due = 0.0
        self._last_arrival = {'camera': -math.inf, 'kinematics': -math.inf}
        threads = self.param('cpu_threads')
        # torch's CPU thread count is per thread (OpenMP): set it on the thread that runs the model.
        self._worker = LatestWins(self._score, setup=lambda: torch.set_num_threads(threads))
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.param('image_queue_depth'),
            reliability=RELIABILITY[self.param('image_reliability')],
        )
        overrides = QoSOverridingOptions.with_default_policies()
        image_sub = Subscriber(
            self, Image, self.param('image_topic'), qos_profile=image_qos, qos_overriding_options=overrides
        )
        joint_sub = Subscriber(
            self, JointState, self.param('joint_topic'), qos_profile=joint_qos, qos_overriding_options=overrides
        )
        joint_sub.registerCallback(self._on_joint_state)
        joint_cache = Cache(joint_sub, self.sync_queue_size)
        image_sub.registerCallback(self._on_frame)  # before the synchronizer: frames are checked first
        sync = ApproximateTimeSynchronizer([image_sub, joint_cache], self.sync_queue_size, self.sync_slop_s)
        sync.registerCallback(self._on_synchronised)
        self._subscriptions_in_use = [image_sub.sub, joint_sub.sub]
        # Stream loss is judged on the steady clock: under sim time a stalled /clock must not hide it.
        self._tick_timer = self.create_timer(
            1.0 / spec.camera_hz, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.mode = 'stale'
        self.get_logger().info(
            f'active on {self.detector.device}: {self.param("image_topic")} + {self.param("joint_topic")}, '
            f'sync slop {1e3 * self.sync_slop_s:.1f} ms, queues {self.sync_queue_size}'
        )
        return super().on_activate(state)

    def _check_live_joint_names(self, qos: QoSProfile) -> None:
        """Raise UserError if a joint state arriving within `joint_check_timeout_s` lacks a model joint.

        When none arrives (the arm is not up yet), each joint state's names are checked on arrival instead.
        """
        timeout, topic = self.param('joint_check_timeout_s'), self.param('joint_topic')
        if timeout <= 0:
            return
        received, message = wait_for_message(JointState, self, topic, qos_profile=qos, time_to_wait=timeout)
        if not received:
            self.get_logger().info(f'no joint state on {topic} within {timeout:g} s: names are checked as they come')
            return
        missing = [name for name in self.detector.spec.joint_names if name not in message.name]
        if missing:
            raise UserError(
                f'the joint states on {topic} name {list(message.name)}, without the model joints {missing}: '
                'this model was trained on another arm (or remap the topic)'
            )

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop inference."""
        self._stop_streams()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model and the publishers."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything."""
        self._stop_streams()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _fail(self, message: str) -> TransitionCallbackReturn:
        self.error = message
        self.get_logger().error(message)
        self._diagnostics.force_update()
        return TransitionCallbackReturn.FAILURE

    def _stop_streams(self) -> None:
        for subscription in getattr(self, '_subscriptions_in_use', []):
            self.destroy_subscription(subscription)
        self._subscriptions_in_use = []
        if getattr(self, '_tick_timer', None) is not None:
            self.destroy_timer(self._tick_timer)
            self._tick_timer = None
        if self._worker is not None:
            self._worker.stop()
        self.mode = 'stale'

    def _release(self) -> None:
        for name in ('pub_anomaly', 'pub_concept', 'pub_scores', 'pub_markers', 'pub_overlay'):
            publisher = self.__dict__.pop(name, None)
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        if self.detector is not None:
            self.detector.to('cpu')
            self.detector = None

    # Input

    def _on_joint_state(self, message: JointState) -> None:
        """Every joint state goes to the window builder's buffer as it arrives (windows use only the past)."""
        self.counts['joint_states'] += 1
        self._last_arrival['kinematics'] = time.monotonic()
        try:
            self.builder.add_joint_state(
                stamp_ns(message) / 1e9, message.name, message.position, message.velocity, message.effort
            )
        except RejectedInputError as err:
            self._reject(err)

    def _on_frame(self, message: Image) -> None:
        """Every frame arrives here first: checked, counted, and scored without joints while the joints are lost.

        A rejected frame does not count as the camera being alive.
        """
        self.counts['frames'] += 1
        try:
            check_image(message, self._resolution)
        except RejectedInputError as err:
            self._reject(err)
            return
        self.counts['frames_valid'] += 1
        self._last_arrival['camera'] = time.monotonic()
        self._frame_id = message.header.frame_id
        if self.mode == 'degraded-kinematics':
            self._close_window(message, joints_lost=True)

    def _on_synchronised(self, image: Image, _joint_state: JointState) -> None:
        self._close_window(image, joints_lost=False)

    def _tick(self) -> None:
        """Track which streams are alive; while the camera is lost, close windows from the joints alone."""
        now = time.monotonic()
        stale_after = self.param('stale_after_s')
        camera, joints = (now - self._last_arrival[key] < stale_after for key in ('camera', 'kinematics'))
        mode = {
            (True, True): 'nominal',
            (False, True): 'degraded-camera',
            (True, False): 'degraded-kinematics',
            (False, False): 'stale',
        }[(camera, joints)]
        if mode != self.mode:
            if mode == 'nominal':
                self.get_logger().info(f'mode {self.mode} -> {mode}')
            else:
                self.get_logger().warning(f'mode {self.mode} -> {mode}')
            self.mode = mode
            self._diagnostics.force_update()
        if mode == 'degraded-camera':
            latest_s = self.builder.latest_joint_s
            if latest_s is not None and latest_s != self._last_window_s:  # new joints (or time went back)
                window = self.builder.close_without_frame(latest_s)
                stamp = Time(nanoseconds=round(latest_s * 1e9)).to_msg()
                self._submit(window, stamp, None, self._frame_id, now)

    def _close_window(self, image: Image, joints_lost: bool) -> None:
        received = time.monotonic()
        stamp_s = stamp_ns(image) / 1e9  # as `mcf eval` reads it
        if stamp_s == self._last_window_s:
            return  # already closed by the other path
        try:
            rgb = image_rgb(image, self._resolution)
        except RejectedInputError:
            return  # counted when it arrived
        self.counts['frames_without_joints' if joints_lost else 'frames_matched'] += 1
        try:
            window = self.builder.add_frame(stamp_s, rgb)
        except RejectedInputError as err:  # a stamp off the stream's timeline
            self._reject(err)
            return
        self._frames_seen += 1
        if self._frames_seen % self.param('hop_frames'):
            return
        window = window.without_joints() if joints_lost else window
        self._submit(window, image.header.stamp, rgb, image.header.frame_id, received)

    def _submit(self, window: Window, stamp, rgb: np.ndarray | None, frame_id: str, received_s: float) -> None:
        self._last_window_s = window.end_s
        if window.warming_up:
            self.counts['windows_warming_up'] += 1
            return
        self._worker.submit(Job(window, stamp, rgb, frame_id, received_s, self.mode))

    def internal_error(self, err: Exception) -> None:
        """Count an unexpected exception from a callback; log it at most once per LOG_EVERY_S."""
        total = self._count('internal_errors')
        if total is not None:
            self.get_logger().error(f'internal error ({total} so far), the node goes on: {type(err).__name__}: {err}')

    def _reject(self, err: RejectedInputError) -> None:
        """Count a rejected message by reason; log each reason at most once per LOG_EVERY_S."""
        total = self._count(f'rejected_{err.reason}')
        if total is not None:
            self.get_logger().warning(f'rejected input ({total} so far for this reason): {err}')

    def _count(self, key: str) -> int | None:
        """Increment a counter; return its total when it is due to be logged again, else None."""
        self.counts[key] += 1
        now = time.monotonic()
        if now - self._last_logged.get(key, -math.inf) < LOG_EVERY_S:
            return None
        self._last_logged[key] = now
        return self.counts[key]

    # Inference thread

    def _score(self, job: Job) -> None:
        delay = self.param('inference_delay_s')
        if delay:
            time.sleep(delay)
        evidence = self.detector.evidence([job.window])
        scored = self.scorer.step(job.window.end_s, {key: values[0] for key, values in evidence.items()})
        scored['attention'] = evidence['attention'][0]
        scored['camera_error'] = float(evidence['camera_error'][0])
        scored['kinematics_error'] = float(evidence['kinematics_error'][0])
        stamp = job.stamp
        # What controllers act on goes out first; what people look at, after.
        self.pub_anomaly.publish(Bool(data=bool(scored['is_anomaly'])))
        latency_ms = 1e3 * (time.monotonic() - job.received_s)
        names, values = score_values(scored, job.mode, latency_ms, self.detector.artifact.model_id)
        scores = JointState(name=names, position=values)
        scores.header.stamp, scores.header.frame_id = stamp, job.frame_id
        self.pub_scores.publish(scores)
        self.pub_concept.publish(Float32(data=float(scored['concept_score'])))
        if self.pub_markers.get_subscription_count():
            self.pub_markers.publish(self._markers(scored, job, stamp))
        if job.rgb is not None:
            self._publish_overlay(job, scored, stamp)
        with self._lock:
            self._latency_ms.append(latency_ms)

    def _markers(self, scored: dict, job: Job, stamp) -> MarkerArray:
        text = state_line(scored, job.mode)
        marker = Marker(ns=NODE_NAME, id=0, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, text=text)
        marker.header.stamp, marker.header.frame_id = stamp, job.frame_id or 'map'
        marker.pose.orientation.w = 1.0
        marker.scale.z = 0.08
        marker.color.a = 1.0
        marker.color.r, marker.color.g, marker.color.b = (0.9, 0.15, 0.15) if scored['is_anomaly'] else (0.15, 0.7, 0.3)
        return MarkerArray(markers=[marker])

    def _publish_overlay(self, job: Job, scored: dict, stamp) -> None:
        rate = self.param('overlay_hz')
        now = time.monotonic()
        if rate <= 0 or now < self._overlay_due or self.pub_overlay.get_subscription_count() == 0:
            return
        self._overlay_due = now + 1.0 / rate
        pixels = draw_overlay(job.rgb, scored, job.mode)
        image = Image(height=pixels.shape[0], width=pixels.shape[1], encoding='rgb8', step=pixels.shape[1] * 3)
        image.header.stamp, image.header.frame_id = stamp, job.frame_id
        image.data = pixels.tobytes()
        self.pub_overlay.publish(image)

    # Diagnostics

    def _diagnose(self, stat):
        """Fill the /diagnostics status: level and mode, rates, drops, rejects by reason, latency, device, model."""
        if self.error:
            stat.summary(DiagnosticStatus.ERROR, self.error)
        elif self.detector is None or self._worker is None or not self._subscriptions_active():
            stat.summary(DiagnosticStatus.WARN, 'inactive: configure and activate the node (or start with --autostart)')
        else:
            levels = {'nominal': DiagnosticStatus.OK, 'stale': DiagnosticStatus.STALE}
            stat.summary(levels.get(self.mode, DiagnosticStatus.WARN), self.mode)
        stat.add('mode', self.mode)
        now = time.monotonic()
        for stream in ('frames', 'joint_states'):
            count, since = self._rates[stream]
            stat.add(f'{stream}_hz', f'{(self.counts[stream] - count) / max(now - since, 1e-9):.1f}')
            self._rates[stream] = (self.counts[stream], now)
        worker = self._worker
        stat.add('windows_submitted', worker.submitted if worker else 0)
        stat.add('windows_scored', worker.done if worker else 0)
        stat.add('windows_dropped', worker.dropped if worker else 0)
        stat.add('inference_failures', worker.failures if worker else 0)
        if worker and worker.last_error:
            stat.add('last_inference_error', worker.last_error)
        closed = self.counts['frames_matched'] + self.counts['frames_without_joints']
        unmatched = self.counts['frames_valid'] - closed
        stat.add('frames_unmatched', unmatched)
        stat.add('windows_warming_up', self.counts['windows_warming_up'])
        stat.add('internal_errors', self.counts['internal_errors'])
        for key in sorted(k for k in self.counts if k.startswith('rejected_')):
            stat.add(key, self.counts[key])
        with self._lock:
            latency = np.array(self._latency_ms)
        if len(latency):
            stat.add('latency_p50_ms', f'{np.percentile(latency, 50):.2f}')
            stat.add('latency_p99_ms', f'{np.percentile(latency, 99):.2f}')
        stat.add('device', str(self.detector.device) if self.detector else 'none')
        stat.add('model_id', self.detector.artifact.model_id if self.detector else 'none')
        stat.add('backends', ', '.join(f'{k}={v}' for k, v in BACKENDS.items()))
        return stat

    def _subscriptions_active(self) -> bool:
        return bool(getattr(self, '_subscriptions_in_use', None))


def main(argv: list[str] | None = None) -> int:
    """Console script `monitor`: run the node until SIGINT/SIGTERM; `--autostart` configures and activates it."""
    argv = sys.argv if argv is None else argv
    # The executor thread runs Python for every joint state (500 Hz); hand the GIL to the
    # inference thread within 0.5 ms instead of the default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    cv2.setNumThreads(1)  # one small resize per frame: a thread pool only adds wake-ups
    os.environ.update(ros_env.user_defaults(os.environ))
    context = rclpy.Context()
    try:  # malformed --ros-args, or a parameter of the wrong type or out of its range
        autostart = '--autostart' in remove_ros_args(argv)
        rclpy.init(args=argv, context=context, signal_handler_options=SignalHandlerOptions.NO)
        node = MonitorNode(context=context)
    except (RCLInvalidROSArgsError, InvalidParameterTypeException, InvalidParameterValueException) as err:
        print(f'{NODE_NAME}: error: {rcl_reason(err)}', file=sys.stderr)
        if context.ok():
            rclpy.shutdown(context=context)
        return EXIT_USER_ERROR
    stop = stop_event()
    # The C++ events executor: a fraction of the Python executor's cost per message at 500 Hz.
    executor = EventsExecutor(context=context)
    executor.add_node(node)
    try:
        if autostart and node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            node.trigger_activate()
        while not stop.is_set():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception as err:  # a bug met by odd input must not stop the monitor: count, log, go on
                node.internal_error(err)
    finally:
        node.trigger_shutdown()
        executor.remove_node(node)
        node.destroy_node()
        rclpy.shutdown(context=context)
    return 0


if __name__ == '__main__':
    sys.exit(main())
