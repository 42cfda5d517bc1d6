"""`mcf bench`: end-to-end latency of the monitor against floors measured in the same run.

Layout, as on a cell: this process plays the cells (each: 640x480 rgb8 frames at 30 Hz and joint
states at 500 Hz, stamped at publish time; with `cells` > 1 each in its namespace /cell_1, ...,
its frames offset from the others' as unsynchronised cameras are) and listens to the outputs; a
second process is either the echo node(s), which republish each frame's stamp and do no inference
(the DDS floor), or the monitor (`--cells`: one per cell, one inference thread). Latency = the
output's DDS reception time - the frame's stamp, on this host's clock. The model's own latency per
window is measured alone, in this process, at batch 1 and at the batch of all cells. CPU % and RSS
are those of the second process.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mcf_ros import ros_env
from mcf_ros.data.messages import stamp_ns
from mcf_ros.paths import share_dir
from mcf_ros.presentation import MODES
from mcf_ros.processes import interrupt, wait_for_text

FRAME_HZ = 30.0
JOINT_HZ = 500.0
WIDTH, HEIGHT = 640, 480
ECHO_NODE = 'mcf_bench_echo'
BENCH_DOMAIN = 97


@dataclass
class CellLatency:
    """One cell's outputs during a measured phase: how many of its frames were answered, and how fast (ms)."""

    cell: str
    frames: int
    windows: int
    p50_ms: float
    p99_ms: float


@dataclass
class Phase:
    """Latency (ms) over all cells and the resources of the process under test during one measured phase."""

    name: str
    device: str
    windows: int
    p50_ms: float
    p99_ms: float
    cpu_percent: float
    rss_mb: float
    cells: list[CellLatency]


def model_latency(model_path: str, device: str, batch: int = 1, repeats: int = 500) -> dict:
    """Return the model's own latency (ms) per call as the node runs it: compiled, `batch` windows to evidence."""
    import torch

    from mcf_ros.data.windows import Window
    from mcf_ros.model.artifact import load_artifact
    from mcf_ros.model.inference import Detector
    from mcf_ros.model.onnx_backend import onnx_beside

    torch.set_num_threads(1)
    detector = Detector(load_artifact(model_path), device)
    detector.compile(onnx_beside(model_path))
    spec = detector.spec
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (spec.image_size, spec.image_size, 3), dtype=np.uint8)
    window = Window(1.0, image, rng.normal(size=(spec.grid_points, spec.joint_features)).astype(np.float32), 0.03, 1.0)
    for _ in range(20):
        detector.evidence([window] * batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        detector.evidence([window] * batch)
        if detector.device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(1e3 * (time.perf_counter() - started))
    return {
        'device': str(detector.device),
        'backend': detector.backend,
        'batch': batch,
        'p50_ms': float(np.median(times)),
        'p99_ms': float(np.percentile(times, 99)),
    }


def cell_frame(width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """Return a frame of the simulated cell (RGB), so that codecs meet the textures a real camera sends."""
    from mcf_ros.data.images import IMAGE, raw_rgb
    from mcf_ros.data.messages import parse
    from mcf_ros.sim.cell import CAMERA_TOPIC, CellSimulator, SimConfig

    class FirstFrame(Exception):  # noqa: N818 (not an error: it carries the frame out of the simulator)
        pass

    def sink(topic: str, _stamp: int, data: bytes) -> None:
        if topic == CAMERA_TOPIC:
            raise FirstFrame(data)

    try:
        CellSimulator(SimConfig(duration_s=6.0, width=width, height=height)).run(sink)
    except FirstFrame as frame:
        return raw_rgb(parse(frame.args[0], IMAGE)).copy()
    raise RuntimeError('the simulator rendered no frame')


def frame_costs(image_size: int, repeats: int = 200) -> dict[str, dict]:
    """Return the node's per-frame cost (ms) of a 640x480 cell frame -> the model's input, per transport.

    Each is the monitor's own path: `CameraFrames.rgb` (raw through the image seam; JPEG at quality 90
    and PNG decoded reduced) and then the window builder's area resize.
    """
    import cv2
    from sensor_msgs.msg import CompressedImage, Image

    from mcf_ros.ros.camera import CameraFrames

    rgb = cell_frame()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    raw = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3, data=rgb.tobytes())
    messages = {'raw rgb8': ('raw', raw)}
    for name, extension, params in (('jpeg', '.jpg', [cv2.IMWRITE_JPEG_QUALITY, 90]), ('png', '.png', [])):
        data = cv2.imencode(extension, bgr, params)[1].tobytes()
        messages[name] = ('compressed', CompressedImage(format=f'rgb8; {name} compressed bgr8', data=data))
    costs = {}
    for name, (transport, message) in messages.items():
        camera = CameraFrames(transport, '/camera/image_raw', (WIDTH, HEIGHT), image_size)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            cv2.resize(camera.rgb(message), (image_size, image_size), interpolation=cv2.INTER_AREA)
            times.append(1e3 * (time.perf_counter() - started))
        size_kb = len(message.data) / 1024
        costs[name] = {'p50_ms': float(np.median(times)), 'p99_ms': float(np.percentile(times, 99)), 'kb': size_kb}
    return costs


def echo_main(cells: list[str]) -> int:
    """Run the floor: per cell, subscribe and spin like the monitor, republish each frame's header, infer nothing."""
    import rclpy
    from rclpy.experimental import EventsExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from sensor_msgs.msg import Image, JointState

    from mcf_ros.ros.runtime import stop_event

    stop = stop_event()
    os.environ.update(ros_env.user_defaults(os.environ))
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    executor = EventsExecutor(context=context)  # as the monitor's
    camera_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
    nodes = []
    for cell in cells:
        node = Node(ECHO_NODE, namespace=f'/{cell}', context=context)
        publisher = node.create_publisher(JointState, '~/scores', 10)

        def echo(frame: Image, publisher=publisher) -> None:
            publisher.publish(JointState(header=frame.header, name=['echo'], position=[float(len(frame.data))]))

        node.create_subscription(Image, 'camera/image_raw', echo, camera_qos)
        node.create_subscription(JointState, 'joint_states', lambda _: None, 100)
        executor.add_node(node)
        nodes.append(node)
    nodes[0].get_logger().info('ready')
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
    finally:
        for node in nodes:
            executor.remove_node(node)
            node.destroy_node()
        rclpy.shutdown(context=context)
    return 0


class CellDriver:
    """Publishes one cell's camera and joint streams and records the latency of its output topic."""

    def __init__(self, node, joint_names: list[str], cell: str, frame_offset: float):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, JointState

        self.cell = cell
        self._node = node
        self._names = joint_names
        self._frame_offset = frame_offset
        self._namespace = f'/{cell}' if cell else ''
        camera_qos = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)
        self._frames = node.create_publisher(Image, f'{self._namespace}/camera/image_raw', camera_qos)
        self._joints = node.create_publisher(JointState, f'{self._namespace}/joint_states', 100)
        self._pixels = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        self._Image, self._JointState = Image, JointState
        self.latencies_ms: list[float] = []
        self.frames_sent = 0
        self.modes: set[str] = set()
        self._subscription = None

    def listen(self, topic: str) -> None:
        """Record the latency of every message on `topic` (relative: in the cell's namespace), replacing the last."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
        self.restart()
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self._subscription = self._node.create_subscription(
            self._JointState, f'{self._namespace}/{topic}', self._on_output, qos
        )

    def restart(self) -> None:
        """Forget what was counted so far: the measured phase starts now."""
        self.latencies_ms, self.modes, self.frames_sent = [], set(), 0

    def _on_output(self, message, info) -> None:
        """Latency to the middleware's reception time, so this process's own scheduling is not measured."""
        self.latencies_ms.append((info['received_timestamp'] - stamp_ns(message)) / 1e6)
        if 'mode' in message.name:
            self.modes.add(MODES[int(message.position[message.name.index('mode')])])

    def publish(self, tick: int) -> None:
        """Publish tick `tick` of 500 Hz: a joint state, and a frame when this cell's 30 Hz clock has ticked.

        A cell's clock runs `frame_offset` frames ahead of the first cell's; its frames go out 32 or 34 ms apart.
        """
        t = tick / JOINT_HZ
        joint = self._JointState(
            name=self._names,
            position=[0.5 * math.sin(0.5 * t + k) for k in range(len(self._names))],
            velocity=[0.25 * math.cos(0.5 * t + k) for k in range(len(self._names))],
            effort=[1.0] * len(self._names),
        )
        joint.header.stamp = self._node.get_clock().now().to_msg()
        self._joints.publish(joint)
        frames = math.floor(tick * FRAME_HZ / JOINT_HZ + self._frame_offset)
        if frames > math.floor((tick - 1) * FRAME_HZ / JOINT_HZ + self._frame_offset):
            frame = self._Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3)
            frame.header.frame_id = 'cell_camera'
            frame.data = np.roll(self._pixels, tick, axis=1).tobytes()
            frame.header.stamp = self._node.get_clock().now().to_msg()
            self._frames.publish(frame)
            self.frames_sent += 1

    def latency(self) -> CellLatency:
        """Return this cell's outputs since `restart`."""
        latencies = np.array(self.latencies_ms) if self.latencies_ms else np.array([math.nan])
        return CellLatency(
            self.cell, self.frames_sent, len(self.latencies_ms), float(np.median(latencies)),
            float(np.percentile(latencies, 99)),
        )  # fmt: skip


def publish_forever(drivers: list[CellDriver], stop: threading.Event) -> None:
    """Every 2 ms, each cell's tick (a joint state, and its frames at 30 Hz), stamped at publish time, until `stop`."""
    start = time.monotonic()
    tick = 0
    while not stop.is_set():
        time.sleep(max(0.0, start + tick / JOINT_HZ - time.monotonic()))
        for driver in drivers:
            driver.publish(tick)
        tick += 1


def _cpu_seconds(pid: int) -> float:
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _rss_mb(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return math.nan


def _measure(
    name: str, command: list[str], ready: str, topic: str, drivers: list[CellDriver], log: Path, warmup_s: float,
    duration_s: float,
) -> Phase:  # fmt: skip
    """Start the process under test, let it warm up, and measure latency, CPU and RSS for `duration_s`.

    `topic` is the output, relative to each cell's namespace.
    """
    with log.open('w') as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    if len(os.sched_getaffinity(0)) >= 2:  # the node gets the cores this process does not use, as on a cell PC
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(process.pid, cores[1:])
    try:
        wait_for_text(log, ready, process, name)
        for driver in drivers:
            driver.listen(topic)
        time.sleep(warmup_s)
        for driver in drivers:
            driver.restart()
        cpu_before, started = _cpu_seconds(process.pid), time.monotonic()
        time.sleep(duration_s)
        cpu = 100.0 * (_cpu_seconds(process.pid) - cpu_before) / (time.monotonic() - started)
        cells = [driver.latency() for driver in drivers]
        latencies = np.concatenate([driver.latencies_ms for driver in drivers])
        modes = set().union(*(driver.modes for driver in drivers))
        rss = _rss_mb(process.pid)
    finally:
        interrupt(process)
    silent = [cell.cell or '/' for cell in cells if cell.windows == 0]
    if silent:
        raise RuntimeError(f'no output from {name} on {topic} of {", ".join(silent)}:\n{log.read_text()}')
    if modes - {'nominal'}:
        raise RuntimeError(f'{name} was not scoring both streams (modes {sorted(modes)}):\n{log.read_text()}')
    device = re.search(r'active on (\S+):', log.read_text())
    return Phase(
        name, device.group(1) if device else '-', len(latencies), float(np.median(latencies)),
        float(np.percentile(latencies, 99)), cpu, rss, cells,
    )  # fmt: skip


def bench_model(model_path: str, out: Path) -> str:
    """Return a copy of the model declared for the bench's frame size (the weights, and so the cost, are the same).

    Its exported ONNX file goes beside the copy too, so the monitor runs the backend it runs for the user.
    """
    from mcf_ros.model.artifact import load_artifact, save_artifact
    from mcf_ros.model.onnx_backend import onnx_beside

    artifact = load_artifact(model_path)
    header = json.loads(json.dumps(artifact.header))
    header['modalities']['camera']['resolution'] = [WIDTH, HEIGHT]
    save_artifact(out, header, artifact.state_dict)
    if onnx_beside(model_path).is_file():
        shutil.copyfile(onnx_beside(model_path), onnx_beside(out))
    return str(out)


def run_bench(
    model_path: str | None, device: str, duration_s: float, json_path: str | None, cells: int = 1, log=print
) -> dict:
    """Measure the floor, the model alone and the monitor for `cells` cells; return (and optionally write) them."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    from mcf_ros.model.artifact import load_artifact

    source_model = model_path or str(share_dir() / 'models' / 'ur5e_cell.mcf')
    joint_names = load_artifact(source_model).header['window']['joint_names']
    workdir = Path(tempfile.mkdtemp(prefix='mcf_bench_'))
    model_path = bench_model(source_model, workdir / 'bench.mcf')
    os.environ.update(ros_env.isolated(int(os.environ.get('MCF_BENCH_DOMAIN', BENCH_DOMAIN)), workdir / 'ros_log'))
    ros_env.remove_orphaned_shm_segments()
    if len(os.sched_getaffinity(0)) >= 2:  # this process plays the cells' sensors on the first core
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
    log(f'model alone ({device}) ...')
    model = model_latency(model_path, device)
    model_batch = model_latency(model_path, device, batch=cells) if cells > 1 else model
    log('frame -> model input, per transport ...')
    frames = frame_costs(load_artifact(source_model).header['model']['image_size'])
    names = [f'cell_{k + 1}' for k in range(cells)] if cells > 1 else ['']
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('mcf_bench_cell', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    drivers = [CellDriver(node, joint_names, name, k / cells) for k, name in enumerate(names)]
    done = threading.Event()

    def spin() -> None:
        while not done.is_set():
            executor.spin_once(timeout_sec=0.05)

    threads = [
        threading.Thread(target=publish_forever, args=(drivers, done), daemon=True),
        threading.Thread(target=spin, daemon=True),
    ]
    for thread in threads:
        thread.start()
    python = [sys.executable, '-m']
    cells_argument = ['--cells', ','.join(names)] if cells > 1 else []
    try:
        log(f'DDS floor: echo node{"s" if cells > 1 else ""}, {duration_s:g} s ...')
        floor = _measure(
            'echo', [*python, 'mcf_ros.ros.bench', ','.join(names)], 'ready', f'{ECHO_NODE}/scores', drivers,
            workdir / 'echo.log', 3.0, duration_s,
        )  # fmt: skip
        log(f'monitor on {device}{f", {cells} cells" if cells > 1 else ""}, {duration_s:g} s ...')
        monitor_command = [
            *python, 'mcf_ros.ros.monitor', '--autostart', *cells_argument, '--ros-args',
            '-p', f'model_path:={model_path}', '-p', f'device:={device}',
        ]  # fmt: skip
        monitor = _measure(
            'monitor', monitor_command, 'active on', 'mcf_monitor/scores', drivers, workdir / 'monitor.log', 5.0,
            duration_s,
        )  # fmt: skip
    finally:
        done.set()
        for thread in threads:
            thread.join(2)
        node.destroy_node()
        rclpy.shutdown(context=context)
        ros_env.remove_orphaned_shm_segments()
    budget = 2 * floor.p99_ms + model_batch['p99_ms']
    results = {
        'setup': {
            'cells': cells,
            'frames': f'{WIDTH}x{HEIGHT} rgb8 @ {FRAME_HZ:g} Hz per cell',
            'joint_states_hz': JOINT_HZ,
            'seconds': duration_s,
            'cpu_count': os.cpu_count(),
            'model': source_model,
        },
        'floor': asdict(floor),
        'model': model,
        'model_all_cells': model_batch,
        'frame_to_input': frames,
        'monitor': asdict(monitor),
        'ratio_p50_to_floor': monitor.p50_ms / floor.p50_ms,
        'ratio_p99_to_floor': monitor.p99_ms / floor.p99_ms,
        'p99_budget_ms': budget,
        'p99_within_budget': monitor.p99_ms <= budget,
        'cells_within_budget': sum(cell.p99_ms <= budget for cell in monitor.cells),
    }
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2))
    return results


def table(results: dict) -> str:
    """Return the results as a Markdown table with the ratios to the floor; per cell when there are several."""
    floor, monitor, model, batch = results['floor'], results['monitor'], results['model'], results['model_all_cells']
    cells = results['setup']['cells']

    def row(stage: str, phase: dict | None, p50: float, p99: float) -> str:
        resources = f'{phase["cpu_percent"]:.0f} | {phase["rss_mb"]:.0f}' if phase else ' | '
        return f'| {stage} | {phase["windows"] if phase else ""} | {p50:.2f} | {p99:.2f} | {resources} |'

    every = f', {cells} cells' if cells > 1 else ''
    rows = [
        '| stage | windows | p50 ms | p99 ms | CPU % | RSS MB |',
        '|---|---|---|---|---|---|',
        row(f'DDS floor (echo node{every})', floor, floor['p50_ms'], floor['p99_ms']),
        row(f'model alone ({model["device"]}, {model["backend"]}, batch 1)', None, model['p50_ms'], model['p99_ms']),
    ]
    if cells > 1:
        rows.append(row(f'model alone, batch {cells}', None, batch['p50_ms'], batch['p99_ms']))
    rows += [
        row(f'monitor ({monitor["device"]}{every}), frame -> ~/scores', monitor, monitor['p50_ms'], monitor['p99_ms']),
        f'| monitor / floor | | {results["ratio_p50_to_floor"]:.1f}x | {results["ratio_p99_to_floor"]:.1f}x | | |',
    ]
    for name, cost in results['frame_to_input'].items():
        stage = f'frame -> model input, {name} ({cost["kb"]:.0f} KB)'
        rows.append(f'| {stage} | | {cost["p50_ms"]:.2f} | {cost["p99_ms"]:.2f} | | |')
    budget = results['p99_budget_ms']
    formula = f'2 x floor p99 + model p99{f" at batch {cells}" if cells > 1 else ""} = {budget:.2f} ms'
    if cells > 1:
        rows += [
            '\n| cell | frames sent | scored | floor p99 ms | monitor p50 ms | monitor p99 ms |',
            '|---|---|---|---|---|---|',
        ]
        for echo, cell in zip(floor['cells'], monitor['cells'], strict=True):
            share = 100 * cell['windows'] / max(cell['frames'], 1)
            rows.append(
                f'| {cell["cell"]} | {cell["frames"]} | {share:.0f} % | {echo["p99_ms"]:.2f} | {cell["p50_ms"]:.2f} '
                f'| {cell["p99_ms"]:.2f} |'
            )
        rows.append(f'\n{results["cells_within_budget"]} of {cells} cells have p99 within the budget {formula}')
    else:
        verdict = 'within' if results['p99_within_budget'] else 'OVER'
        rows.append(f'\np99 {monitor["p99_ms"]:.2f} ms is {verdict} the budget {formula}')
    return '\n'.join(rows)


if __name__ == '__main__':
    sys.exit(echo_main(sys.argv[1].split(',') if len(sys.argv) > 1 else ['']))
