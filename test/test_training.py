"""Training: deterministic for a seed, resumable from its checkpoint, and failure injection at work."""

import numpy as np
import pytest
import torch

from mcf_ros.data.windows import CHANNELS, Window, WindowSpec
from mcf_ros.model.inference import window_tensors
from mcf_ros.model.mcf import MCFAutoencoder, ModelConfig
from mcf_ros.model.training import (
    PARKED_FLOOR_SHARE,
    TrainConfig,
    _corrupted_tensors,
    _loss,
    _shift_positions,
    corrupt_window,
    fit_normalisation,
    noise_ratios,
    parked_joints,
    replay_at_override,
    train_model,
    training_batch,
    transfer_weights,
)

SPEC = WindowSpec(joint_names=tuple('abcdef'), image_size=16, grid_hz=10.0)
MODEL = ModelConfig(image_size=16, grid_points=SPEC.grid_points, joint_features=SPEC.joint_features, latent_dim=8)


def windows(count, seed):
    rng = np.random.default_rng(seed)
    return [
        Window(k / 30, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8),
               rng.normal(size=(SPEC.grid_points, SPEC.joint_features)).astype(np.float32), 1 / 30, 1.0)
        for k in range(count)
    ]  # fmt: skip


def train(config, checkpoint=None, resume=False, progress=None, device='cpu'):
    data, held = windows(96, 0), windows(32, 1)
    return train_model(
        data,
        held,
        SPEC,
        fit_normalisation(data, SPEC)[0],
        MODEL,
        config,
        torch.device(device),
        progress,
        checkpoint,
        resume,
    )


def weights(result):
    return torch.cat([p.detach().flatten() for p in result.model.parameters()])


# Training on a GPU has to be just as repeatable; those cases run where torch sees one.
DEVICES = [
    'cpu',
    pytest.param(
        'cuda', marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')]
    ),
]


@pytest.mark.parametrize('device', DEVICES)
def test_the_same_seed_trains_the_same_weights(device):
    config = TrainConfig(epochs=2, batch_size=32, seed=3)
    first = train(config, device=device)
    assert next(first.model.parameters()).device.type == device
    assert torch.equal(weights(train(config, device=device)), weights(first))


@pytest.mark.parametrize('device', DEVICES)
def test_an_interrupted_run_resumed_from_its_checkpoint_ends_like_an_uninterrupted_one(tmp_path, device):
    config = TrainConfig(epochs=3, batch_size=32, seed=4)
    checkpoint = tmp_path / 'run.ckpt'

    def stop_after_first_epoch(epoch, *_):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, checkpoint, progress=stop_after_first_epoch, device=device)
    resumed = train(config, checkpoint, resume=True, device=device)
    uninterrupted = train(config, device=device)
    assert len(resumed.train_loss) == 3
    assert torch.equal(weights(resumed), weights(uninterrupted))


def test_failure_injection_corrupts_or_drops_about_the_configured_share_of_inputs():
    data = windows(400, 2)
    config = TrainConfig(corrupt_probability=0.5, drop_probability=0.15)
    rng = np.random.default_rng(0)
    altered = 0
    for window in data:
        image, joints, camera_present, joints_present, clean = corrupt_window(window, data, SPEC, config, rng)
        untouched = (np.array_equal(image, window.image) and np.array_equal(joints, window.joints)
                     and camera_present and joints_present)  # fmt: skip
        assert clean == untouched, 'the concept target must say whether both sensors are present and untouched'
        altered += not untouched
    assert 0.55 <= altered / len(data) <= 0.75, f'{altered / len(data):.2f} of inputs altered, expected about 0.65'


def test_pose_jitter_moves_each_joint_position_by_a_constant():
    data = windows(4, 3)
    shift = np.random.default_rng(0).normal(0.0, 0.02, (len(data), len(SPEC.joint_names)))
    shifted = [_shift_positions(window, row) for window, row in zip(data, shift, strict=True)]
    moved = np.stack([s.joints for s in shifted]) - np.stack([w.joints for w in data])
    positions = len(SPEC.joint_names)
    assert np.allclose(moved[:, :, :positions], shift[:, None, :], atol=1e-6)
    assert not moved[:, :, positions:].any(), 'velocity and effort must stay as recorded'


def ramp_window(speed):
    """A window whose joints all move at `speed` rad/s: position speed * t, velocity speed, effort 3."""
    t = np.arange(SPEC.grid_points) / SPEC.grid_hz
    joints = len(SPEC.joint_names)
    grid = np.concatenate([np.repeat(speed * t[:, None], joints, 1), np.full((len(t), joints), speed),
                           np.full((len(t), joints), 3.0)], axis=1)  # fmt: skip
    return Window(1.0, None, grid.astype(np.float32), 1 / 30, 1.0)


def test_a_slower_replay_ends_where_the_window_ends_and_is_the_window_the_arm_runs_at_that_override():
    fast, slow = ramp_window(0.8), ramp_window(0.8 * 0.6)
    replayed = replay_at_override(fast, 0.6, SPEC)
    joints = len(SPEC.joint_names)
    assert np.allclose(replayed.joints[-1, :joints], fast.joints[-1, :joints]), "the frame's pose must not move"
    assert np.allclose(
        np.diff(replayed.joints[:, :joints], axis=0), np.diff(slow.joints[:, :joints], axis=0), atol=1e-6
    )
    assert np.allclose(replayed.joints[:, joints:], slow.joints[:, joints:]), 'velocity scales, a steady effort stays'
    assert replay_at_override(fast, 1.0, SPEC) is fast


def test_a_slower_replay_keeps_the_effort_gravity_asks_and_shrinks_what_the_motion_asks_by_the_override_squared():
    window = ramp_window(0.8)
    joints = len(SPEC.joint_names)
    t = np.arange(SPEC.grid_points) / SPEC.grid_hz
    motion = (2.0 * np.sin(2 * np.pi * t / 0.25)).astype(np.float32)  # accelerating and braking
    window.joints[:, 0] = motion  # a position is stretched as an effort is: it shows what the replay sees
    window.joints[:, 2 * joints] += motion
    replayed = replay_at_override(window, 0.5, SPEC)
    stretched = replayed.joints[:, 0]
    gravity = 3.0 + stretched.mean()  # ramp_window's steady 3, and the motion's mean over the replayed span
    assert np.allclose(replayed.joints[:, 2 * joints], gravity + 0.25 * (stretched - stretched.mean()), atol=1e-5)


def test_each_input_and_its_target_are_the_same_jittered_and_replayed_window():
    data = windows(64, 3)
    normalisation, _ = fit_normalisation(data, SPEC)
    config = TrainConfig(corrupt_probability=0.0, drop_probability=0.0, slow_replay_probability=0.5)
    inputs, targets, untouched = training_batch(
        data, data, SPEC, normalisation, config, np.random.default_rng(0), 'cpu'
    )
    assert untouched.all() and torch.equal(inputs[1], targets)
    recorded = window_tensors(data, SPEC, normalisation)[1]
    positions = len(SPEC.joint_names)
    moved = (targets - recorded)[:, :, :positions] * torch.from_numpy(normalisation.std[:positions])
    constant = torch.isclose(moved, moved[:, :1], atol=1e-5).all(dim=(1, 2))
    assert 0.3 < constant.float().mean() < 0.7, 'about half the windows only shifted, the others replayed slower'
    assert (moved[:, 0].abs().mean(1) > 0.005).all(), 'every window jittered'


def structured_windows(count, seed):
    """Windows of one smooth scene and sine-wave joints with a random phase."""
    rng = np.random.default_rng(seed)
    scene = np.linspace(40, 220, 16 * 16 * 3).reshape(16, 16, 3).astype(np.uint8)
    steps = np.arange(SPEC.grid_points)[:, None] / SPEC.grid_hz
    result = []
    for k in range(count):
        joints = np.sin(2 * np.pi * 0.5 * steps + rng.uniform(0, 2 * np.pi, SPEC.joint_features))
        image = np.clip(scene + rng.normal(0, 2, scene.shape), 0, 255).astype(np.uint8)
        result.append(Window(k / 30, image, joints.astype(np.float32), 1 / 30, 1.0))
    return result


def test_the_concept_loss_teaches_the_score_1_on_clean_windows_and_0_on_corrupted_ones():
    data = structured_windows(64, 0)
    normalisation, _ = fit_normalisation(data, SPEC)
    rng = np.random.default_rng(0)
    indices = np.arange(48)
    corrupted = [corrupt_window(data[i], data, SPEC, TrainConfig(), rng) for i in indices]
    clean = torch.tensor([c[4] for c in corrupted], dtype=torch.float32)
    assert 0 < clean.sum() < len(clean)
    inputs = _corrupted_tensors(corrupted, data[:48], SPEC, normalisation, 'cpu')
    targets = window_tensors(data[:48], SPEC, normalisation)[:2]
    torch.manual_seed(0)
    model = MCFAutoencoder(MODEL)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):  # the concept term alone, on one batch
        optimizer.zero_grad()
        (_loss(model, inputs, targets, clean, 1.0) - _loss(model, inputs, targets)).backward()
        optimizer.step()
    concept = model(*inputs)['attention'].mean(1).detach()
    assert concept[clean == 1].min() > 0.8 and concept[clean == 0].max() < 0.2
    baseline = MCFAutoencoder(ModelConfig(**{**MODEL.to_dict(), 'fusion': 'concat'}))
    assert _loss(baseline, inputs, targets, clean, 1.0).item() == _loss(baseline, inputs, targets).item()


def moving_cell(seed: int, seconds: int = 64) -> list[Window]:
    """Windows of a cell whose joints a-e move smoothly (e by 1 % of a's range, as a wrist that barely turns) and
    whose joint f is parked: every channel of it is encoder noise."""
    rng = np.random.default_rng(seed)
    data = []
    for k in range(seconds):  # a window every second
        t = k + np.arange(SPEC.grid_points) / SPEC.grid_hz
        joints = np.empty((SPEC.grid_points, SPEC.joint_features), np.float32)
        for feature, (c, j) in enumerate(SPEC.features):
            amplitude = [1.0, 0.8, 0.6, 0.4, 0.01, 0.0][j]
            motion = amplitude * np.sin(0.3 * t + j + c)
            joints[:, feature] = motion + rng.normal(0.0, 2e-4, SPEC.grid_points)
        data.append(Window(k + 1.0, rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), joints, 1 / 30, 1.0))
    return data


def test_noise_ratio_is_about_1_for_noise_0_for_a_joint_that_never_changes_and_large_for_motion():
    data = moving_cell(0)
    for window in data:  # e never changes (an encoder that reads the same count)
        window.joints[:, SPEC.joint_names.index('e')] = 0.25
    ratios = dict(zip(SPEC.joint_names, noise_ratios(data, SPEC), strict=True))
    assert ratios['e'] == 0.0 and ratios['f'] == pytest.approx(1.0, abs=0.15)
    assert min(ratios[name] for name in 'abcd') > 20
    assert parked_joints(data, SPEC) == ['e', 'f']


def test_a_joint_parked_far_from_zero_is_parked_however_long_the_recording():
    """Summed in float32, 20 min of a joint held at -2.2 rad spread 1.2x its 0.2 mrad noise here, and up to 24x on the
    YuMi's idle arm (50 grid points a window): the spread must be taken in float64."""
    data = moving_cell(0, seconds=1200)
    f = SPEC.features.index((CHANNELS.index('position'), SPEC.joint_names.index('f')))
    for window in data:
        window.joints[:, f] += np.float32(-2.2)
    assert noise_ratios(data, SPEC)[SPEC.joint_names.index('f')] == pytest.approx(1.0, abs=0.15)
    normalisation, parked = fit_normalisation(data, SPEC)
    assert parked == ['f'] and normalisation.mean[f] == pytest.approx(-2.2, abs=1e-5)


def test_a_parked_joint_of_a_slow_driver_is_parked_too():
    """A joint published at 4 Hz is interpolated onto the 10 Hz grid: neighbours share samples and its noise
    looks smaller than it is, unless the step is taken between grid points that share none."""
    rng = np.random.default_rng(1)
    spec = WindowSpec(joint_names=SPEC.joint_names, image_size=16, grid_hz=10.0, joint_rates_hz=(500,) * 5 + (4,))
    samples_s = np.arange(0.0, 301.0, 0.25)
    published = -1.3 + rng.normal(0.0, 2e-4, len(samples_s))
    data = moving_cell(0, seconds=300)
    f = spec.features.index((CHANNELS.index('position'), spec.joint_names.index('f')))
    for k, window in enumerate(data):
        window.joints[:, f] = np.interp(k + np.arange(spec.grid_points) / spec.grid_hz, samples_s, published)
    ratio = noise_ratios(data, spec)[spec.joint_names.index('f')]
    assert ratio == pytest.approx(1.0, abs=0.2) and parked_joints(data, spec) == ['f']


def test_a_parked_joint_is_told_from_a_slow_one_by_its_own_noise_and_scaled_by_a_share_of_the_widest():
    data = moving_cell(0)
    std = np.concatenate([w.joints for w in data]).std(0)
    normalisation, parked = fit_normalisation(data, SPEC)
    assert parked == ['f'], 'e moves by 1 % of the widest joint, far beyond its noise; f only by its noise'
    f = SPEC.joint_names.index('f')
    for feature, (c, j) in enumerate(SPEC.features):
        widest = max(std[SPEC.features.index((c, k))] for k in range(len(SPEC.joint_names)))
        # positions and velocities take the floor; effort, whose scale follows the joint's size, does not
        motion = CHANNELS[c] in ('position', 'velocity')
        expected = std[feature] if j != f else PARKED_FLOOR_SHARE * widest if motion else 1e-3
        assert normalisation.std[feature] == pytest.approx(expected, rel=1e-5), (CHANNELS[c], j)


def test_weights_transfer_where_their_shapes_fit_and_the_joint_sized_layers_start_fresh():
    other_arm = ModelConfig(**{**MODEL.to_dict(), 'joint_features': 14 * 3})  # a YuMi's 14 joints
    source = MCFAutoencoder(other_arm).state_dict()
    model = MCFAutoencoder(MODEL)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    copied, fresh = transfer_weights(model, source)
    after = model.state_dict()
    assert any(name.startswith('camera_encoder.') for name in copied) and any(n.startswith('fusion.') for n in copied)
    assert fresh and all(name.startswith(('kinematics_encoder.', 'kinematics_decoder.')) for name in fresh)
    assert all(torch.equal(after[name], source[name]) for name in copied)
    assert all(torch.equal(after[name], before[name]) for name in fresh)


@pytest.mark.parametrize('device', DEVICES)
def test_training_from_another_models_weights_starts_from_them(device):
    first_loss = [train(TrainConfig(epochs=1, seed=seed), device=device).holdout_loss[0] for seed in (0, 1)]
    data, held = windows(96, 0), windows(32, 1)
    trained = train(TrainConfig(epochs=3, seed=0), device=device).model.state_dict()
    normalisation, _ = fit_normalisation(data, SPEC)
    resumed = train_model(
        data, held, SPEC, normalisation, MODEL, TrainConfig(epochs=1, seed=0), torch.device(device), initial=trained
    )
    assert resumed.holdout_loss[0] < min(first_loss), 'starting from trained weights is no better than from scratch'
