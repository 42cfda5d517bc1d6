"""A loaded artifact, ready to score windows on the CPU or a GPU."""

from dataclasses import dataclass

import numpy as np
import torch

from mcf_ros.data.windows import Window, WindowSpec
from mcf_ros.model.artifact import Artifact, ArtifactError
from mcf_ros.model.cycle import window_path
from mcf_ros.model.mcf import CAMERA, KINEMATICS, MCFAutoencoder, ModelConfig
from mcf_ros.model.scoring import Calibration, StreamScorer, score_sequence

BATCH = 256


def pick_device(requested: str) -> torch.device:
    """Return the torch device for 'auto' (CUDA when present), 'cpu' or 'cuda'."""
    if requested == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if requested == 'cuda' and not torch.cuda.is_available():
        raise ArtifactError('--device cuda was asked for, but torch sees no CUDA device')
    return torch.device(requested)


@dataclass
class Normalisation:
    """Per-feature statistics of the joint grid, in the spec's channel-major order.

    `mean` and `std` normalise the inputs; `residual_scale` is each feature's normal 90th percentile
    of the model's mean squared residual (set after training, on held-out windows).
    """

    mean: np.ndarray
    std: np.ndarray
    residual_scale: np.ndarray | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        values = {'mean': self.mean.tolist(), 'std': self.std.tolist()}
        if self.residual_scale is not None:
            values['residual_scale'] = self.residual_scale.tolist()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> 'Normalisation':
        """Build from `to_dict` output."""
        scale = values.get('residual_scale')
        return cls(
            np.array(values['mean'], np.float32),
            np.array(values['std'], np.float32),
            None if scale is None else np.array(scale, np.float32),
        )


def window_tensors(windows: list[Window], spec: WindowSpec, normalisation: Normalisation):
    """Stack windows into model inputs: images (N, 3, S, S) in [0, 1], normalised joints (N, T, F), mask (N, 2)."""
    size, steps, features = spec.image_size, spec.grid_points, spec.joint_features
    images = np.zeros((len(windows), size, size, 3), np.uint8)
    joints = np.zeros((len(windows), steps, features), np.float32)
    mask = np.zeros((len(windows), 2), bool)
    for index, window in enumerate(windows):
        if window.image is not None:
            images[index], mask[index, CAMERA] = window.image, True
        if window.joints is not None:
            joints[index], mask[index, KINEMATICS] = (window.joints - normalisation.mean) / normalisation.std, True
    return (
        torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0),
        torch.from_numpy(joints),
        torch.from_numpy(mask),
    )


def joint_residuals(out: dict, joints: torch.Tensor) -> torch.Tensor:
    """Return each joint feature's mean squared reconstruction residual over the window grid (B, F)."""
    return ((out['joints'] - joints) ** 2).mean(dim=1)


def joint_paths(windows: list[Window], joints: int) -> np.ndarray:
    """Return each window's path (N, 3 x J): joint positions at its start, middle and end; NaN without joints."""
    paths = np.full((len(windows), 3 * joints), np.nan)
    for index, window in enumerate(windows):
        if window.joints is not None:
            paths[index] = window_path(window.joints, joints)
    return paths


def latent_disagreement(latents: torch.Tensor) -> torch.Tensor:
    """Return the cosine distance between the camera and the kinematics latent of each window (B,).

    The fusion block takes the mean and the max of the latents element by element, and modality
    dropout asks either latent alone to rebuild the whole window, so on normal data both sensors'
    latents say the same thing in the same coordinates. A sensor that shows another moment or
    another world than the other (a stale frame, a frozen encoder) turns its latent away.
    """
    return 1.0 - torch.nn.functional.cosine_similarity(latents[:, CAMERA], latents[:, KINEMATICS], dim=1)


class Detector:
    """Scores windows with a trained MCF model and its calibration."""

    def __init__(self, artifact: Artifact, device: str = 'auto'):
        header = artifact.header
        self.artifact = artifact
        self.spec = WindowSpec.from_dict(header['window'])
        self.normalisation = Normalisation.from_dict(header['normalisation'])
        self.calibration = Calibration(**header['calibration']) if header.get('calibration') else None
        self.device = pick_device(device)
        self.model = MCFAutoencoder(ModelConfig(**header['model']))
        try:
            self.model.load_state_dict(artifact.state_dict)
        except RuntimeError as err:
            raise ArtifactError(f'weights do not fit the model config in the header: {err}') from None
        self.model.to(self.device).eval()
        self._forward = self.model

    def to(self, device: str) -> 'Detector':
        """Move the model to 'auto', 'cpu' or 'cuda' (dropping a compiled forward); return self."""
        self.device = pick_device(device)
        self.model.to(self.device)
        self._forward = self.model
        return self

    @torch.inference_mode()
    def compile(self) -> None:
        """Score through a traced, frozen TorchScript graph of the model on its device.

        The graph runs in C++ with fewer Python calls per window (faster on small batches, and less
        exposed to other Python threads). The model has no data-dependent branches, so the trace
        holds for any batch size and modality mask. On the CPU the weights are stored channels-last,
        as the images already are.
        """
        size, spec = self.spec.image_size, self.spec
        if self.device.type == 'cpu':  # the decoder's transposed convolutions run 15 % faster so on the CPU
            self.model.to(memory_format=torch.channels_last)
        example = (
            torch.zeros(1, 3, size, size, device=self.device),
            torch.zeros(1, spec.grid_points, spec.joint_features, device=self.device),
            torch.ones(1, 2, dtype=torch.bool, device=self.device),
        )
        self._forward = torch.jit.freeze(torch.jit.trace(self.model, example, strict=False, check_trace=False))

    def check_camera(self, width: int, height: int) -> None:
        """Refuse frames of another resolution than the training data's: the model would see another image."""
        trained = self.artifact.header['modalities']['camera'].get('resolution')
        if trained and tuple(trained) != (width, height):
            raise ArtifactError(
                f'model was trained on {trained[0]}x{trained[1]} camera frames, these are {width}x{height}; '
                'train on data from this camera'
            )

    def check_joint_names(self, names) -> None:
        """Refuse data whose joints are not the ones the model was trained on."""
        if set(names) != set(self.spec.joint_names):
            raise ArtifactError(f'model expects joints {list(self.spec.joint_names)}, the data has {list(names)}')

    def _passes(self, windows: list[Window]):
        """Yield (model outputs, image, joints, mask) per batch of windows, on the model's device."""
        for start in range(0, len(windows), BATCH):
            tensors = window_tensors(windows[start : start + BATCH], self.spec, self.normalisation)
            if self.device.type == 'cuda':
                tensors = (t.pin_memory() for t in tensors)
            image, joints, mask = (t.to(self.device, non_blocking=True) for t in tensors)
            yield self._forward(image, joints, mask), image, joints, mask

    @torch.inference_mode()
    def _raw_evidence(self, windows: list[Window]) -> dict[str, np.ndarray]:
        """Return evidence() with each joint feature's mean squared residual (N, F) for the kinematics error.

        A modality the model does not use or the window lacks gives NaN.
        """
        uses_camera, uses_joints = self.model.config.uses
        parts = []
        for out, image, joints, mask in self._passes(windows):
            camera_error = ((out['image'] - image) ** 2).mean(dim=(1, 2, 3))
            disagreement = latent_disagreement(out['latents'])
            mask = mask & torch.tensor([uses_camera, uses_joints], device=mask.device)
            parts.append({
                'attention': out['attention'].cpu().numpy(),
                'camera_error': torch.where(mask[:, CAMERA], camera_error, torch.nan).cpu().numpy(),
                'joint_residuals': torch.where(
                    mask[:, KINEMATICS, None], joint_residuals(out, joints), torch.nan
                ).cpu().numpy(),
                'latent_disagreement': torch.where(mask.all(dim=1), disagreement, torch.nan).cpu().numpy(),
            })  # fmt: skip
        evidence = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
        evidence['frame_gap'] = np.array([w.frame_gap_s for w in windows])
        evidence['joint_gap'] = np.array([w.joint_gap for w in windows])
        evidence['joint_jerk'] = np.array([w.joint_jerk for w in windows])
        paths = joint_paths(windows, len(self.spec.joint_names))
        evidence['joint_path'] = paths if uses_joints else np.full_like(paths, np.nan)
        return evidence

    def _scaled(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Turn the joint residuals into the kinematics error: the largest residual relative to its scale."""
        evidence = {key: value for key, value in raw.items() if key != 'joint_residuals'}
        evidence['kinematics_error'] = (raw['joint_residuals'] / self.normalisation.residual_scale).max(axis=1)
        return evidence

    def fit_residual_scale(self, windows: list[Window]) -> dict[str, np.ndarray]:
        """Set the joint residual scale from normal `windows` and return their evidence, in one pass.

        Each joint feature's scale is its 90th percentile of mean squared residual on the windows.
        """
        raw = self._raw_evidence(windows)
        residuals = raw['joint_residuals'][np.isfinite(raw['joint_residuals']).all(axis=1)]
        # A model that does not use the joints (the camera-only baseline) has no residual to scale.
        scale = np.quantile(residuals, 0.9, axis=0) if len(residuals) else np.ones(residuals.shape[1])
        self.normalisation.residual_scale = np.maximum(scale, 1e-6).astype(np.float32)
        return self._scaled(raw)

    def evidence(self, windows: list[Window]) -> dict[str, np.ndarray]:
        """Return the attention vectors (N, D) and the raw evidence that needs no calibration."""
        if self.normalisation.residual_scale is None:
            raise ArtifactError('the artifact has no residual scale; it was not written by a finished `mcf train`')
        return self._scaled(self._raw_evidence(windows))

    def _calibration(self) -> Calibration:
        if self.calibration is None:
            raise ArtifactError('the artifact has no calibration; it was not written by a finished `mcf train`')
        return self.calibration

    def stream(self) -> StreamScorer:
        """Return a scorer that turns one window's evidence after another into scores, flag and blame."""
        return StreamScorer(self._calibration(), self.spec.length_s)

    def score(self, windows: list[Window]) -> dict[str, np.ndarray]:
        """Score a time-ordered sequence of windows: evidence, scores, the flag and the blame per window."""
        calibration = self._calibration()
        evidence = self.evidence(windows)
        end_s = np.array([w.end_s for w in windows])
        return {**evidence, 'end_s': end_s, **score_sequence(calibration, self.spec.length_s, end_s, evidence)}
