"""Which streams are alive, judged on the steady clock: the monitor's mode. Pure: no rclpy."""

import math

MODES_BY_LIVE_STREAMS = {
    (True, True): 'nominal',
    (False, True): 'degraded-camera',
    (True, False): 'degraded-kinematics',
    (False, False): 'stale',
}


class StreamModes:
    """Tracks when the camera and the joints last delivered usable input; a stream silent `stale_after_s` is lost."""

    def __init__(self, stale_after_s: float):
        self.stale_after_s = stale_after_s
        self.mode = 'stale'
        self._last = {'camera': -math.inf, 'kinematics': -math.inf}

    def arrived(self, stream: str, now_s: float) -> None:
        """Note usable input on 'camera' or 'kinematics' at `now_s` (monotonic seconds)."""
        self._last[stream] = now_s

    def update(self, now_s: float) -> str | None:
        """Return the new mode if it changed at `now_s`, else None."""
        live = tuple(now_s - self._last[stream] < self.stale_after_s for stream in ('camera', 'kinematics'))
        mode = MODES_BY_LIVE_STREAMS[live]
        if mode == self.mode:
            return None
        self.mode = mode
        return mode
