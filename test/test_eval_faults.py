"""Evaluation faults: apart from the training corruptions, each kind changes what it claims and nothing else,
and `mcf inject` writes them into a bag with their labels, or says in one line why it cannot."""

import ast
from pathlib import Path

import numpy as np
import pytest
from mcf_process import run_mcf
from synthetic_bags import START_NS, UR_JOINTS, write_camera_joint_bag

from mcf_ros.data.bags import BagReader, bag_writer
from mcf_ros.data.labels import FaultLabel, read_labels, write_labels
from mcf_ros.data.messages import image_cdr, joint_state_fields
from mcf_ros.errors import UserError
from mcf_ros.eval_faults.camera import CAMERA_KINDS
from mcf_ros.eval_faults.catalogue import EVAL_FAULTS
from mcf_ros.eval_faults.inject import inject_bag
from mcf_ros.eval_faults.kinematics import JOINT_KINDS, JointProfile
from mcf_ros.model.training import TRAIN_CAMERA_FAULTS, TRAIN_JOINT_FAULTS

ROOT = Path(__file__).resolve().parent.parent
PROFILE = JointProfile(
    travel={'a': 2.0, 'b': 1.0, 'c': 0.01},
    mean_abs_position={'a': 1.5, 'b': 0.2, 'c': 0.0},
    effort_range={'a': 40.0, 'b': 10.0, 'c': 0.0},
)


def imported_modules(folder: Path) -> set[str]:
    names = set()
    for path in folder.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
    return names


def test_evaluation_faults_are_written_apart_from_the_training_corruptions():
    assert not [name for name in imported_modules(ROOT / 'mcf_ros/eval_faults') if name.startswith('mcf_ros.faults')]
    assert not [name for name in imported_modules(ROOT / 'mcf_ros/model') if name.startswith('mcf_ros.eval_faults')]
    assert not set(EVAL_FAULTS) & {*TRAIN_CAMERA_FAULTS, *TRAIN_JOINT_FAULTS}
    assert set(EVAL_FAULTS) == {*CAMERA_KINDS, *JOINT_KINDS}
    assert len(CAMERA_KINDS) >= 6 and len(JOINT_KINDS) >= 6


@pytest.mark.parametrize('kind', sorted(kind for kind in CAMERA_KINDS if EVAL_FAULTS[kind].modality == 'camera'))
def test_every_camera_kind_changes_the_frame_and_keeps_its_shape(kind):
    rng = np.random.default_rng(3)
    frames = []
    for t in range(12):  # a bright block that moves 3 px a frame: every kind moves, tints, smears or delays it
        frame = np.full((48, 64, 3), 40, np.uint8)
        frame[4:28, 3 * t : 3 * t + 24] = (200, 40, 90)
        frames.append(frame)
    fault = CAMERA_KINDS[kind](rng, 64, 48)
    outputs = [fault(frame.copy(), t / 30) for t, frame in enumerate(frames)]
    assert all(out.shape == frame.shape and out.dtype == np.uint8 for out in outputs)
    change = max(np.abs(out.astype(int) - frame).mean() for out, frame in zip(outputs, frames, strict=True))
    assert change > 2, f'{kind} left the frames nearly as they were (mean change {change:.1f} grey levels)'


def test_a_box_set_down_is_a_local_change_of_the_world_that_enters_and_stays():
    assert EVAL_FAULTS['object_set_down'].modality == 'physical'
    frame = np.full((480, 640, 3), 120, np.uint8)
    for seed in range(5):
        box = CAMERA_KINDS['object_set_down'](np.random.default_rng(seed), 640, 480)
        changed = [np.abs(box(frame, t).astype(int) - frame).max(axis=2) > 10 for t in (0.0, 1.0, 2.0, 3.0)]
        assert changed[0].mean() < changed[1].mean(), 'the box slides into view'
        assert (changed[1] == changed[3]).all(), 'then it stays where it was set down'
        rows = np.flatnonzero(changed[3].any(axis=1))
        assert 0.005 < changed[3].mean() < 0.06 and rows.min() > 0.5 * 480, 'a small part of the lower view'


def test_the_same_seed_draws_the_same_parameters():
    first, second = (CAMERA_KINDS['camera_bumped'](np.random.default_rng(7), 640, 480) for _ in range(2))
    assert vars(first) == vars(second)
    assert 0.04 * 640 <= abs(first.shift[0]) <= 0.10 * 640 and 2.0 <= abs(first.degrees) <= 6.0


def readings() -> dict[str, list[float]]:
    return {'a': [1.0, 0.5, 3.0], 'b': [-0.4, 0.1, 1.0], 'c': [0.0, 0.0, np.nan]}


def test_a_slow_drift_moves_one_moving_joint_at_its_rate():
    drift = JOINT_KINDS['joint_slow_drift'](np.random.default_rng(1), PROFILE, 0.02)
    values = readings()
    drift(100.0, 2.5, values)
    assert drift.joint in ('a', 'b') and abs(drift.rate_rad_s) == 0.02
    assert values[drift.joint][0] == pytest.approx(readings()[drift.joint][0] + 2.5 * drift.rate_rad_s)
    assert {k: v for k, v in values.items() if k != drift.joint} == {
        k: v for k, v in readings().items() if k != drift.joint
    }


def test_joint_kinds_touch_only_what_they_name():
    rng = np.random.default_rng(2)
    kinds = ('joint_sign_flip', 'joint_swap', 'joint_velocity_zero', 'joint_effort_bias')
    flip, swap, zero, bias = (JOINT_KINDS[kind](rng, PROFILE) for kind in kinds)
    assert flip.joint == 'a' or flip.joint == 'b'
    values = readings()
    flip(0.0, 0.0, values)
    assert values[flip.joint][:2] == [-v for v in readings()[flip.joint][:2]]
    values = readings()
    swap(0.0, 0.0, values)
    assert (values[swap.first], values[swap.second]) == (readings()[swap.second], readings()[swap.first])
    values = readings()
    zero(0.0, 0.0, values)
    assert values[zero.joint][1] == 0.0 and values[zero.joint][0] == readings()[zero.joint][0]
    assert bias.joint in ('a', 'b') and 0.25 <= abs(bias.bias) / PROFILE.effort_range[bias.joint] <= 0.5


def test_a_lagging_bus_returns_the_readings_from_its_lag_ago():
    lag = JOINT_KINDS['joint_lag'](np.random.default_rng(4), PROFILE)
    seen = []
    for k in range(200):
        values = {'a': [k * 0.01, 0.0, 0.0]}
        lag(k * 0.002, k * 0.002, values)
        seen.append(values['a'][0])
    lagged_steps = round(lag.lag_s / 0.002)
    assert seen[-1] == pytest.approx((199 - lagged_steps) * 0.01, abs=0.011)


def test_no_joint_kind_is_drawn_for_a_joint_that_does_not_move():
    still = JointProfile(travel={'a': 0.05}, mean_abs_position={'a': 0.0}, effort_range={'a': 0.0})
    with pytest.raises(ValueError, match=r'no joint moves more than 0\.1 rad'):
        JOINT_KINDS['joint_quantized'](np.random.default_rng(0), still)


def test_inject_rewrites_only_the_episodes_and_labels_them(tmp_path):
    source = write_camera_joint_bag(tmp_path / 'normal', duration_s=12.0, width=32, height=24)
    write_labels(source, [FaultLabel(START_NS / 1e9 + 10.0, START_NS / 1e9 + 10.5, 'collision', 'physical')])
    injection = inject_bag(source, tmp_path / 'out', ['camera_fog', 'joint_swap'], seed=5, episode_s=1.0, gap_s=1.0)
    labels = injection.labels
    assert not injection.skipped and not injection.unreadable
    start = START_NS / 1e9
    assert [(round(label.start_s - start, 3), label.kind) for label in labels] == [(6.0, 'camera_fog'),
                                                                                  (8.0, 'joint_swap')]  # fmt: skip
    assert [label.kind for label in read_labels(tmp_path / 'out')] == ['camera_fog', 'joint_swap', 'collision']
    with BagReader(source) as before, BagReader(tmp_path / 'out') as after:
        pairs = list(zip(before.messages(), after.messages(), strict=True))
    changed = {'camera': 0, 'joints': 0}
    for old, new in pairs:
        assert (old.topic, old.stamp_ns) == (new.topic, new.stamp_ns)
        t = old.stamp_ns / 1e9 - start
        inside = 6.0 <= t < 7.0 if old.topic == '/camera/image_raw' else 8.0 <= t < 9.0
        assert (old.data != new.data) == inside, f'{old.topic} at {t:.3f} s'
        if inside:
            changed['camera' if old.topic == '/camera/image_raw' else 'joints'] += 1
    assert changed == {'camera': 30, 'joints': 500}
    swapped = next(new for old, new in pairs if new.topic == '/joint_states' and old.stamp_ns / 1e9 - start >= 8.0)
    _, names, position, _, _ = joint_state_fields(swapped.data)
    assert names == tuple(UR_JOINTS) and len(position) == 6


def test_inject_writes_a_change_of_the_world_that_only_the_camera_carries(tmp_path):
    source = write_camera_joint_bag(tmp_path / 'normal', duration_s=12.0, width=64, height=48)
    inject_bag(source, tmp_path / 'out', ['object_set_down'], seed=2, episode_s=1.0, gap_s=1.0)
    labels = read_labels(tmp_path / 'out')
    assert [(label.kind, label.modality) for label in labels] == [('object_set_down', 'physical')]
    with BagReader(source) as before, BagReader(tmp_path / 'out') as after:
        pairs = list(zip(before.messages(), after.messages(), strict=True))
    changed = {old.topic for old, new in pairs if old.data != new.data}
    assert changed == {'/camera/image_raw'}


def test_inject_says_how_long_a_bag_must_be(tmp_path):
    source = write_camera_joint_bag(tmp_path / 'normal', duration_s=8.0, width=32, height=24)
    with pytest.raises(UserError, match=r'ends after 0 of 2 episodes: 2 episodes of 3 s 9 s apart need at least 30 s'):
        inject_bag(source, tmp_path / 'out', ['camera_fog', 'joint_lag'])


def test_inject_refuses_an_effort_fault_where_no_joint_reports_effort(tmp_path, driver_cell):
    normal, _ = driver_cell('position_only')
    result = run_mcf('inject', str(normal), '--out', str(tmp_path / 'out'), '--faults', 'joint_effort_bias',
                     '--episode-s', '1', '--gap-s', '2')  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'no joint reports effort: joint_effort_bias has nothing to act on' in result.stderr


def test_inject_works_on_a_compressed_camera_and_split_joints(tmp_path, driver_cell):
    normal, _ = driver_cell('jpeg,split_joints')
    args = ['--faults', 'camera_channel_swap,joint_sign_flip,joint_lag', '--episode-s', '1', '--gap-s', '2']
    result = run_mcf('inject', str(normal), '--out', str(tmp_path / 'out'), *args)
    assert result.returncode == 0, result.stderr
    assert [label.kind for label in read_labels(tmp_path / 'out')] == [
        'camera_channel_swap',
        'joint_sign_flip',
        'joint_lag',
    ]
    with BagReader(tmp_path / 'out') as bag:
        assert bag.topics == {'/camera/image_raw/compressed': 'sensor_msgs/msg/CompressedImage',
                              '/joint_states': 'sensor_msgs/msg/JointState'}  # fmt: skip


def test_inject_lists_its_kinds():
    result = run_mcf('inject', '--list-faults')
    assert result.returncode == 0 and [line.split()[0] for line in result.stdout.splitlines()] == list(EVAL_FAULTS)


def test_inject_all_leaves_out_and_names_the_kinds_a_bag_cannot_carry(tmp_path, driver_cell):
    normal, _ = driver_cell('nan_effort')
    result = run_mcf('inject', str(normal), '--out', str(tmp_path / 'out'), '--episode-s', '0.5', '--gap-s', '1')
    assert result.returncode == 0, result.stderr
    assert 'left out joint_effort_bias: no joint reports effort' in result.stdout
    kinds = [label.kind for label in read_labels(tmp_path / 'out')]
    assert kinds == [kind for kind in EVAL_FAULTS if kind != 'joint_effort_bias']


def test_a_frame_that_cannot_be_read_is_copied_as_it_was_and_counted(tmp_path):
    source = write_camera_joint_bag(tmp_path / 'normal', duration_s=10.0, width=32, height=24)
    broken = START_NS + 6_500_000_000  # inside the camera episode (6-7 s)
    with BagReader(source) as bag, bag_writer(tmp_path / 'with_bad_frame') as writer:
        for message in bag.messages():
            data = message.data
            if message.topic == '/camera/image_raw' and abs(message.stamp_ns - broken) < 20_000_000:
                data = image_cdr(message.stamp_ns, np.zeros((24, 32, 3), np.uint8), 'cell_camera', '16UC1')
                bad = data
            writer.add_topic(message.topic, message.msgtype)
            writer.write(message.topic, message.stamp_ns, data)
    injection = inject_bag(tmp_path / 'with_bad_frame', tmp_path / 'out', ['camera_fog'], episode_s=1.0, gap_s=1.0)
    assert injection.unreadable == {'/camera/image_raw': 1}
    with BagReader(tmp_path / 'out') as bag:
        assert bad in [message.data for message in bag.messages(['/camera/image_raw'])]
