"""Flag episodes and anomaly clips without ROS: where an episode starts and ends, what a clip holds, the bounds."""

import json
import threading
import time

import numpy as np
import pytest

from mcf_ros.data.bags import BagReader
from mcf_ros.data.clips import EPISODE_KIND, EPISODE_LOG, Clip, ClipKeeper, ClipWriter, directory_bytes
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import joint_state_cdr, parse
from mcf_ros.model.episodes import Episode, EpisodeTracker
from mcf_ros.model.scoring import PersistentFlag

THRESHOLD = 10.0
HZ = 10.0


def scored_stream(scores, persistence=3, blames=None):
    """Return (end_s, scored dict) per window, the flag from a real PersistentFlag."""
    flag = PersistentFlag(persistence)
    stream = []
    for i, score in enumerate(scores):
        raised = flag.update(score > THRESHOLD)
        blame = (blames[i] if blames else 'camera') if raised else 'none'
        scored = {'anomaly_score': score, 'threshold': THRESHOLD, 'is_anomaly': raised, 'blame': blame}
        stream.append((i / HZ, scored))
    return stream


def episodes_of(stream, tracker=None):
    tracker = tracker or EpisodeTracker()
    ended = []
    for end_s, scored in stream:
        ended += tracker.step(end_s, scored, 'nominal')
    return ended, tracker


def test_an_episode_spans_the_windows_past_the_threshold_not_the_flag_persistence():
    scores = [1.0] * 20 + [50.0] * 10 + [80.0] + [1.0] * 20  # above from window 20 to 30
    ended, tracker = episodes_of(scored_stream(scores))
    assert len(ended) == 1 and tracker.open_since_s is None
    episode = ended[0]
    assert episode.start_s == pytest.approx(2.0)  # the first window above, not the one that raised the flag
    assert episode.end_s == pytest.approx(3.1)  # the first window below, not the one that cleared it
    assert episode.peak_score == 80.0 and episode.threshold == THRESHOLD
    assert episode.windows == 11  # flagged: rises at 22, clears at 33
    record = json.loads(json.dumps(episode.record(clip='x', model_id='abc')))
    assert record['duration_s'] == pytest.approx(1.1) and record['clip'] == 'x' and record['blame'] == 'camera'


def test_the_blame_of_an_episode_is_the_one_of_most_of_its_flagged_windows():
    scores = [1.0] * 5 + [50.0] * 10 + [1.0] * 10
    blames = ['camera'] * 8 + ['physical'] * 17
    ended, _ = episodes_of(scored_stream(scores, blames=blames))
    assert [episode.blame for episode in ended] == ['physical']


def test_a_short_excursion_that_never_raises_the_flag_is_no_episode():
    ended, tracker = episodes_of(scored_stream([1.0] * 5 + [50.0] * 2 + [1.0] * 5))
    assert ended == [] and tracker.open_since_s is None


def test_an_episode_under_way_ends_when_the_stream_stops_or_time_goes_back():
    stream = scored_stream([1.0] * 5 + [50.0] * 10)
    ended, tracker = episodes_of(stream)
    assert ended == [] and tracker.open_since_s == pytest.approx(0.5)
    assert [(e.start_s, e.end_s) for e in tracker.finish()] == [(0.5, pytest.approx(1.4))]
    assert tracker.finish() == []
    ended, tracker = episodes_of(stream)
    ended = tracker.step(0.0, {'anomaly_score': 1.0, 'threshold': THRESHOLD, 'is_anomaly': False}, 'nominal')
    assert [e.end_s for e in ended] == [pytest.approx(1.4)] and tracker.open_since_s is None


def episode(start_s, end_s, blame='physical'):
    return Episode(start_s, end_s, 100.0, THRESHOLD, blame, 'nominal', round((end_s - start_s) * HZ))


class Feed:
    """Messages into a ClipKeeper at HZ per topic, stamped on a clock; the clips it cuts."""

    def __init__(self, pre_s=2.0, post_s=1.0, max_bytes=10**9):
        self.clips: list[Clip] = []
        self.keeper = ClipKeeper(pre_s, post_s, max_bytes, self.clips.append)
        self.t = 0.0

    def run_until(self, t_end, size=100):
        while self.t < t_end - 1e-9:
            self.t = round(self.t + 1 / HZ, 6)
            for topic in ('/camera', '/joints'):
                self.keeper.add(topic, self.t, int(self.t * 1e9), size, b'x' * 4)


def test_a_clip_holds_the_input_from_pre_s_before_its_episode_to_post_s_after_it():
    feed = Feed(pre_s=2.0, post_s=1.0)
    feed.run_until(10.0)
    feed.keeper.episode_started(10.0, 'camera')
    feed.run_until(12.0)
    feed.keeper.episode_ended(episode(10.0, 12.0))
    feed.run_until(13.2)
    assert feed.clips == [], 'cut before the input reached post_s after the episode (plus the margin)'
    feed.run_until(13.3)
    (clip,) = feed.clips
    stamps = sorted({entry.stamp_s for entry in clip.entries})
    assert stamps[0] == pytest.approx(8.0) and stamps[-1] == pytest.approx(13.0)
    assert len(clip.entries) == 2 * 51 and not clip.truncated
    assert [(label.start_s, label.end_s, label.kind) for label in clip.labels] == [(10.0, 12.0, EPISODE_KIND)]


def test_without_an_episode_the_ring_keeps_pre_s_seconds():
    feed = Feed(pre_s=2.0)
    feed.run_until(60.0)
    assert len(feed.keeper._ring) == 2 * 21


def test_the_byte_bound_drops_the_oldest_input_and_marks_the_clip_truncated():
    feed = Feed(pre_s=2.0, post_s=1.0, max_bytes=100 * 40)  # 40 messages: 2 s of both topics
    feed.run_until(10.0)
    feed.keeper.episode_started(10.0, 'camera')
    feed.run_until(15.0)
    feed.keeper.episode_ended(episode(10.0, 15.0))
    feed.run_until(17.0)
    (clip,) = feed.clips
    assert clip.truncated and clip.size <= 100 * 40 and feed.keeper.trimmed > 0
    assert min(entry.stamp_s for entry in clip.entries) > 13.0


def test_close_episodes_get_a_clip_each_labelled_with_their_neighbours():
    feed = Feed(pre_s=3.0, post_s=2.0)
    feed.run_until(10.0)
    feed.keeper.episode_started(10.0, 'camera')
    feed.run_until(11.0)
    feed.keeper.episode_ended(episode(10.0, 11.0, 'camera'))
    feed.run_until(12.0)
    feed.keeper.episode_started(12.0, 'physical')  # before the first clip is cut (due at 13.25)
    feed.run_until(14.0)
    assert len(feed.clips) == 1
    feed.keeper.episode_ended(episode(12.0, 14.0, 'physical'))
    feed.run_until(20.0)
    first, second = feed.clips
    # The neighbour under way when the first clip is cut: until the clip's end, blamed as its flag rose.
    assert [(x.start_s, x.end_s, x.modality) for x in first.labels] == [
        (10.0, 11.0, 'camera'),
        (12.0, 13.0, 'physical'),
    ]
    assert [(x.start_s, x.end_s) for x in second.labels] == [(10.0, 11.0), (12.0, 14.0)]
    assert min(e.stamp_s for e in second.entries) == pytest.approx(9.0)  # 3 s before its own start


def test_flush_cuts_an_ended_episode_before_post_s_and_unstamped_input_is_filed_at_the_newest_stamp():
    feed = Feed(pre_s=1.0, post_s=5.0)
    feed.run_until(5.0)
    feed.keeper.episode_started(4.5, 'kinematics')
    feed.keeper.add('/joints', None, 0, 10, b'bad')
    feed.keeper.episode_ended(episode(4.5, 5.0, 'kinematics'))
    feed.keeper.flush()
    (clip,) = feed.clips
    assert [entry.payload for entry in clip.entries if entry.size == 10] == [b'bad']
    assert max(entry.stamp_s for entry in clip.entries) == pytest.approx(5.0)


def test_time_going_back_starts_the_ring_afresh():
    feed = Feed(pre_s=2.0)
    feed.run_until(30.0)
    feed.t = 0.0
    feed.run_until(1.0)
    assert max(entry.stamp_s for entry in feed.keeper._ring) == pytest.approx(1.0)


def scores_entry_payload(t):
    return joint_state_cdr(int(t * 1e9), ['anomaly_score'], np.array([1.0]), np.array([]), np.array([]))


@pytest.fixture
def writer_parts(tmp_path):
    announced = []
    topics = {'/camera': 'sensor_msgs/msg/JointState', '/mcf_monitor/scores': 'sensor_msgs/msg/JointState'}
    return tmp_path / 'clips', topics, announced


def a_clip(start_s, message_bytes=50, messages=20):
    """A clip of `messages` camera entries of `message_bytes` and one scores message, its episode at start_s."""
    feed = Feed(pre_s=1.0, post_s=0.5)
    keeper = feed.keeper
    for i in range(messages):
        t = start_s - 1.0 + i * 0.1
        keeper.add('/camera', t, int(1e9 * t), message_bytes, bytes(message_bytes))
        if i == 5:
            keeper.episode_started(start_s, 'camera')
    keeper.add('/mcf_monitor/scores', start_s, 5, 10, lambda: scores_entry_payload(start_s))  # serialized when written
    keeper.episode_ended(episode(start_s, start_s + 0.2, 'camera'))
    keeper.flush()
    return feed.clips[0]


def wait_for(predicate, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.01)


def test_the_writer_writes_a_bag_its_labels_and_an_episode_line(writer_parts):
    clip_dir, topics, announced = writer_parts
    writer = ClipWriter(clip_dir, topics, 10**7, {'model_id': 'abc'}, announced.append)
    clip = a_clip(100.0)
    writer.submit(clip)
    writer.stop()
    (record,) = announced
    path = clip_dir / record['clip'].rsplit('/', 1)[1]
    assert record['model_id'] == 'abc' and record['start_s'] == 100.0 and record['clip_truncated'] is False
    with BagReader(path) as bag:
        assert bag.topic_counts == {'/camera': 18, '/mcf_monitor/scores': 1}  # 99.0 .. 100.7 s
        messages = list(bag.messages(['/mcf_monitor/scores']))
    assert parse(messages[0].data, messages[0].msgtype).name == ['anomaly_score']
    assert [(label.start_s, label.kind) for label in read_labels(path)] == [(100.0, EPISODE_KIND)]
    assert [json.loads(line) for line in (clip_dir / EPISODE_LOG).read_text().splitlines()] == [record]
    assert not any((clip_dir / '.partial').iterdir())


def test_the_writer_removes_the_oldest_clips_to_stay_within_its_bound(writer_parts):
    clip_dir, topics, announced = writer_parts
    one_clip = 20 * 5000
    writer = ClipWriter(clip_dir, topics, int(3.5 * one_clip), {}, announced.append)
    for i in range(8):
        writer.submit(a_clip(100.0 + 10 * i, message_bytes=5000))
        wait_for(lambda n=i + 1: len(announced) == n)
        assert directory_bytes(clip_dir) <= 3.5 * one_clip
    writer.stop()
    kept = sorted(p.name for p in clip_dir.glob('clip_*'))
    assert len(kept) == 3 and writer.counts['clips_removed'] == 5
    assert kept == sorted(r['clip'].rsplit('/', 1)[1] for r in announced[-3:])


def test_a_clip_the_writer_has_no_room_for_is_dropped_counted_and_still_announced(writer_parts):
    clip_dir, topics, announced = writer_parts
    release = threading.Event()

    def slow_announce(record):
        announced.append(record)
        if threading.current_thread().name == 'clip writer':
            release.wait(10)

    writer = ClipWriter(clip_dir, topics, 10**8, {}, slow_announce)
    writer.submit(a_clip(100.0))
    wait_for(lambda: len(announced) == 1)  # written; its announce blocks the writer
    for i in range(1, 5):  # two queued, two dropped
        writer.submit(a_clip(100.0 + i))
    dropped = [r for r in announced if r['clip'] is None]
    assert writer.counts['clips_dropped'] == 2 and len(dropped) == 2
    assert all(r['clip_missing'].startswith('dropped') for r in dropped)
    release.set()
    writer.stop()
    assert writer.counts['clips_written'] == 3
    assert len((clip_dir / EPISODE_LOG).read_text().splitlines()) == 5
