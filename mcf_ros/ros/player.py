"""Replay a rosbag2 over DDS as its stored bytes, on the recorded timing, with /clock.

Messages are published as the CDR bytes stored in the bag, so subscribers receive what was
recorded, up to Fast DDS padding each payload to a multiple of 4 bytes. A reader thread
prefetches from storage so that disk and decompression never delay a publish; the main thread
only sleeps until each message's due time and publishes it.
"""

import collections
import queue
import threading
import time
from dataclasses import dataclass, field

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock

from mcf_ros.data.bags import BagReader, RawMessage
from mcf_ros.errors import UserError
from mcf_ros.progress import ProgressLine
from mcf_ros.ros.runtime import message_class

# Reliable publishers match both reliable and best-effort subscribers.
REPLAY_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
PREFETCH_MESSAGES = 256
SETTLE_AFTER_MATCH_S = 0.5
ACK_TIMEOUT_S = 5.0
LATENESS_WINDOW = 10_000


@dataclass
class ReplayOptions:
    """How to replay: speed factor, looping, where to start, which topics, and the /clock rate."""

    rate: float = 1.0
    loop: bool = False
    start_offset_s: float = 0.0
    topics: list[str] | None = None
    clock_hz: float = 100.0
    wait_for_subscribers_s: float = 0.0
    progress: bool = True


@dataclass
class ReplayStats:
    """What a replay did: messages per topic and how late the recent publishes were against schedule (s)."""

    published: dict[str, int] = field(default_factory=dict)
    lateness_s: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENESS_WINDOW))
    loops: int = 0
    reached_end: bool = False  # the bag was read to its end (not stopped by a signal)

    def lateness_percentile_ms(self, q: float) -> float:
        """Return the q-th percentile (0-100) of publish lateness, in milliseconds."""
        if not self.lateness_s:
            return 0.0
        ordered = sorted(self.lateness_s)
        return 1e3 * ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class BagPlayer:
    """Publishes one bag's messages on the recorded timing, scaled by `rate`."""

    def __init__(self, node: Node, bag: BagReader, options: ReplayOptions):
        if options.rate <= 0:
            raise UserError(f'--rate must be positive, got {options.rate}')
        if options.start_offset_s < 0:
            raise UserError(f'--start-offset must be >= 0, got {options.start_offset_s}')
        self._node = node
        self._bag = bag
        self._options = options
        self._topics = bag.check_topics(options.topics)
        self._begin_ns = bag.start_ns + int(options.start_offset_s * 1e9)
        if self._begin_ns > bag.end_ns:
            span = (bag.end_ns - bag.start_ns) / 1e9
            raise UserError(f'--start-offset {options.start_offset_s} s is past the end of the bag ({span:.2f} s)')
        # One loop lasts the bag's span plus one message gap, so a loop's last and the next loop's
        # first message are not published at the same instant.
        gap_ns = (bag.end_ns - bag.start_ns) // max(1, bag.message_count - 1)
        self._loop_ns = bag.end_ns - self._begin_ns + gap_ns
        self._publishers = {
            topic: node.create_publisher(message_class(bag.topics[topic]), topic, REPLAY_QOS) for topic in self._topics
        }
        self._clock = node.create_publisher(Clock, '/clock', REPLAY_QOS) if options.clock_hz > 0 else None
        self._prefetched = queue.Queue(maxsize=PREFETCH_MESSAGES)

    def run(self, stop: threading.Event) -> ReplayStats:
        """Replay until the bag ends (or forever with loop) or `stop` is set; return what was done."""
        self._wait_for_subscribers(stop)
        reader = threading.Thread(target=self._prefetch, args=(stop,), name='bag-prefetch', daemon=True)
        reader.start()
        stats = ReplayStats(published=dict.fromkeys(self._topics, 0))
        start = time.monotonic()
        next_clock = start
        progress = ProgressLine('replay') if self._options.progress else None
        while not stop.is_set():
            item = self._prefetched.get()
            if isinstance(item, BaseException):
                raise item
            if item is None:
                stats.reached_end = True
                break
            loop, message = item
            stats.loops = loop
            due = start + (loop * self._loop_ns + message.stamp_ns - self._begin_ns) / 1e9 / self._options.rate
            while self._clock is not None and next_clock <= due and not stop.is_set():
                self._sleep_until(next_clock, stop)
                self._publish_clock(start)
                next_clock += 1.0 / self._options.clock_hz
            self._sleep_until(due, stop)
            if stop.is_set():
                break
            self._publishers[message.topic].publish(message.data)
            stats.lateness_s.append(time.monotonic() - due)
            stats.published[message.topic] += 1
            if progress:
                progress.update(self._progress_text(start, stats))
        stop.set()
        reader.join()
        for publisher in self._publishers.values():
            publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
        if progress:
            progress.finish(self._progress_text(start, stats))
        return stats

    def _wait_for_subscribers(self, stop: threading.Event) -> None:
        """Hold the start until every topic has a subscriber, so a recorder started alongside misses nothing."""
        if self._options.wait_for_subscribers_s <= 0:
            return
        deadline = time.monotonic() + self._options.wait_for_subscribers_s
        while not stop.is_set():
            waiting = [t for t, p in self._publishers.items() if p.get_subscription_count() == 0]
            if not waiting:
                stop.wait(SETTLE_AFTER_MATCH_S)
                return
            if time.monotonic() > deadline:
                self._node.get_logger().warning(f'starting without subscribers on {", ".join(waiting)}')
                return
            stop.wait(0.05)

    def _prefetch(self, stop: threading.Event) -> None:
        """Read messages ahead into the bounded queue; None marks the end, an exception is passed on."""
        loop = 0
        try:
            while not stop.is_set():
                for message in self._bag.messages(self._topics, start_ns=self._begin_ns):
                    if not self._put((loop, message), stop):
                        return
                if not self._options.loop:
                    break
                loop += 1
            self._put(None, stop)
        except BaseException as err:
            self._put(err, stop)

    def _put(self, item: tuple[int, RawMessage] | BaseException | None, stop: threading.Event) -> bool:
        while not stop.is_set():
            try:
                self._prefetched.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _publish_clock(self, start: float) -> None:
        elapsed_ns = int((time.monotonic() - start) * self._options.rate * 1e9)
        stamp_ns = self._begin_ns + elapsed_ns % self._loop_ns
        message = Clock()
        message.clock.sec, message.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
        self._clock.publish(message)

    @staticmethod
    def _sleep_until(deadline: float, stop: threading.Event) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            stop.wait(remaining)

    def _progress_text(self, start: float, stats: ReplayStats) -> str:
        return (
            f'{time.monotonic() - start:7.1f} s wall, {sum(stats.published.values())} messages, loop {stats.loops}, '
            f'lateness p99 {stats.lateness_percentile_ms(99):.2f} ms'
        )
