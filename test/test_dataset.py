"""Windows from bags: a long bag decoded in two processes gives exactly the windows of one pass."""

import math
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from mcf_ros.data import dataset
from mcf_ros.data.bags import bag_writer
from mcf_ros.data.dataset import all_bag_windows, bag_windows, same_window
from mcf_ros.data.messages import image_cdr, joint_state_cdr
from mcf_ros.data.windows import Window, WindowSpec

NAMES = ['a', 'b', 'c']
SPEC = WindowSpec(joint_names=tuple(NAMES), image_size=8, camera_hz=30.0, joint_hz=100.0)
START_NS = 1_700_000_000 * 10**9


def write_bag(path, duration_s, camera_gap_s):
    """A bag of 24x32 frames at 30 Hz and joint states at 100 Hz, with no frames in `camera_gap_s` (start, end)."""
    rng = np.random.default_rng(5)
    events = [(round(k * 1e9 / 30), 'camera') for k in range(int(duration_s * 30))]
    events += [(round(k * 1e9 / 100), 'joints') for k in range(int(duration_s * 100))]
    with bag_writer(path) as writer:
        writer.add_topic('/camera', 'sensor_msgs/msg/Image')
        writer.add_topic('/joints', 'sensor_msgs/msg/JointState')
        for offset_ns, kind in sorted(events):
            stamp_ns = START_NS + offset_ns
            if kind == 'joints':
                values = rng.normal(size=(3, 3))
                writer.write('/joints', stamp_ns, joint_state_cdr(stamp_ns, NAMES, *values))
            elif not camera_gap_s[0] <= offset_ns / 1e9 < camera_gap_s[1]:
                pixels = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
                writer.write('/camera', stamp_ns, image_cdr(stamp_ns, pixels, 'camera'))
    return path


def assert_same_windows(found, expected):
    assert len(found) == len(expected)
    assert all(same_window(a, b) for a, b in zip(found, expected, strict=True))


@pytest.mark.parametrize(
    ('camera_gap_s', 'joined'),
    [
        ((12.0, 20.5), True),  # the second half's first frames after the gap lack the gap: joined later
        ((14.0, 26.0), False),  # no frame in the overlap: the halves never agree, one pass decodes it
    ],
)
def test_a_long_bag_decoded_in_halves_gives_the_windows_of_one_pass(tmp_path, monkeypatch, camera_gap_s, joined):
    bag = write_bag(tmp_path / 'bag', 40.0, camera_gap_s)
    expected = list(bag_windows(bag, SPEC, '/camera', '/joints'))
    join_halves, joins = dataset.join_halves, []

    def recorded_join(first, second):
        joins.append(join_halves(first, second))
        return joins[-1]

    monkeypatch.setattr(dataset, 'join_halves', recorded_join)
    assert_same_windows(all_bag_windows(bag, SPEC, '/camera', '/joints'), expected)
    assert (joins[0] is not None) == joined


def test_halves_join_where_the_second_agrees_with_the_first_to_its_end():
    first = [Window(float(t), None, None, 0.1, 1.0) for t in range(10)]
    second = [Window(float(t), None, None, 0.1 if t > 6 else 9.0, 1.0) for t in range(5, 14)]
    joined = dataset.join_halves(first, second)
    assert [w.end_s for w in joined] == list(range(14)) and joined[6] is first[6] and joined[7] is second[2]
    second[-3].frame_gap_s = 9.0  # past the first's end: not compared
    assert dataset.join_halves(first, second) is not None
    second[4].frame_gap_s = math.nan  # at the first's end: they never agree
    assert dataset.join_halves(first, second) is None


def test_a_worker_pool_that_breaks_falls_back_to_one_pass(tmp_path, monkeypatch):
    class BrokenPool:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            raise BrokenProcessPool('a worker died')

        def __exit__(self, *exc):
            return False

    bag = write_bag(tmp_path / 'bag', 40.0, (0.0, 0.0))
    monkeypatch.setattr(dataset, 'ProcessPoolExecutor', BrokenPool)
    expected = list(bag_windows(bag, SPEC, '/camera', '/joints'))
    assert_same_windows(all_bag_windows(bag, SPEC, '/camera', '/joints'), expected)
