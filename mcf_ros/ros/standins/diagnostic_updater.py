"""A stand-in for the `diagnostic_updater` API the monitor uses: Updater and DiagnosticStatusWrapper.

As in the ROS 2 package, the updater publishes a DiagnosticArray on /diagnostics every `period`
seconds, one status per task, named 'NODE: TASK' and tagged with the hardware id; each task
fills a DiagnosticStatusWrapper with a summary and key-value pairs.
"""

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


class DiagnosticStatusWrapper(DiagnosticStatus):
    """A DiagnosticStatus with the helpers tasks use to fill it."""

    def summary(self, level, message):
        """Set the level (DiagnosticStatus.OK/WARN/ERROR/STALE) and the message."""
        self.level = level
        self.message = message

    def add(self, key, value):
        """Append a key-value pair; the value must already be a string.

        diagnostic_updater stores it as given, and a non-string fails when the array is published:
        refused here at once, so that code the stand-in passes also runs with the real package.
        """
        if not isinstance(value, str):
            raise TypeError(f'diagnostic value of {key!r} must be a str, got {type(value).__name__}')
        self.values.append(KeyValue(key=key, value=value))


class Updater:
    """Runs the registered diagnostic tasks periodically and publishes their statuses."""

    def __init__(self, node, period=1.0):
        self.node = node
        self.hwid = 'none'
        self.tasks = []
        self.publisher = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.timer = node.create_timer(period, self.update)

    def setHardwareID(self, hwid):  # noqa: N802 (diagnostic_updater API)
        """Set the hardware id every status carries."""
        self.hwid = hwid

    def add(self, name, task):
        """Register `task(stat) -> stat`, run on each update."""
        self.tasks.append((name, task))

    def update(self):
        """Run every task and publish the statuses."""
        statuses = []
        for name, task in self.tasks:
            stat = DiagnosticStatusWrapper(name=f'{self.node.get_name()}: {name}', hardware_id=self.hwid)
            statuses.append(task(stat))
        self.publisher.publish(DiagnosticArray(header=self._header(), status=statuses))

    def force_update(self):
        """Publish now instead of waiting for the period."""
        self.update()

    def _header(self):
        array = DiagnosticArray()
        array.header.stamp = self.node.get_clock().now().to_msg()
        return array.header
