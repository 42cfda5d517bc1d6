"""Training with failure injection, then calibration on held-out normal windows.

Each training input is corrupted with some probability by the sensor-fault library (a random
modality, fault and strength), or has one modality dropped; the loss asks for the clean input
of both modalities back. The model thus learns to rebuild each sensor from the fused concept
even when one sensor lies or is missing, and at run time the residual of the observed input
against that rebuild is the evidence against the sensor. The MCF model's concept score (mean of
the attention vector a) is taught what it means: 1 when both sensors are present and clean, so
their information is shared, and 0 when one is corrupted or missing. Each window's joint positions
(input and target alike) are first shifted by a small constant per joint, so that a pose that the
recording never reached is not taken for an encoder offset, and some windows are replayed slower,
as under a lowered speed override, so that a slower program is not taken for a fault.
"""

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from mcf_ros.data.windows import CHANNELS, Window, WindowSpec
from mcf_ros.errors import UserError
from mcf_ros.faults.camera import CAMERA_CORRUPTIONS
from mcf_ros.faults.kinematics import JOINT_CORRUPTIONS
from mcf_ros.model.cycle import SLOWEST_OVERRIDE
from mcf_ros.model.inference import Normalisation, window_tensors
from mcf_ros.model.mcf import MCFAutoencoder, ModelConfig

# Corruptions that act on one window; frozen and delayed frames are stood in for by a stale frame
# (another window's image), lost frames and joint gaps by dropping the modality.
TRAIN_CAMERA_FAULTS = ['camera_black', 'camera_noise', 'camera_blur', 'camera_occlusion', 'camera_color', 'camera_dust']
TRAIN_JOINT_FAULTS = ['joint_frozen', 'joint_offset', 'joint_drift', 'joint_noise', 'joint_spikes']
MOTION = (CHANNELS.index('position'), CHANNELS.index('velocity'))  # effort scales with the joint's size
# A joint is parked when its position spreads at most this many times its own sample-to-sample noise: white
# noise alone gives 1, noise correlated 0.75 between grid points 2; a joint that moves, however little, more.
PARKED_NOISE_RATIO = 2.0
PARKED_FLOOR_SHARE = 0.05  # a parked joint's position and velocity scale: at least this share of the widest joint's


@dataclass
class TrainConfig:
    """Optimisation and failure-injection settings."""

    epochs: int = 25
    batch_size: int = 64
    learning_rate: float = 2e-3
    corrupt_probability: float = 0.5
    drop_probability: float = 0.15
    concept_weight: float = 0.1
    pose_jitter_rad: float = 0.05
    slow_replay_probability: float = 0.5
    slowest_override: float = SLOWEST_OVERRIDE  # the cycle channel's tolerance, so both take the same speeds
    seed: int = 0


@dataclass
class TrainResult:
    """The trained model and its learning curves (mean loss per epoch)."""

    model: MCFAutoencoder
    train_loss: list[float] = field(default_factory=list)
    holdout_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def noise_ratios(windows: list[Window], spec: WindowSpec) -> np.ndarray:
    """Return each joint's position spread over its own noise (white noise alone gives 1; motion, more).

    The noise is the spread of the step between grid points interpolated from different samples
    (neighbours, unless the joint publishes slower than half the grid rate), divided by sqrt 2. A
    joint that never changes has ratio 0.
    """
    joints = len(spec.joint_names)  # features are channel-major: the positions come first
    # float64: summed over hours of float32 samples, a still joint's 0.2 mrad at 2 rad drowns in rounding
    positions = np.stack([w.joints[:, :joints] for w in windows if w.joints is not None]).astype(np.float64)
    spread = positions.reshape(-1, joints).std(0)
    noise = np.empty(joints)
    for j, rate_hz in enumerate(spec.joint_rates_hz):
        lag = max(1, math.ceil(2.0 * spec.grid_hz / rate_hz - 1e-9))  # two grid points sharing no sample
        noise[j] = (positions[:, lag:, j] - positions[:, :-lag, j]).std() / np.sqrt(2.0)
    return spread / np.maximum(noise, np.finfo(np.float32).tiny)


def parked_joints(windows: list[Window], spec: WindowSpec) -> list[str]:
    """Return the joints that hold still (a second arm at rest, an unused axis): noise ratio <= PARKED_NOISE_RATIO."""
    ratios = noise_ratios(windows, spec)
    return [name for name, ratio in zip(spec.joint_names, ratios, strict=True) if ratio <= PARKED_NOISE_RATIO]


def fit_normalisation(windows: list[Window], spec: WindowSpec) -> tuple[Normalisation, list[str]]:
    """Return the joint grids' per-feature mean and deviation (at least 1e-3), and the parked joints.

    A parked joint moves only by its encoder noise; scaled by that noise, a training corruption of it
    would be hundreds of deviations, and the model would learn little else. So a parked joint's
    position and velocity deviations are at least PARKED_FLOOR_SHARE of the widest joint's of their
    channel (effort's scale follows the joint's size and load, and is left as it is).
    """
    stacked = np.concatenate([w.joints for w in windows if w.joints is not None]).astype(np.float64)  # as noise_ratios
    std = stacked.std(0)
    parked = parked_joints(windows, spec)
    channel = np.array([c for c, _ in spec.features])
    floor = np.array([
        PARKED_FLOOR_SHARE * std[channel == c].max() if c in MOTION and spec.joint_names[j] in parked else 0.0
        for c, j in spec.features
    ])  # fmt: skip
    scale = np.maximum(std, np.maximum(floor, 1e-3))
    return Normalisation(stacked.mean(0).astype(np.float32), scale.astype(np.float32)), parked


def corrupt_window(
    window: Window, others: list[Window], spec: WindowSpec, config: TrainConfig, rng: np.random.Generator
) -> tuple:
    """Return (image, joints, camera_present, joints_present, clean) for one training input.

    `clean` is whether both sensors are present and untouched: the concept score's target.
    """
    image, joints = window.image, window.joints
    camera_present, joints_present = image is not None, joints is not None
    draw = rng.random()
    if draw < config.drop_probability:
        if rng.random() < 0.5:
            camera_present = False
        else:
            joints_present = False
    elif draw < config.drop_probability + config.corrupt_probability:
        strength = rng.uniform(0.3, 1.0)
        if rng.random() < 0.5 and image is not None:
            choice = rng.integers(len(TRAIN_CAMERA_FAULTS) + 1)
            if choice == len(TRAIN_CAMERA_FAULTS):
                image = others[rng.integers(len(others))].image
            else:
                image = CAMERA_CORRUPTIONS[TRAIN_CAMERA_FAULTS[choice]](rng, strength)(image)
        elif joints is not None:
            corrupt = JOINT_CORRUPTIONS[TRAIN_JOINT_FAULTS[rng.integers(len(TRAIN_JOINT_FAULTS))]](
                rng, strength, len(spec.joint_names)
            )
            channel, joint = np.array(spec.features).T
            full = np.zeros((len(joints), len(CHANNELS), len(spec.joint_names)), joints.dtype)
            full[:, channel, joint] = joints  # channels the model does not use stay zero and are dropped again
            times = np.arange(len(joints)) / spec.grid_hz
            joints = np.stack([np.stack(corrupt(t, *row))[channel, joint] for t, row in zip(times, full, strict=True)])
    clean = (
        camera_present
        and joints_present
        and np.array_equal(image, window.image)
        and np.array_equal(joints, window.joints)
    )
    return image, joints, camera_present, joints_present, clean


def _loss(model, batch, targets, clean: torch.Tensor | None = None, concept_weight: float = 0.0) -> torch.Tensor:
    """Reconstruction loss of the modalities the model uses, plus the concept loss when `clean` is given."""
    out = model(*batch)
    image_target, joint_target = targets
    uses_camera, uses_joints = model.config.uses
    mse = torch.nn.functional.mse_loss
    loss = uses_camera * mse(out['image'], image_target) + uses_joints * mse(out['joints'], joint_target)
    if clean is not None and model.config.fusion == 'mcf':
        concept = out['attention'].mean(1).clamp(1e-6, 1.0 - 1e-6)
        loss = loss + concept_weight * torch.nn.functional.binary_cross_entropy(concept, clean)
    return loss


def train_model(
    train: list[Window],
    holdout: list[Window],
    spec: WindowSpec,
    normalisation: Normalisation,
    model_config: ModelConfig,
    config: TrainConfig,
    device: torch.device,
    progress: Callable[[int, float, float], None] | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    initial: dict[str, torch.Tensor] | None = None,
) -> TrainResult:
    """Train the MCF autoencoder on `train`, tracking the clean reconstruction loss on `holdout`.

    After every epoch the full training state goes to `checkpoint`; with `resume`, training
    continues from it, and the result equals that of an uninterrupted run with the same seed.
    `initial`: weights to start from (another model's, `transfer_weights`) instead of random ones.
    """
    with _deterministic(device):
        return _train(
            train, holdout, spec, normalisation, model_config, config, device, progress, checkpoint, resume, initial
        )


def transfer_weights(model: torch.nn.Module, source: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """Copy into `model` every tensor of `source` with the same name and shape; return (copied, left as they were).

    Between cells with other joints, the layers sized by the joints stay fresh and the rest (the
    camera's encoder and decoder, the fusion) start from what the source model learnt.
    """
    own = model.state_dict()
    copied = [name for name, tensor in own.items() if name in source and source[name].shape == tensor.shape]
    model.load_state_dict({**own, **{name: source[name] for name in copied}})
    return copied, [name for name in own if name not in copied]


@contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Pick deterministic CUDA kernels while training, so that --seed gives the same weights on a GPU too."""
    if device.type != 'cuda':
        yield
        return
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')  # read when cuBLAS starts; deterministic GEMMs
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def _train(train, holdout, spec, normalisation, model_config, config, device, progress, checkpoint, resume, initial):
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = MCFAutoencoder(model_config)
    if initial is not None:
        transfer_weights(model, initial)
    model = model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, config.learning_rate, total_steps=config.epochs * ((len(train) - 1) // config.batch_size + 1)
    )
    clean_images = window_tensors(train, spec, normalisation)[0].to(device)
    held = [t.to(device) for t in window_tensors(holdout, spec, normalisation)]
    result = TrainResult(model)
    first_epoch = 0
    if resume:
        if checkpoint is None or not checkpoint.is_file():
            raise UserError(f'no checkpoint to resume from: {checkpoint}')
        state = torch.load(checkpoint, weights_only=True, map_location=device)
        model.load_state_dict(state['model'])
        optimizer.load_state_dict(state['optimizer'])
        schedule.load_state_dict(state['schedule'])
        rng.bit_generator.state = state['rng']
        torch.set_rng_state(state['torch_rng'].cpu())  # map_location moved it to the training device
        result.train_loss, result.holdout_loss, first_epoch = state['train_loss'], state['holdout_loss'], state['epoch']
    started = time.monotonic()
    for epoch in range(first_epoch, config.epochs):
        model.train()
        order = rng.permutation(len(train))
        losses = []
        for start in range(0, len(order), config.batch_size):
            indices = order[start : start + config.batch_size]
            inputs, joint_targets, untouched = training_batch(
                [train[i] for i in indices], train, spec, normalisation, config, rng, device
            )
            loss = _loss(model, inputs, (clean_images[indices], joint_targets), untouched, config.concept_weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        result.train_loss.append(float(np.mean(losses)))
        result.holdout_loss.append(_holdout_loss(model, held))
        if checkpoint is not None:
            torch.save(
                {
                    'model': model.state_dict(),
                    'optimizer': optimizer.state_dict(),
                    'schedule': schedule.state_dict(),
                    'rng': rng.bit_generator.state,
                    'torch_rng': torch.get_rng_state(),
                    'train_loss': result.train_loss,
                    'holdout_loss': result.holdout_loss,
                    'epoch': epoch + 1,
                },
                checkpoint,
            )
        if progress:
            progress(epoch + 1, result.train_loss[-1], result.holdout_loss[-1])
    result.seconds = time.monotonic() - started
    model.eval()
    return result


def training_batch(
    batch: list[Window], others: list[Window], spec: WindowSpec, normalisation: Normalisation, config: TrainConfig,
    rng: np.random.Generator, device,
) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:  # fmt: skip
    """Return the model inputs of a batch, its normalised joint targets and whether each input is untouched.

    Each window's joints are first made into another normal window (shifted by the pose jitter,
    sometimes replayed slower); that is the target, and failure injection then corrupts the input.
    """
    jitter = rng.normal(0.0, config.pose_jitter_rad, (len(batch), len(spec.joint_names)))
    overrides = np.where(
        rng.random(len(batch)) < config.slow_replay_probability,
        rng.uniform(config.slowest_override, 1.0, len(batch)),
        1.0,
    )
    sources = [
        replay_at_override(_shift_positions(window, shift), override, spec)
        for window, shift, override in zip(batch, jitter, overrides, strict=True)
    ]
    corrupted = [corrupt_window(source, others, spec, config, rng) for source in sources]
    inputs = _corrupted_tensors(corrupted, sources, spec, normalisation, device)
    untouched = torch.tensor([c[4] for c in corrupted], dtype=torch.float32, device=device)
    return inputs, window_tensors(sources, spec, normalisation)[1].to(device), untouched


def _shift_positions(window: Window, shift: np.ndarray) -> Window:
    """Return `window` with each joint's position shifted by a constant (rad) over the whole window."""
    if window.joints is None:
        return window
    joints = window.joints.copy()
    joints[:, : len(shift)] += shift.astype(np.float32)
    return replace(window, joints=joints)


def replay_at_override(window: Window, override: float, spec: WindowSpec) -> Window:
    """Return `window`'s joints as the arm would have run them at `override` times its speed (at most 1).

    The window keeps its end, and so its frame: its grid covers the last `override` share of the
    original window's time, stretched over the whole grid (linear interpolation), and velocities
    scale by `override`. A joint's torque is what gravity asks plus what the motion asks; the
    motion's part (accelerations, Coriolis) scales by the square of the override. Without a model
    of the arm, the window's mean effort stands in for gravity, and each effort's departure from
    it shrinks by `override` squared.
    """
    if window.joints is None or override >= 1.0:
        return window
    last = spec.grid_points - 1
    at = last - override * (last - np.arange(spec.grid_points))  # fractional grid index of each new point
    below = np.minimum(np.floor(at).astype(int), last - 1)
    weight = (at - below)[:, None].astype(np.float32)
    joints = window.joints[below] * (1.0 - weight) + window.joints[below + 1] * weight
    channels = np.array([channel for channel, _ in spec.features])
    joints[:, channels == CHANNELS.index('velocity')] *= override
    effort = channels == CHANNELS.index('effort')
    gravity = joints[:, effort].mean(axis=0)
    joints[:, effort] = gravity + override**2 * (joints[:, effort] - gravity)
    return replace(window, joints=joints.astype(np.float32))


def _corrupted_tensors(corrupted, sources, spec, normalisation, device):
    staged = []
    for (image, joints, camera_present, joints_present, _), source in zip(corrupted, sources, strict=True):
        staged.append(
            Window(source.end_s, image if camera_present else None, joints if joints_present else None, 0.0, 1.0)
        )
    return [t.to(device) for t in window_tensors(staged, spec, normalisation)]


@torch.inference_mode()
def _holdout_loss(model, held) -> float:
    model.eval()
    image, joints, mask = held
    total, count = 0.0, 0
    for start in range(0, len(image), 256):
        part = slice(start, start + 256)
        total += _loss(model, (image[part], joints[part], mask[part]), (image[part], joints[part])).item() * len(
            image[part]
        )
        count += len(image[part])
    return total / max(count, 1)
