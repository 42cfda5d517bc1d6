"""Flag episodes from a stream of scored windows: when the flag rose and fell, how high, what was blamed. Pure.

An episode starts at the first window past the threshold in the run that raised the flag, and ends
at the first window back below it in the run that cleared it (the flag's persistence is not part
of the episode). The monitor logs each episode and cuts its clip from these times.
"""

import math
from collections import Counter
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Episode:
    """One flag episode on the header-stamp clock: [start_s, end_s), its peak score and what was blamed most."""

    start_s: float
    end_s: float
    peak_score: float
    threshold: float
    blame: str  # the modality blamed in most of its flagged windows
    mode: str  # the monitor's mode in most of them
    windows: int  # flagged windows

    def record(self, **extra) -> dict:
        """Return the episode as a JSON-ready dict, with `extra` fields (clip path, model id)."""
        return {**asdict(self), 'duration_s': round(self.end_s - self.start_s, 6), **extra}


class EpisodeTracker:
    """Follows the flag window by window and returns each episode when the flag clears."""

    def __init__(self):
        self._last_end_s = -math.inf
        self._run_start_s: float | None = None  # first window of the current run on one side of the threshold
        self._run_above = False
        self._open: dict | None = None

    @property
    def open_since_s(self) -> float | None:
        """Return the start of the episode under way, or None."""
        return None if self._open is None else self._open['start_s']

    def step(self, end_s: float, scored: dict, mode: str) -> list[Episode]:
        """Take one scored window (StreamScorer.step's dict); return the episodes it ended (none, or one).

        A window that ends before the previous one (a bag loop) ends the episode under way at the
        previous window, as the scorer starts afresh there.
        """
        ended = self.finish() if end_s < self._last_end_s else []
        self._last_end_s = end_s
        above = scored['anomaly_score'] > scored['threshold']
        if above != self._run_above or self._run_start_s is None:
            self._run_above, self._run_start_s = above, end_s
        if self._open is None and scored['is_anomaly']:
            start_s = self._run_start_s if above else end_s
            self._open = {'start_s': start_s, 'peak': -math.inf, 'blame': Counter(), 'mode': Counter()}
        episode = self._open
        if episode is None:
            return ended
        episode['peak'] = max(episode['peak'], float(scored['anomaly_score']))
        episode['threshold'] = float(scored['threshold'])
        if scored['is_anomaly']:
            episode['blame'][scored['blame']] += 1
            episode['mode'][mode] += 1
            return ended
        return [*ended, self._close(self._run_start_s if not above else end_s)]

    def finish(self) -> list[Episode]:
        """End the episode under way at the last window (the stream stopped); return it, if any."""
        if self._open is None:
            return []
        return [self._close(self._last_end_s)]

    def _close(self, end_s: float) -> Episode:
        episode, self._open = self._open, None
        return Episode(
            start_s=episode['start_s'],
            end_s=max(end_s, episode['start_s']),
            peak_score=episode['peak'],
            threshold=episode.get('threshold', math.nan),
            blame=episode['blame'].most_common(1)[0][0],
            mode=episode['mode'].most_common(1)[0][0],
            windows=sum(episode['blame'].values()),
        )
