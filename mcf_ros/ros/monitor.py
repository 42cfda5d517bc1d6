"""The mcf_monitor lifecycle node: camera and joint states in, anomaly flag, scores and diagnostics out.

- configure: load and validate the model artifact; create the publishers.
- activate: move the model to its device, start the inference thread and the subscriptions.
- deactivate / cleanup: stop and free them.

Joint states arrive as CDR bytes and are read in place by the parser `mcf eval` uses for bags (rclpy
never builds a JointState); they feed a message_filters Cache, and an ApproximateTimeSynchronizer
pairs each frame (raw or compressed, `image_transport`) with a joint state near its stamp, and the frame then closes a
window over the buffered joints (the same WindowBuilder `mcf eval` uses: the model's joints are
taken by name from whichever messages carry them, other joints are counted and ignored). Windows
are scored on their own thread, newest first. When one stream goes quiet for `stale_after_s`, the
other is scored alone (degraded mode); when both do, nothing is scored and the flag is withheld.

Its parts: parameters (`parameters`), the camera transport (`camera`), which streams are alive
(`modes`), what people see (`visuals`) and `/diagnostics` (`diagnostics`).

Run: `ros2 run mcf_ros monitor --autostart --ros-args --params-file config/monitor.yaml`, or
`python -m mcf_ros.ros.monitor --autostart`.
"""

import datetime
import functools
import json
import math
import os
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import rclpy
import torch
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.experimental import EventsExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.serialization import serialize_message
from rclpy.signals import SignalHandlerOptions
from rclpy.time import Time
from rclpy.utilities import remove_ros_args
from rclpy.wait_for_message import wait_for_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32, String
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from mcf_ros import ros_env
from mcf_ros.data.clips import ClipKeeper, ClipWriter
from mcf_ros.data.images import COMPRESSED_IMAGE, IMAGE
from mcf_ros.data.messages import JOINT_STATE, joint_state_cdr, joint_state_fields, stamp_ns
from mcf_ros.data.windows import RejectedInputError, Window, WindowBuilder
from mcf_ros.errors import UserError
from mcf_ros.model.artifact import load_artifact, save_artifact
from mcf_ros.model.episodes import Episode, EpisodeTracker
from mcf_ros.model.feedback import apply_feedback, excess, with_scales
from mcf_ros.model.inference import Detector
from mcf_ros.model.onnx_backend import onnx_beside
from mcf_ros.model.scoring import StreamScorer
from mcf_ros.paths import share_dir
from mcf_ros.presentation import score_values
from mcf_ros.ros.camera import CameraFrames
from mcf_ros.ros.diagnostics import fill_status
from mcf_ros.ros.modes import StreamModes
from mcf_ros.ros.parameters import RELIABILITY, check_choices, declare_parameters
from mcf_ros.ros.runtime import rcl_reason, stop_event
from mcf_ros.ros.seams import BACKENDS, ApproximateTimeSynchronizer, Cache, SimpleFilter, Subscriber, Updater
from mcf_ros.ros.visuals import markers_message, overlay_message
from mcf_ros.ros.worker import InferenceThread, Lane

NODE_NAME = 'mcf_monitor'
EXIT_USER_ERROR = 2
RCLInvalidROSArgsError = rclpy_implementation.RCLInvalidROSArgsError
LATENCY_WINDOWS = 1000
LOG_EVERY_S = 10.0
SWITCH_INTERVAL_S = 0.0005
EPISODES_LATCHED = 100  # ~/episodes keeps this many for late subscribers
RING_SHARE = 0.9  # of clip_max_mb, for the input kept in memory (a clip also holds scores and bag overhead)
FEEDBACK_MEMORY_S = 600.0  # ~/mark_normal can mark a stretch within this many seconds of the newest window


class ParsedJointState:
    """A joint state as the synchronizer sees it: names and a header stamp (an rclpy Time, taken as it is)."""

    __slots__ = ('header', 'name')

    def __init__(self, stamp_ns: int, names: tuple[str, ...]):
        self.header = SimpleNamespace(stamp=Time(nanoseconds=stamp_ns, clock_type=ClockType.ROS_TIME))
        self.name = names


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

    def __init__(self, inference: InferenceThread | None = None, **kwargs):
        """`inference`: the thread this process's cells share (`--cells`); without it the node starts its own."""
        super().__init__(NODE_NAME, **kwargs)
        self._shared_inference = inference
        self._own_inference: InferenceThread | None = None
        declare_parameters(self)
        self.counts: Counter[str] = Counter()
        self.ignored_joints: set[str] = set()
        self.modes = StreamModes(self.param('stale_after_s'))
        self.error: str | None = None
        self.detector: Detector | None = None
        self.worker: Lane | None = None
        self.clips: ClipKeeper | None = None
        self.clip_writer: ClipWriter | None = None
        self.episode_fields: dict = {}  # what every episode record carries: the model id in use
        self.feedback: dict | None = None  # the last ~/mark_normal that changed the calibration
        self._mark_normal = None
        self.rate_marks = {'frames': (0, time.monotonic()), 'joint_states': (0, time.monotonic())}
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOWS)
        self._last_logged: dict[str, float] = {}
        self._subscriptions_in_use: list = []
        self._tick_timer = None
        self._lock = threading.Lock()
        self._diagnostics = Updater(self, period=self.param('diagnostics_period_s'))
        self._diagnostics.setHardwareID(self.get_fully_qualified_name())
        self._diagnostics.add('monitor', lambda stat: fill_status(stat, self))

    def param(self, name: str):
        """Return a parameter's value."""
        return self.get_parameter(name).value

    @property
    def mode(self) -> str:
        """Return 'nominal', 'degraded-camera', 'degraded-kinematics' or 'stale'."""
        return self.modes.mode

    @property
    def scoring(self) -> bool:
        """Return whether the node is active: a model, an inference thread and subscriptions."""
        return self.detector is not None and self.worker is not None and bool(self._subscriptions_in_use)

    def latency_snapshot(self) -> np.ndarray:
        """Return the latest frame -> ~/scores latencies (ms)."""
        with self._lock:
            return np.array(self._latency_ms)

    # Lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Load and validate the model; create the publishers. FAILURE (stay unconfigured) on a bad model."""
        try:
            check_choices(self)
            path = self.param('model_path') or str(share_dir() / 'models' / 'ur5e_cell.mcf')
            self.detector = Detector(load_artifact(path), 'cpu')
            self.model_path = path
            self.detector.stream()  # refuses an artifact without calibration
        except UserError as err:
            return self._fail(f'cannot configure: {err}')
        self.header = self.detector.artifact.header  # the calibration in use; ~/mark_normal saves new ones
        self.feedback = None
        self.model_id = self.detector.artifact.model_id
        self.episode_fields['model_id'] = self.model_id
        spec = self.detector.spec
        calibration = self.detector.calibration
        self.calibration = replace(
            calibration,
            threshold=self.param('threshold_override') or calibration.threshold,
            persistence=self.param('flag_persistence') or calibration.persistence,
        )
        self.sync_slop_s = self.param('sync_slop_s') or 1.5 / spec.joint_hz
        self.sync_queue_size = math.ceil(spec.joint_hz * (self.sync_slop_s + self.param('max_latency_s'))) + 2
        resolution = self.detector.artifact.header['modalities']['camera'].get('resolution')
        self.camera = CameraFrames(
            self.param('image_transport'), self.param('image_topic'), resolution, spec.image_size
        )
        reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_anomaly = self.create_lifecycle_publisher(Bool, '~/anomaly', reliable)
        self.pub_concept = self.create_lifecycle_publisher(Float32, '~/concept_score', 10)
        self.pub_scores = self.create_lifecycle_publisher(JointState, '~/scores', 10)
        self.pub_markers = self.create_lifecycle_publisher(MarkerArray, '~/markers', 10)
        self.pub_overlay = self.create_lifecycle_publisher(Image, '~/overlay', 2)
        latched = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=EPISODES_LATCHED,
            reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )  # fmt: skip
        self.pub_episodes = self.create_lifecycle_publisher(String, '~/episodes', latched)
        self._mark_normal = self.create_service(Trigger, '~/mark_normal', self._on_mark_normal)
        self.error = None
        self.get_logger().info(
            f'model {self.detector.artifact.model_id} ({path}): joints {list(spec.joint_names)}, '
            f'{spec.length_s:g} s windows, threshold {self.calibration.threshold:.2f}; backends {BACKENDS}'
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the live joint names, move the model to its device, start inference and subscribe.

        FAILURE (stay inactive) when the joint states lack the model's joints or the device is missing.
        """
        spec = self.detector.spec
        joint_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.param('joint_queue_depth'))
        try:
            self._check_live_joint_names(joint_qos)
            self.detector.to(self.param('device')).compile(onnx_beside(self.model_path), self.param('cpu_threads'))
        except UserError as err:
            return self._fail(f'cannot activate: {err}')
        self.error = None
        self.builder = WindowBuilder(spec)
        self.scorer = StreamScorer(self.calibration, spec.length_s)
        self.modes = StreamModes(self.param('stale_after_s'))
        self._frame_id = ''
        self._last_window_s = None
        self._frames_seen = 0
        self._overlay_due = 0.0
        self._last_frame: tuple[object, np.ndarray] | None = None  # the newest valid frame and its pixels
        inference = self._shared_inference
        if inference is None:
            threads = self.param('cpu_threads')
            # torch's CPU thread count is per thread (OpenMP): set it on the thread that runs the model.
            inference = self._own_inference = InferenceThread(setup=lambda: torch.set_num_threads(threads))
        # Cells whose monitors give the same evidence (one model, its scales, one backend) share its batches.
        self.worker = inference.lane(self._evidence, self._publish, self.detector.evidence_key)
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.param('image_queue_depth'),
            reliability=RELIABILITY[self.param('image_reliability')],
        )
        overrides = QoSOverridingOptions.with_default_policies()
        image_sub = Subscriber(
            self, self.camera.message_type, self.camera.topic, qos_profile=image_qos, qos_overriding_options=overrides
        )
        joint_sub = self.create_subscription(
            JointState, self.param('joint_topic'), self._on_joint_state, joint_qos,
            qos_overriding_options=overrides, raw=True,
        )  # fmt: skip
        self._joint_states = SimpleFilter()  # the parsed joint states, as a message_filters source
        joint_cache = Cache(self._joint_states, self.sync_queue_size)
        image_sub.registerCallback(self._on_frame)  # before the synchronizer: frames are checked first
        sync = ApproximateTimeSynchronizer([image_sub, joint_cache], self.sync_queue_size, self.sync_slop_s)
        sync.registerCallback(self._on_synchronised)
        self._subscriptions_in_use = [image_sub.sub, joint_sub]
        self.episodes = EpisodeTracker()
        self.last_episode: Episode | None = None
        self._recent_evidence: deque[tuple[float, np.ndarray]] = deque(
            maxlen=math.ceil(FEEDBACK_MEMORY_S * spec.camera_hz)
        )  # (window end, excess per scored channel), for ~/mark_normal
        self._joint_topic, self._image_topic = joint_sub.topic_name, image_sub.sub.topic_name
        try:
            self._start_clips()
        except UserError as err:
            self._stop_streams()
            return self._fail(f'cannot activate: {err}')
        # Stream loss is judged on the steady clock: under sim time a stalled /clock must not hide it.
        self._tick_timer = self.create_timer(
            1.0 / spec.camera_hz, self._tick, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )
        self.get_logger().info(
            f'active on {self.detector.device}: {self.camera.topic} ({self.camera.transport}) + '
            f'{self.param("joint_topic")}, sync slop {1e3 * self.sync_slop_s:.1f} ms, queues {self.sync_queue_size}'
        )
        return super().on_activate(state)

    def _start_clips(self) -> None:
        """With a clip_dir: keep the recent input and write a clip per flag episode (UserError if it cannot)."""
        clip_dir = self.param('clip_dir')
        if not clip_dir:
            return
        max_bytes = self.param('clip_max_mb') * 10**6
        topics = {
            self._image_topic: COMPRESSED_IMAGE if self.camera.compressed else IMAGE,
            self._joint_topic: JOINT_STATE,
            self.pub_scores.topic_name: JOINT_STATE,
        }
        self.clip_writer = ClipWriter(clip_dir, topics, max_bytes, self.episode_fields, self._announce)
        self.clips = ClipKeeper(
            self.param('clip_pre_s'), self.param('clip_post_s'), int(RING_SHARE * max_bytes), self.clip_writer.submit
        )
        self.get_logger().info(f'clips of each flag episode -> {clip_dir} (at most {self.param("clip_max_mb")} MB)')

    def _check_live_joint_names(self, qos: QoSProfile) -> None:
        """Raise UserError if the joint states arriving within `joint_check_timeout_s` lack a model joint.

        Joints may come split across messages and next to other joints, so the names of every message
        in that time are pooled. When none arrives (the arm is not up yet), names are checked as they come.
        """
        timeout, topic = self.param('joint_check_timeout_s'), self.param('joint_topic')
        if timeout <= 0:
            return
        wanted, seen, received_any = set(self.detector.spec.joint_names), set(), False
        deadline = time.monotonic() + timeout
        while not wanted <= seen and (left := deadline - time.monotonic()) > 0:
            received, message = wait_for_message(JointState, self, topic, qos_profile=qos, time_to_wait=left)
            if received:
                received_any = True
                seen.update(message.name)
        if not received_any:
            self.get_logger().info(f'no joint state on {topic} within {timeout:g} s: names are checked as they come')
            return
        missing = [name for name in self.detector.spec.joint_names if name not in seen]
        if missing:
            raise UserError(
                f'the joint states on {topic} name {sorted(seen)}, without the model joints {missing}: '
                'this model was trained on another arm (or remap the topic)'
            )

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Unsubscribe and stop inference; SUCCESS (inactive)."""
        self._stop_streams()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the model and the publishers; SUCCESS (unconfigured)."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop everything; SUCCESS (finalized)."""
        self._stop_streams()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _fail(self, message: str) -> TransitionCallbackReturn:
        self.error = message
        self.get_logger().error(message)
        self._diagnostics.force_update()
        return TransitionCallbackReturn.FAILURE

    def _stop_streams(self) -> None:
        for subscription in self._subscriptions_in_use:
            self.destroy_subscription(subscription)
        self._subscriptions_in_use = []
        if self._tick_timer is not None:
            self.destroy_timer(self._tick_timer)
            self._tick_timer = None
        if self.worker is not None:
            self.worker.leave()
        if self._own_inference is not None:
            self._own_inference.stop()
            self._own_inference = None
        self._end_episodes()
        self.modes = StreamModes(self.param('stale_after_s'))

    def _end_episodes(self) -> None:
        """The streams stopped: end the episode under way, and write its clip and the queued ones."""
        tracker = self.__dict__.pop('episodes', None)
        if tracker is not None:
            self._episodes_ended(tracker.finish())
        if self.clips is not None:
            self.clips.flush()
            self.clips = None
        if self.clip_writer is not None:
            self.clip_writer.stop()
            self.clip_writer = None

    def _release(self) -> None:
        for name in ('pub_anomaly', 'pub_concept', 'pub_scores', 'pub_markers', 'pub_overlay', 'pub_episodes'):
            publisher = self.__dict__.pop(name, None)
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        if self.detector is not None:
            self.detector.to('cpu')
            self.detector = None
        if self._mark_normal is not None:
            self.destroy_service(self._mark_normal)
            self._mark_normal = None

    # Input

    def _on_joint_state(self, data: bytes) -> None:
        """Every joint state goes to the window builder's buffer as it arrives (windows use only the past).

        One that carries none of the model's joints (a gripper on the same topic) is counted as
        ignored; it neither feeds the model nor keeps the kinematics stream alive. Every readable
        one goes on to the synchronizer's cache, stamped.
        """
        self.counts['joint_states'] += 1
        try:
            stamp, names, position, velocity, effort = joint_state_fields(data)
        except RejectedInputError as err:
            self._reject(err)
            self._keep(self._joint_topic, None, len(data), data)
            return
        try:
            ignored = self.builder.add_joint_state(stamp / 1e9, names, position, velocity, effort)
        except RejectedInputError as err:
            self._reject(err)
            ignored = None
        self._keep(self._joint_topic, None if ignored is None else stamp / 1e9, len(data), data)
        # After the builder has it: a frame waiting for this joint state closes its window over it.
        self._joint_states.signalMessage(ParsedJointState(stamp, names))
        if ignored is None:
            return
        if ignored:
            self.ignored_joints.update(ignored)
            if len(ignored) == len(names):
                self.counts['joint_states_ignored'] += 1
                return
        self.modes.arrived('kinematics', time.monotonic())

    def _on_frame(self, message) -> None:
        """Every frame arrives here first: checked, decoded, counted, and scored without joints while they are lost.

        A rejected frame does not count as the camera being alive.
        """
        self.counts['frames'] += 1
        try:
            rgb = self.camera.rgb(message)
        except RejectedInputError as err:
            self._reject(err)
            self._keep(self._image_topic, None, len(message.data), serialize_message, message)
            return
        self._keep(self._image_topic, stamp_ns(message) / 1e9, len(message.data), serialize_message, message)
        self._last_frame = (message, rgb)
        self.counts['frames_valid'] += 1
        self.modes.arrived('camera', time.monotonic())
        self._frame_id = message.header.frame_id
        if self.mode == 'degraded-kinematics':
            self._close_window(message, joints_lost=True)

    def _keep(self, topic: str, stamp_s: float | None, size: int, payload, *args) -> None:
        """Keep a message for the clips (when on): its bytes, or `payload(*args)` serializes it when written.

        `stamp_s` None: a message whose stamp was not used.
        """
        if self.clips is not None:
            self.clips.add(topic, stamp_s, time.time_ns(), size, functools.partial(payload, *args) if args else payload)

    def _on_synchronised(self, image, _joint_state: 'ParsedJointState') -> None:
        self._close_window(image, joints_lost=False)

    def _tick(self) -> None:
        """Track which streams are alive; while the camera is lost, close windows from the joints alone."""
        now = time.monotonic()
        before = self.mode
        mode = self.modes.update(now)
        if mode is not None:
            if mode == 'nominal':  # rclpy ties a severity to its call site: one call per severity
                self.get_logger().info(f'mode {before} -> {mode}')
            else:
                self.get_logger().warning(f'mode {before} -> {mode}')
            self._diagnostics.force_update()
        if self.mode == 'degraded-camera':
            latest_s = self.builder.latest_joint_s
            if latest_s is not None and latest_s != self._last_window_s:  # new joints (or time went back)
                window = self.builder.close_without_frame(latest_s)
                stamp = Time(nanoseconds=round(latest_s * 1e9)).to_msg()
                self._submit(window, stamp, None, self._frame_id, now)

    def _close_window(self, image, joints_lost: bool) -> None:
        received = time.monotonic()
        stamp_s = stamp_ns(image) / 1e9  # as `mcf eval` reads it
        if stamp_s == self._last_window_s:
            return  # already closed by the other path
        if self._last_frame is None or self._last_frame[0] is not image:
            return  # rejected when it arrived, and counted there
        rgb = self._last_frame[1]
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
        self.worker.submit(Job(window, stamp, rgb, frame_id, received_s, self.mode))

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

    def _evidence(self, jobs: list[Job]) -> list[dict]:
        """The model's evidence for the windows of `jobs` (this cell's, or several cells' of the same model)."""
        delay = self.param('inference_delay_s')
        if delay:
            time.sleep(delay)
        evidence = self.detector.evidence([job.window for job in jobs])
        return [{key: values[row] for key, values in evidence.items()} for row in range(len(jobs))]

    def _publish(self, job: Job, evidence: dict) -> None:
        scored = self.scorer.step(job.window.end_s, evidence)
        scored['attention'] = evidence['attention']
        scored['camera_error'] = float(evidence['camera_error'])
        scored['kinematics_error'] = float(evidence['kinematics_error'])
        stamp = job.stamp
        # What controllers act on goes out first; what people look at, after.
        self.pub_anomaly.publish(Bool(data=bool(scored['is_anomaly'])))
        latency_ms = 1e3 * (time.monotonic() - job.received_s)
        names, values = score_values(scored, job.mode, latency_ms, self.model_id)
        scores = JointState(name=names, position=values)
        scores.header.stamp, scores.header.frame_id = stamp, job.frame_id
        self.pub_scores.publish(scores)
        self._keep(
            self.pub_scores.topic_name, job.window.end_s, 16 * len(names), joint_state_cdr, stamp_ns(scores), names,
            values, (), (),
        )  # fmt: skip
        self.pub_concept.publish(Float32(data=float(scored['concept_score'])))
        if self.pub_markers.get_subscription_count():
            self.pub_markers.publish(markers_message(scored, job.mode, stamp, job.frame_id, NODE_NAME))
        if job.rgb is not None:
            self._publish_overlay(job, scored, stamp)
        with self._lock:
            self._latency_ms.append(latency_ms)
            self._recent_evidence.append((job.window.end_s, excess(self.scorer.last_z, self.scorer.calibration)))
        self._follow_episodes(job, scored)

    def _follow_episodes(self, job: Job, scored: dict) -> None:
        tracker = self.episodes
        was_open = tracker.open_since_s is not None
        ended = tracker.step(job.window.end_s, scored, job.mode)
        self._episodes_ended(ended)
        if tracker.open_since_s is not None and (ended or not was_open):
            self.counts['episodes'] += 1
            if self.clips is not None:
                self.clips.episode_started(tracker.open_since_s, scored['blame'])

    def _episodes_ended(self, ended: list[Episode]) -> None:
        for episode in ended:
            self.last_episode = episode
            if self.clips is not None:
                self.clips.episode_ended(episode)  # announced once its clip is written
            else:
                self._announce(episode.record(clip=None, **self.episode_fields))

    # Operator feedback

    def _on_mark_normal(self, _request, response):
        """~/mark_normal: the last episode (or the last `mark_normal_s` seconds) was normal running."""
        try:
            response.message = self._mark_normal_stretch()
            response.success = True
        except UserError as err:
            response.success, response.message = False, str(err)
            self.get_logger().warning(f'~/mark_normal refused: {err}')
        return response

    def _mark_normal_stretch(self) -> str:
        """Raise the scales the marked stretch needs, save the new artifact and score with it; return what changed."""
        if not self.scoring:
            raise UserError('the node is not active: nothing scored to mark')
        with self._lock:
            recent = list(self._recent_evidence)
        if not recent:
            raise UserError('no window scored yet')
        seconds = self.param('mark_normal_s')
        under_way = self.episodes.open_since_s
        if seconds > 0:
            start_s, end_s, what = recent[-1][0] - seconds, recent[-1][0], f'the last {seconds:g} s'
        elif under_way is not None:
            start_s, end_s, what = under_way, recent[-1][0], 'the episode under way'
        elif self.last_episode is not None:
            start_s, end_s, what = self.last_episode.start_s, self.last_episode.end_s, 'the last episode'
        else:
            raise UserError('no flag episode yet (set mark_normal_s to mark the last seconds instead)')
        stretch = [row for end, row in recent if start_s <= end <= end_s]
        if not stretch:
            raise UserError(f'{what} ({start_s:.2f}-{end_s:.2f} s) is older than the {FEEDBACK_MEMORY_S:g} s kept')
        marked = {'start_s': start_s, 'end_s': end_s, 'windows': len(stretch)}
        header, factors = apply_feedback(
            self.header, self.model_id, np.array(stretch), marked, self.calibration.threshold
        )
        raised = {channel: factor for channel, factor in factors.items() if factor > 1.0}
        if not raised:
            return f'{what} already scores below the threshold: nothing changed'
        folder = Path(self.param('feedback_dir') or Path(os.environ.get('ROS_HOME', Path.home() / '.ros')) / 'mcf_ros')
        stamp = datetime.datetime.now(datetime.UTC).strftime('%Y%m%dT%H%M%S_%f')  # cells of one model: one file each
        path = folder / f'{Path(self.model_path).stem}_feedback_{stamp}.mcf'
        try:
            saved = save_artifact(path, header, self.detector.artifact.state_dict)
        except OSError as err:
            raise UserError(f'cannot save the recalibrated model to {path}: {err.strerror}') from None
        source = self.model_id
        self.header, self.model_id = saved.header, saved.model_id
        self.episode_fields['model_id'] = self.model_id
        self.calibration = with_scales(self.calibration, header)
        self.scorer.calibration = self.calibration  # the inference thread takes it at its next window
        changed = ', '.join(f'{channel} x{factor:.2f}' for channel, factor in raised.items())
        self.feedback = {'marks': (self.feedback or {}).get('marks', 0) + 1, 'model': str(path), 'raised': changed}
        message = (
            f'{what} ({start_s:.2f}-{end_s:.2f} s, {len(stretch)} windows) marked normal: scales {changed}; '
            f'model {self.model_id} (from {source}) saved to {path}; set model_path to it to keep it after a restart'
        )
        self.get_logger().warning(message)
        self._diagnostics.force_update()
        return message

    def _announce(self, record: dict) -> None:
        """Publish an ended episode on ~/episodes (JSON) and log it."""
        self.pub_episodes.publish(String(data=json.dumps(record)))
        clip = record['clip'] or record.get('clip_missing', 'no clip')
        self.get_logger().info(
            f'episode {record["start_s"]:.2f}-{record["end_s"]:.2f} s, peak {record["peak_score"]:.1f}, '
            f'blame {record["blame"]}: {clip}'
        )

    def _publish_overlay(self, job: Job, scored: dict, stamp) -> None:
        rate = self.param('overlay_hz')
        now = time.monotonic()
        if rate <= 0 or now < self._overlay_due or self.pub_overlay.get_subscription_count() == 0:
            return
        self._overlay_due = now + 1.0 / rate
        self.pub_overlay.publish(overlay_message(job.rgb, scored, job.mode, stamp, job.frame_id))


def cell_names(argv: list[str]) -> list[str]:
    """Return the namespaces of `--cells a,b,...` (a monitor each), or [''] for one monitor; ValueError if malformed."""
    args = remove_ros_args(argv)
    if '--cells' not in args:
        return ['']
    index = args.index('--cells')
    names = args[index + 1].split(',') if index + 1 < len(args) else []
    if not names or not all(name.isidentifier() for name in names) or len(set(names)) < len(names):
        given = args[index + 1] if index + 1 < len(args) else 'nothing'
        raise ValueError(f'--cells takes distinct names of letters, digits and _, comma-separated; got {given}')
    return names


def main(argv: list[str] | None = None) -> int:
    """Console script `monitor`: run the node until SIGINT/SIGTERM; `--autostart` configures and activates it.

    `--cells a,b,...` runs one monitor per cell, in namespaces /a, /b, ..., in this process: each with
    its own parameters (`/a/mcf_monitor:` in a params file), topics, model, flag and /diagnostics
    status, and one inference thread for all of them, which scores the windows of cells that share a
    model in one batch.
    """
    argv = sys.argv if argv is None else argv
    # The executor thread runs Python for every joint state (500 Hz); hand the GIL to the
    # inference thread within 0.5 ms instead of the default 5 ms.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    cv2.setNumThreads(1)  # one small resize per frame: a thread pool only adds wake-ups
    os.environ.update(ros_env.user_defaults(os.environ))
    context = rclpy.Context()
    nodes: list[MonitorNode] = []
    try:  # malformed --ros-args or --cells, or a parameter of the wrong type or out of its range
        autostart = '--autostart' in remove_ros_args(argv)
        cells = cell_names(argv)
        rclpy.init(args=argv, context=context, signal_handler_options=SignalHandlerOptions.NO)
        # torch's thread count is the first cell's cpu_threads (read when the first cell activates).
        shared = InferenceThread(setup=lambda: torch.set_num_threads(nodes[0].param('cpu_threads')))
        for cell in cells:
            nodes.append(MonitorNode(inference=shared, context=context, namespace=f'/{cell}'))
            if cell and nodes[-1].get_namespace() != f'/{cell}':
                raise ValueError(
                    f'a namespace remap (__ns) puts every cell in {nodes[-1].get_namespace()}: drop it to use --cells'
                )
    except (RCLInvalidROSArgsError, InvalidParameterTypeException, InvalidParameterValueException, ValueError) as err:
        print(f'{NODE_NAME}: error: {rcl_reason(err)}', file=sys.stderr)
        for node in nodes:
            node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
        return EXIT_USER_ERROR
    stop = stop_event()
    # The C++ events executor: a fraction of the Python executor's cost per message at 500 Hz.
    executor = EventsExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    try:
        for node in nodes:
            if autostart and node.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                node.trigger_activate()
        while not stop.is_set():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception as err:  # a bug met by odd input must not stop the monitor: count, log, go on
                nodes[0].internal_error(err)
    finally:
        for node in nodes:
            node.trigger_shutdown()
            executor.remove_node(node)
            node.destroy_node()
        shared.stop()
        rclpy.shutdown(context=context)
    return 0


if __name__ == '__main__':
    sys.exit(main())
