"""rosbag2 I/O through `rosbags`, so bags are read and written without a ROS distro.

Messages stay as serialized CDR bytes: replay and record pass them through untouched, so the
bytes on the wire equal the bytes in the bag. Timestamps are nanoseconds on the bag's log clock.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rosbags.rosbag2 import Reader, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

from mcf_ros.errors import UserError

STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}
BAG_VERSION = 9


def typestore():
    """Return the message definitions of the ROS 2 release the wheels ship (Kilted)."""
    return get_typestore(Stores.ROS2_KILTED)


@dataclass(frozen=True)
class RawMessage:
    """One serialized message as stored in a bag."""

    topic: str
    msgtype: str
    stamp_ns: int
    data: bytes


class BagReader:
    """A rosbag2 directory (MCAP or sqlite3) opened for reading, with user-facing errors."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise UserError(f'bag not found: {self.path}')
        if self.path.is_file():
            self.path = self.path.parent
        if not (self.path / 'metadata.yaml').is_file():
            raise UserError(f'not a rosbag2 directory (no metadata.yaml): {self.path}')
        self._reader = Reader(self.path)
        self._first_ns: int | None = None
        try:
            self._reader.open()
        except Exception as err:
            raise UserError(f'cannot read bag {self.path}: {err or type(err).__name__}') from None

    def close(self) -> None:
        """Release the storage files."""
        self._reader.close()

    def __enter__(self) -> 'BagReader':
        """Return the open reader."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the reader."""
        self.close()

    @property
    def topics(self) -> dict[str, str]:
        """Map each topic to its message type, e.g. '/joint_states' -> 'sensor_msgs/msg/JointState'."""
        return {c.topic: c.msgtype for c in self._reader.connections}

    @property
    def topic_counts(self) -> dict[str, int]:
        """Map each topic to its message count, as the bag's index records it."""
        counts: dict[str, int] = {}
        for connection in self._reader.connections:
            counts[connection.topic] = counts.get(connection.topic, 0) + connection.msgcount
        return counts

    @property
    def message_count(self) -> int:
        """Count the messages on all topics."""
        return self._reader.message_count

    @property
    def start_ns(self) -> int:
        """Return the log time of the first message (metadata.yaml's start can be later, as in a split bag)."""
        if self._first_ns is None:
            self._first_ns = self._reader.start_time
            try:
                for _, stamp_ns, _ in self._reader.messages():
                    self._first_ns = min(self._first_ns, stamp_ns)
                    break
            except Exception:  # a corrupt bag says so when its messages are read
                pass
        return self._first_ns

    @property
    def end_ns(self) -> int:
        """Return the log time of the last message."""
        return self._reader.end_time

    def check_topics(self, topics: Iterable[str] | None) -> list[str]:
        """Return the requested topics (all when None), refusing any the bag lacks or an empty bag."""
        if self.message_count == 0:
            raise UserError(f'bag has no messages: {self.path}')
        if topics is None:
            return sorted(self.topics)
        unknown = [t for t in topics if t not in self.topics]
        if unknown:
            raise UserError(
                f'topic {", ".join(unknown)} not in bag {self.path} (it has: {", ".join(sorted(self.topics))})'
            )
        return list(topics)

    def messages(
        self, topics: Iterable[str] | None = None, start_ns: int | None = None, stop_ns: int | None = None
    ) -> Iterator[RawMessage]:
        """Yield messages in log-time order, optionally logged in [`start_ns`, `stop_ns`) and on some topics only."""
        wanted = set(self.check_topics(topics))
        connections = [c for c in self._reader.connections if c.topic in wanted]
        try:
            for connection, stamp_ns, data in self._reader.messages(connections, start=start_ns, stop=stop_ns):
                yield RawMessage(connection.topic, connection.msgtype, stamp_ns, bytes(data))
        except Exception as err:
            raise UserError(f'bag {self.path} is corrupt: {err or type(err).__name__}') from None


@contextmanager
def bag_writer(path: str | Path, storage: str = 'mcap') -> Iterator['BagWriter']:
    """Open a new rosbag2 directory for writing; it is finalised (index, metadata) on exit."""
    if storage not in STORAGES:
        raise UserError(f'unknown storage {storage!r}; choose one of {", ".join(STORAGES)}')
    path = Path(path)
    if path.exists():
        raise UserError(f'output already exists: {path}')
    writer = Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    try:
        writer.open()
    except (WriterError, OSError) as err:
        raise UserError(f'cannot create bag {path}: {err}') from None
    try:
        yield BagWriter(writer)
    finally:
        writer.close()


class BagWriter:
    """Writes serialized messages to an open rosbag2 writer, adding a connection per topic on first use."""

    def __init__(self, writer: Writer):
        self._writer = writer
        self._typestore = typestore()
        self._connections = {}

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declare a topic; its type must be one the Kilted typestore knows."""
        if topic in self._connections:
            return
        if msgtype not in self._typestore.fielddefs:
            raise UserError(f'message type {msgtype} of {topic} is unknown to the rosbags Kilted typestore')
        self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self._typestore)

    def write(self, topic: str, stamp_ns: int, data: bytes) -> None:
        """Append one serialized message; `stamp_ns` is its log time in nanoseconds."""
        self._writer.write(self._connections[topic], stamp_ns, data)
