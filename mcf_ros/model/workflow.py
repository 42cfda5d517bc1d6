"""`mcf train` end to end: normal bags in, a calibrated artifact out (`mcf eval` is in `bag_eval.py`)."""

import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcf_ros import __version__
from mcf_ros.data.dataset import (
    MIN_WINDOWS,
    MOVING_TRAVEL,
    InputTally,
    all_bag_windows,
    camera_topic_of,
    infer_spec,
    merged_joints,
    shortest_training_s,
    training_split,
)
from mcf_ros.data.inspection import BagInspection, inspect_bag
from mcf_ros.data.windows import CHANNELS, Window, WindowSpec
from mcf_ros.errors import UserError
from mcf_ros.model.artifact import Artifact, load_artifact, save_artifact
from mcf_ros.model.cycle import MIN_CYCLES, CycleReference, cycle_trouble, fit_cycle
from mcf_ros.model.inference import Detector, joint_paths, pick_device
from mcf_ros.model.mcf import KINEMATICS, MCFAutoencoder, ModelConfig
from mcf_ros.model.report import loss_curve_png
from mcf_ros.model.scoring import calibrate
from mcf_ros.model.training import (
    PARKED_FLOOR_SHARE,
    PARKED_NOISE_RATIO,
    TrainConfig,
    fit_normalisation,
    train_model,
    transfer_weights,
)

NO_CYCLE_REASON = 'off (--no-cycle): the cycle channel stays silent'


def fingerprint(inspections: list[BagInspection]) -> str:
    """Return a SHA-256 over each bag's topics, message count and time span: which data trained the model."""
    digest = hashlib.sha256()
    for inspection in inspections:
        digest.update(json.dumps(inspection.fingerprint_fields()).encode())
    return digest.hexdigest()


def inspect_for(path: str, camera_topic: str, joint_topic: str) -> BagInspection:
    """Inspect the streams a model reads from a bag: the camera (raw or its /compressed twin) and the joints."""
    return inspect_bag(path, [camera_topic, f'{camera_topic.rstrip("/")}/compressed', joint_topic])


@dataclass
class TrainingData:
    """Normal bags ready to train on: their inspections, the cell's spec and camera, and the windows cut."""

    inspections: list[BagInspection]
    spec: WindowSpec
    camera_topic: str
    resolution: tuple[int, int]
    train: list[Window] = field(default_factory=list)
    holdout: list[Window] = field(default_factory=list)
    tallies: dict[str, InputTally] = field(default_factory=dict)

    def add_bag(self, path: str, windows: list[Window], tally: InputTally, log: Callable[[str], None]) -> list[Window]:
        """Split one normal bag's windows that have joints (see training_split); return its held-out ones."""
        self.tallies[path] = tally
        windows = [w for w in windows if w.joints is not None]
        train, holdout = training_split(windows)
        self.train += train
        self.holdout += holdout
        log(f'{path}: {len(windows)} windows ({len(windows) / self.spec.camera_hz:.0f} s)')
        return holdout

    def check_enough(self) -> None:
        """Raise UserError (see too_little_data) unless both splits hold MIN_WINDOWS."""
        if len(self.train) < MIN_WINDOWS or len(self.holdout) < MIN_WINDOWS:
            raise UserError(too_little_data(self))


def training_data(
    bags: list[str], camera_topic: str, joint_topic: str, image_size: int, joints: list[str] | None = None,
    log: Callable[[str], None] = print,
) -> TrainingData:  # fmt: skip
    """Inspect normal bags once, learn the cell from them, then cut their windows in one pass each.

    Per bag: every 2nd window of its first half to train on, its second half to calibrate on.
    """
    inspections = [inspect_for(path, camera_topic, joint_topic) for path in bags]
    for inspection in inspections:
        if inspection.labelled_faults:
            raise UserError(f'{inspection.path} has labelled faults; train on normal operation only')
    topics = {camera_topic_of(inspection, camera_topic) for inspection in inspections}
    if len(topics) > 1:
        raise UserError(f'the training bags record the camera on different topics: {", ".join(sorted(topics))}')
    topic = topics.pop()
    cameras = {str(inspection.path): inspection.cameras[topic] for inspection in inspections}
    resolutions = {path: camera.resolution for path, camera in cameras.items()}
    unreadable = [path for path, resolution in resolutions.items() if resolution is None]
    if unreadable:
        reasons = '; '.join(f'{path}: {dict(cameras[path].unreadable)}' for path in unreadable)
        raise UserError(f'no frame on {topic} could be read ({reasons})')
    if len(set(resolutions.values())) > 1 or len({camera.transport for camera in cameras.values()}) > 1:
        raise UserError(f'the training bags have frames of different sizes or transports: {resolutions}')
    spec = infer_spec(inspections, topic, joint_topic, image_size, joints)
    data = TrainingData(inspections, spec, topic, next(iter(resolutions.values())))
    for path in bags:
        tally = InputTally()
        data.add_bag(path, all_bag_windows(path, spec, topic, joint_topic, data.resolution, tally), tally, log)
    data.check_enough()
    return data


def too_little_data(data: TrainingData) -> str:
    """Return the error for too few windows: what each bag gave, what was rejected and why, and what to do."""
    lines = [
        f'too little normal data: {len(data.train)} training and {len(data.holdout)} held-out windows '
        f'(at least {MIN_WINDOWS} of each: {shortest_training_s(data.spec):.0f} s '
        'of normal running with both streams; 20 min is what the shipped model was trained on)'
    ]
    for path, tally in data.tallies.items():
        lines.append(f'  {path}: {tally.frames:,} frames and {tally.joint_states:,} joint states read')
        lines += [f'    {line}' for line in tally.lines()]
    lines.append('  run `mcf inspect BAG` for what each bag holds; record longer, or fix what is rejected above')
    return '\n'.join(lines)


def summary_lines(data: TrainingData, joint_topic: str) -> list[str]:
    """Return the one-screen summary of what training uses: joints, interfaces, rates, camera, data, windows."""
    spec = data.spec
    joint_stream = merged_joints(data.inspections, joint_topic)
    minutes = sum(inspection.duration_s for inspection in data.inspections) / 60
    camera = data.inspections[0].cameras[data.camera_topic]
    lines = [
        f'data: {len(data.inspections)} bag(s), {minutes:.1f} min; {len(data.train)} training and '
        f'{len(data.holdout)} held-out windows of {spec.length_s:g} s',
        f'camera: {data.camera_topic} ({camera.transport}, {", ".join(sorted(camera.kinds))}), '
        f'{data.resolution[0]}x{data.resolution[1]} at {spec.camera_hz:.1f} Hz -> {spec.image_size}x{spec.image_size}',
        f'joints on {joint_topic}: {len(spec.joint_names)} used',
    ]
    groups: dict[tuple[tuple[str, ...], float], list[str]] = {}
    for name, used, rate in zip(spec.joint_names, spec.interfaces, spec.joint_rates_hz, strict=True):
        groups.setdefault((used, rate), []).append(name)
    for (used, rate), names in groups.items():
        lines.append(f'  {", ".join(names)}: {", ".join(used)} at {rate:.0f} Hz')
        for channel in (c for c in CHANNELS if c not in used):
            lines.append(f'    {channel} not used: {joint_stream[names[0]].interfaces[channel].describe()}')
    unused = [name for name in joint_stream if name not in spec.joint_names]
    if unused:
        lines.append(f'  not used (no travel over {MOVING_TRAVEL} rad, or not in --joints): {", ".join(unused)}')
    if 'velocity' not in {c for used in spec.interfaces for c in used}:
        lines.append('  velocity is not derived: the kinematics encoder reads the 1 s position trace')
    for path, tally in data.tallies.items():
        lines += [f'  {path}: {line}' for line in tally.lines()]
    return lines


def _initial_weights(
    source: Artifact, path: str, model_config: ModelConfig, log: Callable[[str], None]
) -> tuple[dict, dict]:  # fmt: skip
    """Return the weights of `source` (the model at `path`) to start training from, and the record of what they gave."""
    theirs = source.header['model']
    if theirs.get('fusion', 'mcf') != model_config.fusion or theirs['image_size'] != model_config.image_size:
        raise UserError(
            f'--init-from {path}: a {theirs.get("fusion", "mcf")} model on {theirs["image_size"]}-pixel images; this '
            f'training is {model_config.fusion} on {model_config.image_size}-pixel images (--image-size)'
        )
    copied, fresh = transfer_weights(MCFAutoencoder(model_config), source.state_dict)
    if not copied:
        raise UserError(f'--init-from {path}: none of its weights fit this model')
    log(
        f'starting from model {source.model_id} ({path}): {len(copied)} of {len(copied) + len(fresh)} weight tensors'
        + (f'; fresh (sized by other joints or windows): {", ".join(fresh)}' if fresh else '')
    )
    record = {'model_id': source.model_id, 'path': str(Path(path).resolve()), 'tensors_copied': len(copied),
              'tensors_fresh': fresh}  # fmt: skip
    return source.state_dict, record


def train_from_bags(
    bags: list[str],
    out: str,
    camera_topic: str,
    joint_topic: str,
    config: TrainConfig,
    device: str = 'auto',
    image_size: int = 64,
    target_false_alarms_per_hour: float = 1.0,
    log: Callable[[str], None] = print,
    progress: Callable[[int, float, float], None] | None = None,
    resume: bool = False,
    fusion: str = 'mcf',
    joints: list[str] | None = None,
    use_cycle: bool = True,
    init_from: str | None = None,
) -> dict:
    """Train and calibrate on normal bags; write the artifact; return its header.

    `use_cycle` False keeps the cycle channel silent (`mcf train --no-cycle`), as it is when the arm
    has no cycle or held-out normal running does not keep to the one learnt. `init_from`: a model
    (of another cell, say) whose weights training starts from where their shapes fit (`mcf train
    --init-from`); everything fitted after training is fitted afresh.
    """
    checkpoint = Path(out).with_suffix('.ckpt')
    if resume and not checkpoint.is_file():
        raise UserError(f'no checkpoint to resume from: {checkpoint}')
    source = load_artifact(init_from) if init_from else None  # a missing or broken one fails before the data is read
    data = training_data(bags, camera_topic, joint_topic, image_size, joints, log)
    for line in summary_lines(data, joint_topic):
        log(line)
    spec, train, holdout = data.spec, data.train, data.holdout
    normalisation, parked = fit_normalisation(train, spec)
    if parked:
        log(
            f'  parked (position spread at most {PARKED_NOISE_RATIO:g}x its own sample-to-sample noise): '
            f'{", ".join(parked)}; position and velocity scaled as if they spanned {PARKED_FLOOR_SHARE:.0%} '
            "of the widest joint's"
        )
    model_config = ModelConfig(image_size, spec.grid_points, spec.joint_features, fusion=fusion)
    initial, init_record = _initial_weights(source, init_from, model_config, log) if source else (None, None)
    result = train_model(
        train, holdout, spec, normalisation, model_config, config, pick_device(device), progress, checkpoint, resume,
        initial,
    )  # fmt: skip
    loss_curve_png(Path(out).with_suffix('.loss.png'), result.train_loss, result.holdout_loss)
    camera = data.inspections[0].cameras[data.camera_topic]
    header = {
        'package_version': __version__,
        'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'model': model_config.to_dict(),
        'window': spec.to_dict(),
        'modalities': {
            'camera': {
                'topic': data.camera_topic,
                'transport': camera.transport,
                'encodings': sorted(camera.kinds),
                'resolution': list(data.resolution),
                'model_size': image_size,
            },
            'kinematics': {
                'topic': joint_topic,
                'joints': list(spec.joint_names),
                'interfaces': {name: list(used) for name, used in zip(spec.joint_names, spec.interfaces, strict=True)},
                'velocity': 'measured' if all('velocity' in used for used in spec.interfaces) else 'not used',
            },
        },
        'normalisation': normalisation.to_dict(),
        'training': {
            'bags': [str(Path(b).resolve()) for b in bags],
            'fingerprint': fingerprint(data.inspections),
            'windows': len(train),
            'holdout_windows': len(holdout),
            'epochs': config.epochs,
            'seed': config.seed,
            'parked_joints': parked,
            'seconds': round(result.seconds, 1),
            'train_loss': result.train_loss,
            'holdout_loss': result.holdout_loss,
            **({'init_from': init_record} if init_record else {}),
        },
        'calibration': {},
    }
    header = calibrated(header, result.model.state_dict(), data, device, target_false_alarms_per_hour, use_cycle)
    saved = save_artifact(out, header, result.model.state_dict()).header
    checkpoint.unlink()
    return saved


def calibrated(
    header: dict,
    state_dict: dict,
    data: TrainingData,
    device: str,
    target_false_alarms_per_hour: float,
    use_cycle: bool,
) -> dict:
    """Return the header with what is fitted after training on the data's windows.

    The normal residual levels and the calibration come from the held-out windows, the cycle from
    the training windows (see learn_cycle).
    """
    header = {**header, 'calibration': {}}
    spec, train, holdout = data.spec, data.train, data.holdout
    detector = Detector(Artifact(header, state_dict), device)
    evidence = detector.fit_residual_scale(holdout)
    header['normalisation'] = detector.normalisation.to_dict()
    cycle, header['cycle_channel'] = learn_cycle(train, holdout, len(spec.joint_names), use_cycle)
    if not detector.model.config.uses[KINEMATICS]:
        cycle, header['cycle_channel'] = None, {'on': False, 'reason': 'off: the model has no joints'}
    calibration = calibrate(
        evidence,
        np.array([w.end_s for w in holdout]),
        spec.length_s,
        windows_per_hour=spec.camera_hz * 3600.0,
        target_false_alarms_per_hour=target_false_alarms_per_hour,
        cycle=cycle,
    )
    header['calibration'] = calibration.to_dict()
    return header


def learn_cycle(
    train: list[Window], holdout: list[Window], joint_count: int, use_cycle: bool
) -> tuple[CycleReference | None, dict]:
    """Learn the normal cycle from the training windows and check it on the held-out ones.

    Return the reference (None: the cycle channel stays silent) and the artifact's record of it:
    {'on': bool, 'reason': what the training summary says}.
    """
    if not use_cycle:
        return None, {'on': False, 'reason': NO_CYCLE_REASON}
    cycle = fit_cycle(np.array([w.end_s for w in train]), joint_paths(train, joint_count), joint_count)
    if cycle is None:
        reason = f'off: no cycle learnt (the arm rests nowhere, or came home fewer than {MIN_CYCLES} times)'
        return None, {'on': False, 'reason': reason}
    trouble = cycle_trouble(cycle, np.array([w.end_s for w in holdout]), joint_paths(holdout, joint_count))
    if trouble:
        return None, {'on': False, 'reason': f'off: {trouble}; the cycle channel stays silent (irregular program?)'}
    away = f'{len(cycle.departure_s)} normal windows away from home, up to {cycle.departure_s.max():.1f} s'
    return cycle, {'on': True, 'reason': f'on: {away}; held-out normal running keeps to it'}
