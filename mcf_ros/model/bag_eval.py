"""`mcf eval` end to end: a bag scored by a model, and the baselines trained as the model was.

Baseline models are cached beside the model; the cache key holds the model (its weights' and
calibration's hashes), the training data's fingerprint and the training code's version, so a
change to any of them retrains the baselines.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mcf_ros.data.dataset import InputTally, all_bag_windows, camera_topic_of
from mcf_ros.data.inspection import BagInspection
from mcf_ros.data.labels import read_labels
from mcf_ros.data.preflight import model_findings
from mcf_ros.data.windows import Window, WindowSpec
from mcf_ros.errors import UserError
from mcf_ros.model.artifact import Artifact, ArtifactError, load_artifact, save_artifact
from mcf_ros.model.evaluation import detection_metrics
from mcf_ros.model.inference import Detector
from mcf_ros.model.onnx_backend import onnx_beside
from mcf_ros.model.training import TrainConfig
from mcf_ros.model.workflow import inspect_for, train_from_bags, training_data

# The modules whose source decides what a training run produces from the same data.
TRAINING_CODE = (
    'mcf_ros/model/training.py', 'mcf_ros/model/mcf.py', 'mcf_ros/model/inference.py', 'mcf_ros/model/scoring.py',
    'mcf_ros/model/cycle.py', 'mcf_ros/model/workflow.py', 'mcf_ros/faults/camera.py', 'mcf_ros/faults/kinematics.py',
    'mcf_ros/data/windows.py', 'mcf_ros/data/dataset.py',
)  # fmt: skip


def training_code_version() -> str:
    """Return a hash of the training code's source (TRAINING_CODE)."""
    root = Path(__file__).resolve().parent.parent.parent
    digest = hashlib.sha256()
    for name in TRAINING_CODE:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:12]


@dataclass
class BagWindows:
    """A bag cut into a model's windows: what it holds, the camera read, the spec at its frame rate, the tally."""

    inspection: BagInspection
    camera_topic: str
    spec: WindowSpec
    windows: list[Window]
    tally: InputTally


def model_windows(detector: Detector, model: str, bag: str) -> BagWindows:
    """Cut a bag into `detector`'s windows; raise UserError if the bag does not fit the model or gives none."""
    topics = detector.artifact.header['modalities']
    joint_topic = topics['kinematics']['topic']
    inspection = inspect_for(bag, topics['camera']['topic'], joint_topic)
    camera_topic = camera_topic_of(inspection, topics['camera']['topic'])
    problems = [f.text for f in model_findings(detector.artifact.header, inspection, joint_topic) if f.blocks]
    if problems:
        raise UserError(f'{bag} does not fit the model {model}: {"; ".join(problems)}')
    camera = inspection.cameras[camera_topic]
    spec = replace(detector.spec, camera_hz=camera.stamps.rate_hz or detector.spec.camera_hz)
    tally = InputTally()
    windows = all_bag_windows(bag, spec, camera_topic, joint_topic, camera.resolution, tally)
    if not windows:
        raise UserError('\n  '.join([f'{bag} gives no windows', *tally.lines()]))
    return BagWindows(inspection, camera_topic, spec, windows, tally)


def evaluate_bag(model: str, bag: str, device: str = 'auto') -> tuple[dict, dict, list[Window], Detector]:
    """Score every window of a bag with a model; return (scored arrays, metrics, windows, detector)."""
    detector = Detector(load_artifact(model), device)
    detector.compile(onnx_beside(model))
    cut = model_windows(detector, model, bag)
    spec, camera_topic, tally, windows = cut.spec, cut.camera_topic, cut.tally, cut.windows
    scored = detector.score(windows)
    metrics = detection_metrics(scored, read_labels(bag), spec.length_s, spec.camera_hz)
    metrics['model_id'] = detector.artifact.model_id
    metrics['inference_backend'] = detector.backend
    metrics['input'] = {
        'camera_topic': camera_topic,
        'camera_hz': spec.camera_hz,
        'frames': tally.frames,
        'joint_states': tally.joint_states,
        'rejected': dict(tally.rejected),
        'notes': tally.lines(),
    }
    return scored, metrics, windows, detector


BASELINES = ('camera', 'kinematics', 'concat')


def _training_bags(header: dict) -> list[str]:
    bags = header['training']['bags']
    missing = [bag for bag in bags if not Path(bag).is_dir()]
    if missing:
        raise UserError(f"--baselines retrains on the model's training bags, and these are gone: {', '.join(missing)}")
    return bags


def _baseline_key(artifact: Artifact) -> str:
    """Return what a baseline is trained for: the model, its calibration, its data and the training code."""
    calibration = json.dumps(artifact.header['calibration'], sort_keys=True).encode()
    data = artifact.header['training']['fingerprint']
    return f'{artifact.model_id}-{hashlib.sha256(calibration).hexdigest()[:12]}-{data}-{training_code_version()}'


def _baseline_of(path: Path) -> str | None:
    """Return the key of the model a cached baseline was trained for, or None if missing or unreadable."""
    try:
        return load_artifact(path).header['training'].get('baseline_of')
    except ArtifactError:
        return None


def baseline_models(model: str, device: str, log: Callable[[str], None]) -> dict[str, Path]:
    """Return a model of each baseline fusion, trained like `model` on its own training bags.

    They are cached beside the model as MODEL.baseline-NAME.mcf, stamped with the cache key (see the
    module docstring), and retrained whenever it changes (new weights, the same weights recalibrated
    by a newer mcf, other training data, other training code) or the cached file cannot be read.
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
            config = TrainConfig(training['epochs'], seed=training['seed'])
            train_from_bags(
                bags, str(path), topics['camera']['topic'], topics['kinematics']['topic'], config, device,
                header['model']['image_size'], header['calibration']['target_false_alarms_per_hour'],
                log=log, fusion=name, joints=header['window']['joint_names'],
            )  # fmt: skip
            baseline = load_artifact(path)
            baseline.header['training']['baseline_of'] = key
            save_artifact(path, baseline.header, baseline.state_dict)
        paths[name] = path
    return paths


def feature_baseline_metrics(
    model: str, bag: str, windows: list[Window], camera_hz: float, log: Callable[[str], None]
) -> dict:
    """Fit the PyOD baseline on `model`'s training bags, as the model was, and return its metrics on `bag`'s windows."""
    from mcf_ros.model.feature_baseline import FeatureBaseline

    header = load_artifact(model).header
    spec = WindowSpec.from_dict(header['window'])
    topics = header['modalities']
    camera_topic, joint_topic = topics['camera']['topic'], topics['kinematics']['topic']
    joints = list(spec.joint_names)
    data = training_data(_training_bags(header), camera_topic, joint_topic, spec.image_size, joints, log)
    log(f'fitting the PyOD (ECOD) baseline on {len(data.train)} windows')
    baseline = FeatureBaseline(data.train, data.holdout, spec.joint_features, header['calibration'])
    metrics = detection_metrics(baseline.score(windows), read_labels(bag), spec.length_s, camera_hz)
    metrics['blame_accuracy'] = metrics['physical_blame_accuracy'] = None  # it names no modality
    for kind in metrics['per_kind'].values():
        kind['blame_accuracy'] = None
    return metrics
