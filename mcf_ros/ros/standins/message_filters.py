"""A stand-in for the `message_filters` API the monitor uses: Subscriber, Cache, ApproximateTimeSynchronizer.

Same constructors, `registerCallback` and chaining as the ROS 2 package. The synchronizer
matches as it does for two inputs: when a message arrives, it is paired with the nearest queued
message of each other input, the set is emitted if its stamps span less than `slop`, and the
matched messages are forgotten. Stamps are rclpy Time objects taken from `header.stamp`, which may
be a builtin_interfaces Time message or, as the ROS 2 package also accepts, an rclpy Time.
"""

import threading

from rclpy.duration import Duration
from rclpy.time import Time


def _stamp(message) -> Time:
    stamp = message.header.stamp
    return stamp if hasattr(stamp, 'nanoseconds') else Time.from_msg(stamp)


class SimpleFilter:
    """A filter that passes its output to registered callbacks."""

    def __init__(self):
        self.callbacks = {}

    def registerCallback(self, callback, *args):  # noqa: N802 (message_filters API)
        """Call `callback(*messages, *args)` on each output; return the connection id."""
        connection = len(self.callbacks)
        self.callbacks[connection] = (callback, args)
        return connection

    def signalMessage(self, *messages):  # noqa: N802
        """Pass messages to every registered callback."""
        for callback, args in list(self.callbacks.values()):
            callback(*messages, *args)


class Subscriber(SimpleFilter):
    """The source of a filter chain: a subscription; arguments as for `node.create_subscription` minus the callback."""

    def __init__(self, node, msg_type, topic, **kwargs):
        super().__init__()
        self.node = node
        self.topic = topic
        kwargs.setdefault('qos_profile', 10)
        self.sub = node.create_subscription(msg_type, topic, self.signalMessage, **kwargs)

    def getTopic(self):  # noqa: N802
        """Return the topic name."""
        return self.topic


class Cache(SimpleFilter):
    """Keeps the last `cache_size` messages of its input for lookup by stamp, and passes each one on."""

    def __init__(self, f, cache_size=1, allow_headerless=False):
        super().__init__()
        if allow_headerless:
            raise NotImplementedError('the stand-in Cache needs header stamps')
        self.cache_size = cache_size
        self.cache_msgs = []
        self.cache_times = []
        self.incoming_connection = f.registerCallback(self.add)

    def add(self, msg):
        """Store a message (dropping the oldest beyond cache_size) and signal it."""
        self.cache_msgs.append(msg)
        self.cache_times.append(_stamp(msg))
        if len(self.cache_msgs) > self.cache_size:
            del self.cache_msgs[0], self.cache_times[0]
        self.signalMessage(msg)

    def getInterval(self, from_stamp, to_stamp):  # noqa: N802
        """Return the cached messages stamped within [from_stamp, to_stamp], in arrival order."""
        return [m for m, t in zip(self.cache_msgs, self.cache_times, strict=True) if from_stamp <= t <= to_stamp]

    def getElemAfterTime(self, stamp):  # noqa: N802
        """Return the oldest message stamped at or after `stamp`, or None."""
        return next((m for m, t in zip(self.cache_msgs, self.cache_times, strict=True) if t >= stamp), None)

    def getElemBeforeTime(self, stamp):  # noqa: N802
        """Return the newest message stamped at or before `stamp`, or None."""
        older = [m for m, t in zip(self.cache_msgs, self.cache_times, strict=True) if t <= stamp]
        return older[-1] if older else None

    def getLastestTime(self):  # noqa: N802 (sic, as in message_filters)
        """Return the newest stamp, or None."""
        return self.cache_times[-1] if self.cache_times else None

    def getOldestTime(self):  # noqa: N802
        """Return the oldest stamp, or None."""
        return self.cache_times[0] if self.cache_times else None

    def getLast(self):  # noqa: N802
        """Return the newest message, or None."""
        return self.cache_msgs[-1] if self.cache_msgs else None


class ApproximateTimeSynchronizer(SimpleFilter):
    """Emits one message per input whose stamps lie within `slop` seconds of each other."""

    def __init__(self, fs, queue_size, slop, allow_headerless=False):
        super().__init__()
        if allow_headerless:
            raise NotImplementedError('the stand-in synchronizer needs header stamps')
        self.queue_size = queue_size
        self.slop = Duration(seconds=slop)
        self.lock = threading.Lock()
        self.queues = [{} for _ in fs]
        self.input_connections = [f.registerCallback(self.add, q, i) for i, (f, q) in enumerate(zip(fs, self.queues))]  # noqa: B905

    def add(self, msg, my_queue, my_queue_index=None):
        """Queue a message from one input and emit the first complete set within slop, if any."""
        stamp = _stamp(msg).nanoseconds
        slop = self.slop.nanoseconds
        with self.lock:
            my_queue[stamp] = msg
            while len(my_queue) > self.queue_size:
                del my_queue[min(my_queue)]
            if stamp not in my_queue:  # older than everything queued (e.g. a bag loop): dropped at once
                return
            choice = []
            for index, queue in enumerate(self.queues):
                if index == my_queue_index:
                    choice.append(stamp)
                    continue
                near = sorted((abs(t - stamp), t) for t in queue if abs(t - stamp) <= slop)
                if not near:
                    return
                choice.append(near[0][1])
            if max(choice) - min(choice) >= slop:
                return
            matched = [queue.pop(t) for queue, t in zip(self.queues, choice, strict=True)]
        self.signalMessage(*matched)
