"""The simulated cell: deterministic, realistic rates and tracking, and faults that change only their window."""

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
from mcf_process import run_mcf_together

from mcf_ros.data.bags import BagReader
from mcf_ros.data.images import raw_pixels
from mcf_ros.data.labels import read_labels
from mcf_ros.data.messages import parse
from mcf_ros.faults.catalogue import CATALOGUE
from mcf_ros.sim.cell import (
    CAMERA_TOPIC,
    FROZEN_MIN_TRAVEL_RAD,
    MOTION_FAULTS,
    SIM_EPOCH_NS,
    CellSimulator,
    SimConfig,
)
from mcf_ros.sim.designs import CELLS

SEED = 11
CAMERA_HZ = CELLS['ur5e'].camera_hz
SIZE = 64
PHYSICAL = [name for name, spec in CATALOGUE.items() if spec.modality == 'physical']
SENSOR = [name for name, spec in CATALOGUE.items() if spec.modality != 'physical']


class Recording:
    """Everything one simulation emitted, parsed, keyed by header stamp (ns)."""

    def __init__(self, config: SimConfig):
        self.config = config
        self.joints, self.frames = {}, {}
        self.labels = CellSimulator(config).run(self._store)

    def _store(self, topic, stamp, data):
        if topic == CAMERA_TOPIC:
            self.frames[stamp] = raw_pixels(parse(data, 'sensor_msgs/msg/Image')).astype(np.int16)
        else:
            message = parse(data, 'sensor_msgs/msg/JointState')
            self.joints[stamp] = np.stack([message.position, message.velocity, message.effort])


@pytest.fixture(scope='module')
def recordings():
    """The normal run and the two fault runs the tests compare with it, simulated at once (on 2 cores, three
    processes finish sooner than two at a time: the third run does not wait for a free worker)."""
    configs = {
        'normal': SimConfig(duration_s=125.0, seed=SEED, width=SIZE, height=SIZE),
        'physical_faults': SimConfig(duration_s=125.0, seed=SEED, width=SIZE, height=SIZE, faults=PHYSICAL),
        'sensor_faults': SimConfig(duration_s=105.0, seed=SEED, width=SIZE, height=SIZE, faults=SENSOR),
    }
    with ProcessPoolExecutor(len(configs), mp_context=multiprocessing.get_context('spawn')) as pool:
        runs = {name: pool.submit(Recording, config) for name, config in configs.items()}
        return {name: run.result() for name, run in runs.items()}


@pytest.fixture(scope='module')
def normal(recordings):
    return recordings['normal']


@pytest.fixture(scope='module')
def physical_faults(recordings):
    return recordings['physical_faults']


@pytest.fixture(scope='module')
def sensor_faults(recordings):
    return recordings['sensor_faults']


def differences(recording, normal, start_s, end_s):
    """Compare with the normal run over [start_s, end_s).

    Returns the largest joint position (rad) and effort (N·m) differences, the largest per-frame
    mean absolute pixel difference, and the counts of joint states and frames that went missing.
    """

    def inside(stamps):
        return [s for s in stamps if start_s <= s / 1e9 < end_s]

    joint_stamps, frame_stamps = inside(normal.joints), inside(normal.frames)
    lost_joints = sum(s not in recording.joints for s in joint_stamps)
    lost_frames = sum(s not in recording.frames for s in frame_stamps)
    joint_diff = [
        np.abs(recording.joints[s] - normal.joints[s]).max(axis=1) for s in joint_stamps if s in recording.joints
    ]
    frame_diff = [np.abs(recording.frames[s] - normal.frames[s]).mean() for s in frame_stamps if s in recording.frames]
    position, effort = np.max(joint_diff, axis=0)[[0, 2]] if joint_diff else (0.0, 0.0)
    return position, effort, max(frame_diff, default=0.0), lost_joints, lost_frames


def outside_windows(recording):
    """Yield (start_s, end_s) of the stretches between labelled windows, from the bag start to its end."""
    edges = [SIM_EPOCH_NS / 1e9]
    for label in recording.labels:
        edges += [label.start_s, label.end_s]
    edges.append(SIM_EPOCH_NS / 1e9 + recording.config.duration_s + 1e-6)
    yield from zip(edges[::2], edges[1::2], strict=True)


def window_text(start_s, end_s):
    return f'[{start_s - SIM_EPOCH_NS / 1e9:.2f}, {end_s - SIM_EPOCH_NS / 1e9:.2f}] s after the bag start'


def test_same_seed_gives_byte_identical_bags(tmp_path):
    args = ['--duration', '18', '--faults', 'camera_noise,joint_spikes', '--width', '32', '--height', '32']
    runs = (('a', '5'), ('b', '5'), ('c', '6'))
    simulations = [['sim', '--out', str(tmp_path / name), '--seed', seed, *args] for name, seed in runs]
    bags = []
    for (name, _), result in zip(runs, run_mcf_together(*simulations, timeout=300), strict=True):
        assert result.returncode == 0, result.stderr
        with BagReader(tmp_path / name) as bag:
            bags.append([(m.topic, m.stamp_ns, m.data) for m in bag.messages()])
    assert bags[0] == bags[1], 'two runs with the same seed differ'
    assert bags[0] != bags[2], 'a different seed gives the same bag'
    assert (tmp_path / 'a/faults.csv').read_text() == (tmp_path / 'b/faults.csv').read_text()
    assert [label.kind for label in read_labels(tmp_path / 'a')] == ['camera_noise', 'joint_spikes']


def test_joints_track_the_program_within_0_05_rad(normal):
    program = CellSimulator(normal.config).program
    errors = [
        np.abs(sample[0] - program.at((stamp - SIM_EPOCH_NS) / 1e9)[0]).max() for stamp, sample in normal.joints.items()
    ]
    assert max(errors) < 0.05, f'tracking error reaches {max(errors):.3f} rad'


def test_joint_velocity_matches_the_position_derivative(normal):
    stamps = np.array(sorted(normal.joints)) / 1e9
    samples = np.array([normal.joints[s] for s in sorted(normal.joints)])
    lag = 10
    derivative = (samples[2 * lag :, 0] - samples[: -2 * lag, 0]) / (stamps[2 * lag :] - stamps[: -2 * lag])[:, None]
    reported = samples[lag:-lag, 1]
    assert np.median(np.abs(derivative - reported)) < 0.02
    assert np.corrcoef(derivative.ravel(), reported.ravel())[0, 1] > 0.99


def test_camera_frames_are_stamped_within_2_ms_of_each_30_hz_tick(normal):
    offsets_s = (np.array(sorted(normal.frames)) - SIM_EPOCH_NS) / 1e9
    ticks = np.floor(offsets_s * CAMERA_HZ + 1e-6) / CAMERA_HZ
    assert np.all(offsets_s - ticks <= 0.002 + 1e-9), f'worst frame offset {np.max(offsets_s - ticks) * 1e3:.2f} ms'
    assert np.all(np.diff(np.round(ticks * CAMERA_HZ)) == 1), 'a 30 Hz tick has no frame'


def test_joint_states_arrive_at_500_hz(normal):
    stamps = np.array(sorted(normal.joints)) / 1e9
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    assert abs(rate - 500.0) <= 1.0, f'joint_states at {rate:.2f} Hz'


@pytest.mark.parametrize('recording', ['physical_faults', 'sensor_faults'])
def test_every_fault_window_lies_within_the_bag(recording, request, normal):
    faulty = request.getfixturevalue(recording)
    first, last = min(normal.joints) / 1e9, max(normal.joints) / 1e9
    assert len(faulty.labels) == len(PHYSICAL if recording == 'physical_faults' else SENSOR)
    for label in faulty.labels:
        assert first <= label.start_s < label.end_s <= last, f'{label.kind} window leaves the bag'


def test_physical_faults_change_both_sensors_inside_their_window(physical_faults, normal):
    for label in physical_faults.labels:
        position, effort, frame, _, _ = differences(physical_faults, normal, label.start_s, label.end_s)
        assert position > 0.005 or effort > 2.0, (
            f'{label.kind}: joints unchanged ({position:.4f} rad, {effort:.2f} N·m)'
        )
        assert frame > 1.0, f'{label.kind}: camera unchanged (mean abs diff {frame:.2f})'


def test_physical_faults_leave_the_data_unchanged_outside_their_window(physical_faults, normal):
    for start, end in outside_windows(physical_faults):
        position, _, frame, lost_joints, lost_frames = differences(physical_faults, normal, start, end)
        assert position < 0.005 and frame < 0.5 and not lost_joints and not lost_frames, (
            f'data differ outside fault windows in {window_text(start, end)}: '
            f'{position:.4f} rad, frame diff {frame:.2f}'
        )


def test_motion_faults_show_in_the_joints_within_half_a_second_of_their_label(physical_faults, normal):
    for label in physical_faults.labels:
        if label.kind in MOTION_FAULTS:
            position, effort, _, _, _ = differences(physical_faults, normal, label.start_s, label.start_s + 0.5)
            assert position > 0.005 or effort > 2.0, (
                f'{label.kind} is invisible in its first 0.5 s ({position:.4f} rad, {effort:.2f} N·m)'
            )


@pytest.mark.parametrize('seed', range(12))
def test_a_frozen_encoder_hides_real_motion(seed):
    simulator = CellSimulator(SimConfig(duration_s=30.0, seed=seed, faults=['joint_frozen']))
    episode = simulator.episodes[0]
    stuck = episode.state['corrupt'](episode.start_s, np.zeros(6), np.ones(6), np.zeros(6))[1] == 0.0
    window = np.arange(episode.start_s, episode.end_s, 0.01)
    travel = np.ptp([simulator.program.at(t)[0][stuck][0] for t in window])
    assert travel >= FROZEN_MIN_TRAVEL_RAD, f'seed {seed}: the frozen joint moves only {travel:.4f} rad'


def test_sensor_faults_change_only_their_sensor_and_only_inside_their_window(sensor_faults, normal):
    for label in sensor_faults.labels:
        position, effort, frame, lost_joints, lost_frames = differences(
            sensor_faults, normal, label.start_s, label.end_s
        )
        camera_changed = frame > 1.0 or lost_frames > 0
        joints_changed = position > 0 or effort > 0 or lost_joints > 0
        if label.modality == 'camera':
            assert camera_changed and not joints_changed, (
                f'{label.kind}: camera {camera_changed}, joints {joints_changed}'
            )
        else:
            assert joints_changed and not camera_changed, (
                f'{label.kind}: joints {joints_changed}, camera {camera_changed}'
            )
    for start, end in outside_windows(sensor_faults):
        position, effort, frame, lost_joints, lost_frames = differences(sensor_faults, normal, start, end)
        assert (position, effort, frame, lost_joints, lost_frames) == (0, 0, 0, 0, 0), (
            f'sensor data differ outside fault windows in {window_text(start, end)}'
        )


def test_a_relit_cell_changes_only_the_brightness_of_its_frames():
    runs = {
        light: Recording(SimConfig(duration_s=6.0, seed=SEED, width=32, height=32, light=light)) for light in (1.0, 1.3)
    }
    lit, relit = runs[1.0], runs[1.3]
    assert lit.joints.keys() == relit.joints.keys() and lit.frames.keys() == relit.frames.keys()
    assert all(np.array_equal(lit.joints[stamp], relit.joints[stamp]) for stamp in lit.joints)
    brightness = np.mean([relit.frames[s].mean() / lit.frames[s].mean() for s in lit.frames])
    assert 1.15 < brightness < 1.35, f'lamps at 1.3x made the frames {brightness:.2f}x as bright'


def test_the_ur5e_cell_runs_operator_paced_when_asked_and_on_its_takt_otherwise():
    def program(pacing):
        return CellSimulator(SimConfig(duration_s=600.0, seed=SEED, pacing=pacing)).program

    def home_waits_and_cycle_work(program):
        waits = np.array([s.t1 - s.t0 for s in program.segments if s.at_home][1:-1])
        return waits, np.diff(program.cycle_starts)[: len(waits)] - waits

    takt_waits, takt_work = home_waits_and_cycle_work(program(None))
    waits, work = home_waits_and_cycle_work(program('operator'))
    assert np.ptp(takt_waits) < 1.0 and np.ptp(waits) > 4.0, 'an operator starts cycles irregularly'
    assert work.max() > 1.2 * takt_work.max(), 'the lowered override slows whole cycles'
    assert np.median(work) == pytest.approx(np.median(takt_work), rel=0.1), 'most cycles run at full speed'
