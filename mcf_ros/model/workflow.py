"""`mcf train` and `mcf eval` end to end: bags in, an artifact or a report out."""

import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from mcf_ros import __version__
from mcf_ros.data.bags import BagReader
from mcf_ros.data.dataset import all_bag_windows, camera_resolution, infer_spec
from mcf_ros.data.labels import read_labels
from mcf_ros.data.windows import Window, WindowSpec
from mcf_ros.errors import UserError
from mcf_ros.model.artifact import Artifact, ArtifactError, load_artifact, save_artifact
from mcf_ros.model.cycle import fit_cycle
from mcf_ros.model.evaluation import detection_metrics
from mcf_ros.model.inference import Detector, joint_paths, pick_device
from mcf_ros.model.mcf import KINEMATICS, ModelConfig
from mcf_ros.model.report import loss_curve_png
from mcf_ros.model.scoring import calibrate
from mcf_ros.model.training import TrainConfig, fit_normalisation, train_model

HOLDOUT_FRACTION = 0.5
TRAIN_FRAME_STRIDE = 2


def fingerprint(bags: list[str]) -> str:
    """Return a SHA-256 over each bag's topics, message count and time span: which data trained the model."""
    digest = hashlib.sha256()
    for path in bags:
        with BagReader(path) as bag:
            digest.update(
                json.dumps([sorted(bag.topics.items()), bag.message_count, bag.start_ns, bag.end_ns]).encode()
            )
    return digest.hexdigest()


def normal_windows(
    bags: list[str], spec: WindowSpec, camera_topic: str, joint_topic: str, log: Callable[[str], None] = print
) -> tuple[list[Window], list[Window]]:
    """Return the (training, held-out) windows of normal bags.

    Per bag: every 2nd window of its first half to train on, its second half to calibrate on.
    """
    train, holdout = [], []
    for path in bags:
        windows = [w for w in all_bag_windows(path, spec, camera_topic, joint_topic) if w.joints is not None]
        split = int(len(windows) * (1.0 - HOLDOUT_FRACTION))
        train += windows[:split:TRAIN_FRAME_STRIDE]
        holdout += windows[split:]
        log(f'{path}: {len(windows)} windows ({len(windows) / spec.camera_hz:.0f} s)')
    return train, holdout


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
) -> dict:
    """Train and calibrate on normal bags; write the artifact; return its header."""
    checkpoint = Path(out).with_suffix('.ckpt')
    if resume and not checkpoint.is_file():
        raise UserError(f'no checkpoint to resume from: {checkpoint}')
    specs = {path: infer_spec(path, camera_topic, joint_topic, image_size) for path in bags}
    spec = specs[bags[0]]
    resolutions = {path: camera_resolution(path, camera_topic) for path in bags}
    if len(set(resolutions.values())) > 1:
        raise UserError(f'the training bags have frames of different sizes: {resolutions}')
    for path in bags:
        if read_labels(path):
            raise UserError(f'{path} has labelled faults; train on normal operation only')
        joints = specs[path].joint_names
        if set(joints) != set(spec.joint_names):
            raise UserError(f'{path} has joints {list(joints)}, {bags[0]} has {list(spec.joint_names)}')
    train, holdout = normal_windows(bags, spec, camera_topic, joint_topic, log)
    if len(train) < 100 or len(holdout) < 100:
        raise UserError(f'too little normal data: {len(train)} training and {len(holdout)} held-out windows')
    normalisation = fit_normalisation(train)
    model_config = ModelConfig(image_size, spec.grid_points, spec.joint_features, fusion=fusion)
    result = train_model(
        train, holdout, spec, normalisation, model_config, config, pick_device(device), progress, checkpoint, resume
    )
    loss_curve_png(Path(out).with_suffix('.loss.png'), result.train_loss, result.holdout_loss)
    header = {
        'package_version': __version__,
        'created': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'model': model_config.to_dict(),
        'window': spec.to_dict(),
        'modalities': {
            'camera': {
                'topic': camera_topic,
                'encodings': ['rgb8', 'bgr8', 'mono8'],
                'resolution': list(resolutions[bags[0]]),
                'model_size': image_size,
            },
            'kinematics': {
                'topic': joint_topic,
                'joints': list(spec.joint_names),
                'channels': ['position', 'velocity', 'effort'],
            },
        },
        'normalisation': normalisation.to_dict(),
        'training': {
            'bags': [str(Path(b).resolve()) for b in bags],
            'fingerprint': fingerprint(bags),
            'windows': len(train),
            'holdout_windows': len(holdout),
            'epochs': config.epochs,
            'seed': config.seed,
            'seconds': round(result.seconds, 1),
            'train_loss': result.train_loss,
            'holdout_loss': result.holdout_loss,
        },
        'calibration': {},
    }
    detector = Detector(Artifact(header, result.model.state_dict()), device)
    evidence = detector.fit_residual_scale(holdout)
    header['normalisation'] = detector.normalisation.to_dict()
    cycle = None
    if model_config.uses[KINEMATICS]:
        joints = len(spec.joint_names)
        cycle = fit_cycle(np.array([w.end_s for w in train]), joint_paths(train, joints), joints)
        if cycle is None:
            log('cycle: none learnt (the arm does not return to a rest pose)')
        else:
            log(f'cycle: {len(cycle.departure_s)} normal windows away from home, up to {cycle.departure_s.max():.1f} s')
    calibration = calibrate(
        evidence,
        np.array([w.end_s for w in holdout]),
        spec.length_s,
        windows_per_hour=spec.camera_hz * 3600.0,
        target_false_alarms_per_hour=target_false_alarms_per_hour,
        cycle=cycle,
    )
    header['calibration'] = calibration.to_dict()
    saved = save_artifact(out, header, result.model.state_dict()).header
    checkpoint.unlink()
    return saved


def evaluate_bag(model: str, bag: str, device: str = 'auto') -> tuple[dict, dict, list[Window], Detector]:
    """Score every window of a bag with a model; return (scored arrays, metrics, windows, detector)."""
    detector = Detector(load_artifact(model), device)
    detector.compile()
    topics = detector.artifact.header['modalities']
    camera_topic, joint_topic = topics['camera']['topic'], topics['kinematics']['topic']
    bag_spec = infer_spec(bag, camera_topic, joint_topic, detector.spec.image_size)
    detector.check_joint_names(bag_spec.joint_names)
    detector.check_camera(*camera_resolution(bag, camera_topic))
    spec = replace(detector.spec, camera_hz=bag_spec.camera_hz)
    windows = all_bag_windows(bag, spec, camera_topic, joint_topic)
    if not windows:
        raise UserError(f'{bag} gives no windows')
    scored = detector.score(windows)
    metrics = detection_metrics(scored, read_labels(bag), spec.length_s, spec.camera_hz)
    metrics['model_id'] = detector.artifact.model_id
    return scored, metrics, windows, detector


BASELINES = ('camera', 'kinematics', 'concat')


def _training_bags(header: dict) -> list[str]:
    bags = header['training']['bags']
    missing = [bag for bag in bags if not Path(bag).is_dir()]
    if missing:
        raise UserError(f"--baselines retrains on the model's training bags, and these are gone: {', '.join(missing)}")
    return bags


def _baseline_key(artifact: Artifact) -> str:
    """Return what a baseline is trained for: the model's id and a hash of its calibration."""
    calibration = json.dumps(artifact.header['calibration'], sort_keys=True).encode()
    return f'{artifact.model_id}-{hashlib.sha256(calibration).hexdigest()[:12]}'


def _baseline_of(path: Path) -> str | None:
    """Return the key of the model a cached baseline was trained for, or None if missing or unreadable."""
    try:
        return load_artifact(path).header['training'].get('baseline_of')
    except ArtifactError:
        return None


def baseline_models(model: str, device: str, log: Callable[[str], None]) -> dict[str, Path]:
    """Return a model of each baseline fusion, trained like `model` on its own training bags.

    They are cached beside the model as MODEL.baseline-NAME.mcf, stamped with the model's id (its
    weights' hash) and its calibration's hash, and retrained whenever either changes (new weights,
    or the same weights recalibrated by a newer mcf) or the cached file cannot be read.
    """
    artifact = load_artifact(model)
    header, training = artifact.header, artifact.header['training']
    bags = _training_bags(header)
    topics = header['modalities']
    key = _baseline_key(artifact)
    paths = {}
    for name in BASELINES:
        path = Path(model).with_suffix(f'.baseline-{name}.mcf')
        if _baseline_of(path) != key:
            log(f'training the {name} baseline on {len(bags)} bag(s)')
            train_from_bags(
                bags, str(path), topics['camera']['topic'], topics['kinematics']['topic'],
                TrainConfig(epochs=training['epochs'], seed=training['seed']), device,
                header['model']['image_size'], header['calibration']['target_false_alarms_per_hour'],
                log=log, fusion=name,
            )  # fmt: skip
            baseline = load_artifact(path)
            baseline.header['training']['baseline_of'] = key
            save_artifact(path, baseline.header, baseline.state_dict)
        paths[name] = path
    return paths


def feature_baseline_metrics(model: str, bag: str, windows: list[Window], log: Callable[[str], None]) -> dict:
    """Fit the PyOD baseline on `model`'s training bags, as the model was, and return its metrics on `bag`'s windows."""
    from mcf_ros.model.feature_baseline import FeatureBaseline

    header = load_artifact(model).header
    spec = WindowSpec.from_dict(header['window'])
    topics = header['modalities']
    camera_topic, joint_topic = topics['camera']['topic'], topics['kinematics']['topic']
    train, holdout = normal_windows(_training_bags(header), spec, camera_topic, joint_topic, log)
    log(f'fitting the PyOD (ECOD) baseline on {len(train)} windows')
    baseline = FeatureBaseline(train, holdout, spec.joint_features, header['calibration'])
    camera_hz = infer_spec(bag, camera_topic, joint_topic, spec.image_size).camera_hz
    metrics = detection_metrics(baseline.score(windows), read_labels(bag), spec.length_s, camera_hz)
    metrics['blame_accuracy'] = None  # it names no modality
    for kind in metrics['per_kind'].values():
        kind['blame_accuracy'] = None
    return metrics
