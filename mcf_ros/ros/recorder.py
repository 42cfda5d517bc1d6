"""Record topics to MCAP from raw subscriptions, so the stored bytes are the bytes on the wire.

Each message is stored with its DDS reception time (system clock, ns). Topics are subscribed as
soon as they appear in the graph, with the QoS their publishers offer. On stop, messages already
delivered to the subscriptions are drained and the bag is finalised, so none is lost.
"""

import threading
import time
from dataclasses import dataclass, field

from rclpy.executors import Executor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from mcf_ros.data.bags import BagWriter
from mcf_ros.ros.runtime import message_class

GRAPH_POLL_S = 0.1
DRAIN_QUIET_SPINS = 3
DRAIN_LIMIT_S = 2.0
# Replayed at --rate 5, a 500 Hz joint stream is 2500 messages/s; a recorder stalled for a moment
# on a busy 2-core machine lost a third of them with 1000.
SUBSCRIPTION_DEPTH = 10000


@dataclass
class RecordStats:
    """What a recording holds: messages per topic."""

    recorded: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Count all messages."""
        return sum(self.recorded.values())


class Recorder:
    """Subscribes to the requested topics as they appear and writes every message to a bag."""

    def __init__(self, node: Node, writer: BagWriter, topics: list[str]):
        self._node = node
        self._writer = writer
        self._pending = list(dict.fromkeys(topics))
        self.stats = RecordStats(recorded=dict.fromkeys(self._pending, 0))

    def run(self, executor: Executor, stop: threading.Event, duration_s: float | None = None) -> RecordStats:
        """Record until `stop` is set or `duration_s` has passed, then drain what was delivered."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        next_poll = 0.0
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            if self._pending and time.monotonic() >= next_poll:
                self._subscribe_new_topics()
                next_poll = time.monotonic() + GRAPH_POLL_S
            executor.spin_once(timeout_sec=GRAPH_POLL_S)
        self._drain(executor)
        for topic in self._pending:
            self._node.get_logger().warning(f'{topic} never appeared; nothing recorded for it')
        return self.stats

    def _subscribe_new_topics(self) -> None:
        types = dict(self._node.get_topic_names_and_types())
        for topic in [t for t in self._pending if t in types]:
            offered = self._node.get_publishers_info_by_topic(topic)
            if not offered:
                continue
            msgtype = types[topic][0]
            self._writer.add_topic(topic, msgtype)
            self._node.create_subscription(
                message_class(msgtype), topic, self._writer_callback(topic), _matching_qos(offered), raw=True
            )
            self._pending.remove(topic)
            self._node.get_logger().info(f'recording {topic} [{msgtype}]')

    def _writer_callback(self, topic: str):
        def store(data: bytes, info: dict) -> None:
            self._writer.write(topic, info['received_timestamp'], data)
            self.stats.recorded[topic] += 1

        return store

    def _drain(self, executor: Executor) -> None:
        """Spin until the subscriptions have been quiet for a few spins, bounded in time."""
        quiet = 0
        deadline = time.monotonic() + DRAIN_LIMIT_S
        while quiet < DRAIN_QUIET_SPINS and time.monotonic() < deadline:
            before = self.stats.total
            executor.spin_once(timeout_sec=0.02)
            quiet = quiet + 1 if self.stats.total == before else 0


def _matching_qos(offered) -> QoSProfile:
    """Return reliable QoS if every publisher offers it, else best effort (which matches any publisher)."""
    reliable = all(info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in offered)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=SUBSCRIPTION_DEPTH,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
    )
