"""A live synthetic cell for integration tests: publishes camera frames and joint states over real DDS,
with streams that can be cut and restored, and records what the monitor node publishes.

It runs in the test process; the monitor runs in its own (`start_monitor`).
"""

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import Image, JointState
from synthetic_bags import UR_JOINTS
from visualization_msgs.msg import MarkerArray

from mcf_ros.data.messages import stamp_ns
from mcf_ros.presentation import MODES

MONITOR = [sys.executable, '-m', 'mcf_ros.ros.monitor']


def start_monitor(log: Path, *parameters: str, autostart: bool = True) -> subprocess.Popen:
    """Start the monitor node in its own process with `-p NAME:=VALUE` parameters; output goes to `log`."""
    args = [*MONITOR, *(['--autostart'] if autostart else []), '--ros-args']
    for parameter in parameters:
        args += ['-p', parameter]
    return subprocess.Popen(args, stdout=log.open('w'), stderr=subprocess.STDOUT, text=True)


def stop_process(process: subprocess.Popen, timeout: float = 10) -> int:
    """SIGINT a process and return its exit code."""
    process.send_signal(subprocess.signal.SIGINT)
    return process.wait(timeout)


@dataclass
class Received:
    """What arrived from the node, each with the test's monotonic arrival time."""

    diagnostics: list = field(default_factory=list)  # (t, level as int, message, {key: value})
    scores: list = field(default_factory=list)  # (t, stamp_s, {field: value})
    markers: list = field(default_factory=list)  # the text of each ~/markers marker


class LiveCell:
    """Publishes a moving UR5e's joint states (500 Hz) and camera frames (30 Hz) with live stamps."""

    def __init__(
        self, width: int = 128, height: int = 128, node_name: str = 'mcf_monitor', publish: bool = True,
        joint_names: list[str] = UR_JOINTS, rate: float = 1.0, corrupt_every: int = 0, namespace: str = '',
    ):  # fmt: skip
        """`rate` scales both streams' rates; with `corrupt_every` N, every N-th message of each stream is malformed
        (NaN joint positions; frames with their data cut short). `namespace` ('/a') is the cell's: its topics and
        its monitor's are in it."""
        self.context = rclpy.Context()
        rclpy.init(context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node('live_cell', context=self.context)
        self.monitor_name = f'{namespace}/{node_name}'
        self.frames = self.node.create_publisher(Image, f'{namespace}/camera/image_raw', QoSProfile(depth=2))
        self.joints = self.node.create_publisher(JointState, f'{namespace}/joint_states', QoSProfile(depth=100))
        self.received = Received()
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 50)
        self.node.create_subscription(
            JointState,
            f'{self.monitor_name}/scores',
            self._on_scores,
            QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE),
        )
        self.node.create_subscription(
            MarkerArray,
            f'{self.monitor_name}/markers',
            lambda m: self.received.markers.extend(x.text for x in m.markers),
            10,
        )
        self.live = {'camera': True, 'kinematics': True}
        self.joint_names = joint_names
        self.rate = rate
        self.corrupt_every = corrupt_every
        self.corrupted = {'camera': 0, 'kinematics': 0}
        self.published = {'camera': 0, 'kinematics': 0}
        self._pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        self._stop = threading.Event()
        self._executor = SingleThreadedExecutor(context=self.context)
        self._executor.add_node(self.node)
        self._threads = [threading.Thread(target=self._spin)]
        if publish:  # else it only listens (another process feeds the node)
            self._threads.append(threading.Thread(target=self._publish))

    def __enter__(self) -> 'LiveCell':
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def wait_for(self, predicate, timeout: float, what: str):
        """Wait until `predicate()` is truthy; return its value or fail naming `what`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.01)
        raise AssertionError(f'{what} did not happen within {timeout} s; last diagnostics: {self.last_diagnostics()}')

    def last_diagnostics(self):
        return self.received.diagnostics[-1] if self.received.diagnostics else None

    def mode_since(self, since: float, mode: str) -> float | None:
        """Return when /diagnostics first reported `mode` after `since` (monotonic), or None."""
        return next(
            (t for t, _, _, values in self.received.diagnostics if t >= since and values.get('mode') == mode), None
        )

    def scores_between(self, start: float, end: float) -> list[dict]:
        return [fields for t, _, fields in self.received.scores if start <= t < end]

    def transition(self, transition_id: int, node_name: str = 'mcf_monitor', timeout: float = 20) -> bool:
        """Ask a lifecycle node for a transition (lifecycle_msgs/Transition id); return whether it succeeded."""
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self._call(ChangeState, f'/{node_name}/change_state', request, timeout).success

    def state(self, node_name: str = 'mcf_monitor', timeout: float = 20) -> str:
        """Return a lifecycle node's state label: 'unconfigured', 'inactive', 'active', ..."""
        return self._call(GetState, f'/{node_name}/get_state', GetState.Request(), timeout, 3).current_state.label

    def _call(self, service_type, name: str, request, timeout: float, attempts: int = 1):
        """Call a service; `attempts` > 1 asks again when a reply does not come (for idempotent requests only)."""
        client = self.node.create_client(service_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise AssertionError(f'{name} is not offered')
            for _ in range(attempts):  # a reply can be lost while the server has not yet matched the client
                future = client.call_async(request)
                deadline = time.monotonic() + timeout / attempts
                while not future.done() and time.monotonic() < deadline:
                    time.sleep(0.01)
                if future.done():
                    return future.result()
            raise AssertionError(f'no reply from {name} in {timeout} s ({attempts} asked): {self.last_diagnostics()}')
        finally:
            self.node.destroy_client(client)

    def _spin(self) -> None:
        while not self._stop.is_set():
            self._executor.spin_once(timeout_sec=0.05)

    def _publish(self) -> None:
        """Joint states every 2 ms and a frame every 1/30 s (divided by `rate`), with system clock stamps,
        while each stream is live."""
        start = time.monotonic()
        tick = 0
        while not self._stop.is_set():
            due = start + tick * 0.002 / self.rate
            time.sleep(max(0.0, due - time.monotonic()))
            stamp = self.node.get_clock().now().to_msg()
            if self.live['kinematics']:
                t = tick * 0.002
                position = [0.5 * np.sin(0.5 * t + k) for k in range(6)]
                velocity = [0.25 * np.cos(0.5 * t + k) for k in range(6)]
                if self._corrupt('kinematics'):
                    position[0] = float('nan')
                message = JointState(name=self.joint_names, position=position, velocity=velocity, effort=[1.0] * 6)
                message.header.stamp = stamp
                self.joints.publish(message)
            if tick % 17 == 0 and self.live['camera']:  # 17 x 2 ms: 29.4 Hz
                frame = Image(height=self._pixels.shape[0], width=self._pixels.shape[1], encoding='rgb8')
                frame.step = frame.width * 3
                frame.header.stamp, frame.header.frame_id = stamp, 'cell_camera'
                pixels = np.roll(self._pixels, tick, axis=1).tobytes()
                frame.data = pixels[: len(pixels) // 2] if self._corrupt('camera') else pixels
                self.frames.publish(frame)
            tick += 1

    def _corrupt(self, stream: str) -> bool:
        """Count a message of `stream`; return whether this one is to be malformed."""
        self.published[stream] += 1
        if self.corrupt_every and self.published[stream] % self.corrupt_every == 0:
            self.corrupted[stream] += 1
            return True
        return False

    def _on_diagnostics(self, message: DiagnosticArray) -> None:
        for status in message.status:
            if status.name.endswith('monitor') and status.hardware_id == self.monitor_name:
                values = {kv.key: kv.value for kv in status.values}
                level = ord(status.level) if isinstance(status.level, bytes) else status.level
                self.received.diagnostics.append((time.monotonic(), level, status.message, values))

    def _on_scores(self, message: JointState) -> None:
        stamp_s = stamp_ns(message) / 1e9
        fields = dict(zip(message.name, message.position, strict=True))
        fields['mode_name'] = MODES[int(fields['mode'])]
        self.received.scores.append((time.monotonic(), stamp_s, fields))
