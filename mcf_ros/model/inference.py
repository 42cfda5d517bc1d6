"""A loaded artifact, ready to score windows on the CPU or a GPU."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mcf_ros.data.windows import CHANNELS, Window, WindowSpec
from mcf_ros.model.artifact import Artifact, ArtifactError
from mcf_ros.model.cycle import window_path
from mcf_ros.model.mcf import CAMERA, KINEMATICS, MCFAutoencoder, ModelConfig
from mcf_ros.model.scoring import Calibration, StreamScorer, local_share, score_sequence

BATCH = 256
GRAPH_BATCH = 16  # on a GPU, batches up to this many windows (the monitor's: one per cell) replay a CUDA graph
# What Normalisation holds besides mean and std, fitted after training (Detector.fit_residual_scale).
RESIDUAL_LEVELS = ('residual_scale', 'alone_residual_scale', 'camera_cell_scale')


def pick_device(requested: str) -> torch.device:
    """Return the torch device for 'auto' (CUDA when present), 'cpu' or 'cuda'."""
    if requested == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if requested == 'cuda' and not torch.cuda.is_available():
        raise ArtifactError('--device cuda was asked for, but torch sees no CUDA device')
    return torch.device(requested)


@dataclass
class Normalisation:
    """Per-feature statistics of the joint grid, in the spec's channel-major order, and the normal residual levels.

    `mean` and `std` normalise the inputs. Set after training, on held-out windows:
    `residual_scale` is each feature's normal 90th percentile of the model's mean squared residual,
    `alone_residual_scale` the same for the joints rebuilt from the kinematics alone, and
    `camera_cell_scale` each image cell's normal 99th percentile of the camera's own residual.
    """

    mean: np.ndarray
    std: np.ndarray
    residual_scale: np.ndarray | None = None
    alone_residual_scale: np.ndarray | None = None
    camera_cell_scale: np.ndarray | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        values = {'mean': self.mean.tolist(), 'std': self.std.tolist()}
        for name in RESIDUAL_LEVELS:
            if getattr(self, name) is not None:
                values[name] = getattr(self, name).tolist()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> 'Normalisation':
        """Build from `to_dict` output."""
        scales = {name: np.array(values[name], np.float32) for name in RESIDUAL_LEVELS if name in values}
        return cls(np.array(values['mean'], np.float32), np.array(values['std'], np.float32), **scales)


def window_tensors(windows: list[Window], spec: WindowSpec, normalisation: Normalisation):
    """Stack windows into model inputs: images (N, 3, S, S) in [0, 1], normalised joints (N, T, F), mask (N, 2)."""
    images, joints, mask = empty_inputs(len(windows), spec)
    fill_inputs(windows, normalisation, images.numpy(), joints.numpy(), mask.numpy())
    return pixels_to_unit(images), joints, mask


def empty_inputs(count: int, spec: WindowSpec, pin_memory: bool = False) -> tuple[torch.Tensor, ...]:
    """Return zeroed host buffers for `count` windows: uint8 images (N, S, S, 3), joints (N, T, F), mask (N, 2)."""
    size = spec.image_size
    return (
        torch.zeros((count, size, size, 3), dtype=torch.uint8, pin_memory=pin_memory),
        torch.zeros((count, spec.grid_points, spec.joint_features), pin_memory=pin_memory),
        torch.zeros((count, 2), dtype=torch.bool, pin_memory=pin_memory),
    )


def fill_inputs(windows: list[Window], normalisation: Normalisation, images, joints, mask) -> None:
    """Write each window's frame, normalised joints and modality mask into zeroed arrays."""
    for index, window in enumerate(windows):
        if window.image is not None:
            images[index], mask[index, CAMERA] = window.image, True
        if window.joints is not None:
            joints[index], mask[index, KINEMATICS] = (window.joints - normalisation.mean) / normalisation.std, True


def pixels_to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, S, S, 3) -> float images (N, 3, S, S) in [0, 1], as the model takes them."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


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


def channel_floored(scale: np.ndarray, std: np.ndarray, features: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Raise each joint feature's residual scale to the median of its channel's joints, in physical units.

    `scale` holds mean squared residuals of normalised features; `features` gives each one's
    (channel, joint), as WindowSpec.features does. A joint that the model rebuilds far better than the others
    would otherwise turn any pose the recording never reached into a fault: a part placed 3 sigma
    off moved the elbow's residual to 20-30 times its own scale, though it was normal for the arm.
    """
    rms = np.sqrt(scale) * std
    channels = np.array([channel for channel, _ in features])
    floor = np.empty_like(rms)
    for channel in np.unique(channels):
        floor[channels == channel] = np.median(rms[channels == channel])
    return np.maximum(scale, (floor / std) ** 2)


# The camera's own residual is also kept per cell of this many pixels of the model's input.
CELL_PX = 8


def packed_evidence(model: MCFAutoencoder, image: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor, uses):
    """Run the model and return its evidence as one (B, D + 3 + 2F + C) tensor, so that one copy brings it to the host.

    Columns: the attention vector a (D), the camera error, the latent disagreement, each joint
    feature's residual (F), then what each sensor says alone (MCFAutoencoder.alone): the camera's
    error, each joint feature's residual (F), and the camera's residual per cell of CELL_PX pixels
    (C). NaN where the window lacks a modality or the model does not use it.
    """
    out = model(image, joints, mask)
    mask = mask & uses
    image_alone, joints_alone = model.alone(out['latents'], mask)
    camera_error = ((out['image'] - image) ** 2).mean(dim=(1, 2, 3))
    camera_alone = ((image_alone - image) ** 2).mean(dim=1, keepdim=True)
    cells = torch.nn.functional.avg_pool2d(camera_alone, CELL_PX).flatten(1)
    has_camera, has_joints = mask[:, CAMERA, None], mask[:, KINEMATICS, None]
    return torch.cat(
        [
            out['attention'],
            torch.where(has_camera, camera_error[:, None], torch.nan),
            torch.where(mask.all(dim=1), latent_disagreement(out['latents']), torch.nan)[:, None],
            torch.where(has_joints, joint_residuals(out, joints), torch.nan),
            torch.where(has_camera, camera_alone.mean(dim=(1, 2, 3))[:, None], torch.nan),
            torch.where(has_joints, ((joints_alone - joints) ** 2).mean(dim=1), torch.nan),
            torch.where(has_camera, cells, torch.nan),
        ],
        dim=1,
    )


class EvidenceModel(torch.nn.Module):
    """The model and packed_evidence() as one module, to trace or capture as a whole."""

    def __init__(self, model: MCFAutoencoder, uses: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer('uses', uses, persistent=False)

    def forward(self, image: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return packed_evidence() of the inputs."""
        return packed_evidence(self.model, image, joints, mask, self.uses)


class _CapturedEvidence:
    """packed_evidence() for `batch` windows, captured as a CUDA graph: a replay launches the whole network at once.

    The windows go up as uint8 pixels from pinned host buffers and are turned into the model's
    input inside the graph. Each call returns the graph's output buffer, which the next overwrites.
    """

    def __init__(self, evidence_model: EvidenceModel, spec: WindowSpec, normalisation: Normalisation, batch: int):
        self._normalisation = normalisation
        self._host = empty_inputs(batch, spec, pin_memory=True)
        self._arrays = [tensor.numpy() for tensor in self._host]
        self._inputs = [tensor.to(evidence_model.uses.device) for tensor in self._host]

        def evidence() -> torch.Tensor:
            image, joints, mask = self._inputs
            return evidence_model(pixels_to_unit(image), joints, mask)

        warmup = torch.cuda.Stream()  # as torch.cuda.graph asks: warm up on a side stream before capturing
        warmup.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(warmup):
            for _ in range(3):
                evidence()
        torch.cuda.current_stream().wait_stream(warmup)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._output = evidence()

    def __call__(self, windows: list[Window]) -> torch.Tensor:
        for array in self._arrays:
            array.fill(0)
        fill_inputs(windows, self._normalisation, *self._arrays)
        for device_buffer, host_buffer in zip(self._inputs, self._host, strict=True):
            device_buffer.copy_(host_buffer, non_blocking=True)
        self._graph.replay()
        return self._output


class Detector:
    """Scores windows with a trained MCF model and its calibration."""

    def __init__(self, artifact: Artifact, device: str = 'auto'):
        header = artifact.header
        self.artifact = artifact
        self.spec = WindowSpec.from_dict(header['window'])
        self.normalisation = Normalisation.from_dict(header['normalisation'])
        self.calibration = Calibration(**header['calibration']) if header.get('calibration') else None
        self.model = MCFAutoencoder(ModelConfig(**header['model']))
        try:
            self.model.load_state_dict(artifact.state_dict)
        except RuntimeError as err:
            raise ArtifactError(f'weights do not fit the model config in the header: {err}') from None
        self.model.eval()
        self.to(device)

    @property
    def evidence_key(self) -> tuple:
        """Return what this detector's evidence depends on; detectors with equal keys give a window the same evidence.

        The weights, the input and evidence scales, the window and model shape, the device and the backend.
        """
        shape = [self.normalisation.to_dict(), self.spec.to_dict(), self.model.config.to_dict()]
        digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:12]
        return (self.artifact.model_id, digest, str(self.device), self.backend)

    def to(self, device: str) -> 'Detector':
        """Move the model to 'auto', 'cpu' or 'cuda' (dropping a compiled forward); return self."""
        self.device = pick_device(device)
        if self.device.type == 'cuda':
            # The calibration was fitted in full fp32; TF32 convolutions move the attention by up to 0.01.
            torch.backends.cudnn.allow_tf32 = False
        self.model.to(self.device)
        self._evidence = EvidenceModel(self.model, torch.tensor(self.model.config.uses, device=self.device)).eval()
        self._forward = self._evidence
        self._graphs: dict[int, _CapturedEvidence] | None = None  # per batch size, once compiled on a GPU
        self.backend = 'torch'
        return self

    @property
    def evidence_model(self) -> EvidenceModel:
        """Return the model and its evidence as one module (what is traced, captured or exported to ONNX)."""
        return self._evidence

    @torch.inference_mode()
    def compile(self, onnx: Path | None = None, threads: int | None = None) -> None:
        """Score through a compiled form of the model: onnxruntime or TorchScript on the CPU, a CUDA graph on a GPU.

        On the CPU, an ONNX file of this model (`mcf export --onnx`, at `onnx`) runs in onnxruntime
        when it is installed; otherwise, and on a GPU, the model is traced into a frozen TorchScript
        graph, which runs in C++ with fewer Python calls per window. The model has no data-dependent
        branches, so the trace holds for any batch size and modality mask. On the CPU the traced
        weights are stored channels-last, as the images already are. On a GPU, the model and its
        evidence for a batch of up to GRAPH_BATCH windows (as the monitor scores: one window per
        cell) are captured as a CUDA graph, one per batch size (one window now, the others on first
        use), and replayed in one launch. `backend` says which runs, and why. onnxruntime takes
        `threads` (default: torch's).
        """
        size, spec = self.spec.image_size, self.spec
        if self.device.type == 'cpu':
            from mcf_ros.model.onnx_backend import cpu_backend

            onnx_evidence, self.backend = cpu_backend(onnx, self.artifact.model_id, threads or torch.get_num_threads())
            if onnx_evidence is not None:
                self._forward = onnx_evidence
                return
            self.model.to(memory_format=torch.channels_last)  # the decoder's transposed convolutions: 15 % faster
        else:
            self.backend = f'torch (CUDA graphs for batches of up to {GRAPH_BATCH} windows)'
        example = (
            torch.zeros(1, 3, size, size, device=self.device),
            torch.zeros(1, spec.grid_points, spec.joint_features, device=self.device),
            torch.ones(1, 2, dtype=torch.bool, device=self.device),
        )
        self._forward = torch.jit.freeze(torch.jit.trace(self._evidence, example, strict=False, check_trace=False))
        if self.device.type == 'cuda':
            self._graphs = {1: _CapturedEvidence(self._evidence, self.spec, self.normalisation, 1)}

    def _packed(self, windows: list[Window]) -> np.ndarray:
        """Return packed_evidence() for `windows`, computed in batches on the model's device."""
        if self._graphs is not None and 0 < len(windows) <= GRAPH_BATCH:
            graph = self._graphs.get(len(windows))
            if graph is None:
                graph = _CapturedEvidence(self._evidence, self.spec, self.normalisation, len(windows))
                self._graphs[len(windows)] = graph
            return graph(windows).cpu().numpy()
        parts = []
        for start in range(0, len(windows), BATCH):
            tensors = window_tensors(windows[start : start + BATCH], self.spec, self.normalisation)
            if self.device.type == 'cuda':
                tensors = (t.pin_memory() for t in tensors)
            inputs = (t.to(self.device, non_blocking=True) for t in tensors)
            parts.append(self._forward(*inputs).cpu().numpy())
        return np.concatenate(parts)

    @torch.inference_mode()
    def _raw_evidence(self, windows: list[Window]) -> dict[str, np.ndarray]:
        """Return the model's evidence with the joint residuals (N, F) and camera cell residuals (N, C) unscaled.

        A modality the model does not use or the window lacks gives NaN.
        """
        packed, size = self._packed(windows), self.model.config.latent_dim
        features = self.spec.joint_features
        columns = np.cumsum([size, 1, 1, features, 1, features])
        attention, camera, disagreement, joint, camera_alone, joint_alone, cells = np.split(packed, columns, axis=1)
        evidence = {
            'attention': attention,
            'camera_error': camera[:, 0],
            'latent_disagreement': disagreement[:, 0],
            'joint_residuals': joint,
            'camera_alone': camera_alone[:, 0],
            'joint_alone_residuals': joint_alone,
            'camera_cells': cells,
        }
        evidence['frame_gap'] = np.array([w.frame_gap_s for w in windows])
        evidence['joint_gap'] = np.array([w.joint_gap for w in windows])
        evidence['joint_jerk'] = np.array([w.joint_jerk for w in windows])
        evidence['joint_repeats'] = np.array([w.joint_repeats for w in windows])
        paths = joint_paths(windows, len(self.spec.joint_names))
        evidence['joint_path'] = paths if self.model.config.uses[KINEMATICS] else np.full_like(paths, np.nan)
        return evidence

    def _scaled(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Turn residuals into evidence relative to their normal levels (see the scoring module).

        kinematics_error: the largest joint feature residual relative to its scale; kinematics_alone
        likewise for the joints rebuilt alone, split into its largest position or velocity ratio
        (joint_motion_alone) and its second-largest effort ratio (joint_effort_alone_second: effort
        off on at least two joints); camera_locality: how much of the camera's own excess residual
        lies in a small part of the image.
        """
        unscaled = ('joint_residuals', 'joint_alone_residuals', 'camera_cells')
        evidence = {key: value for key, value in raw.items() if key not in unscaled}
        normalisation = self.normalisation
        evidence['kinematics_error'] = (raw['joint_residuals'] / normalisation.residual_scale).max(axis=1)
        alone = raw['joint_alone_residuals'] / normalisation.alone_residual_scale
        channels = np.array([channel for channel, _ in self.spec.features])
        effort = channels == CHANNELS.index('effort')
        evidence['kinematics_alone'] = alone.max(axis=1)
        evidence['joint_motion_alone'] = alone[:, ~effort].max(axis=1)
        efforts = np.sort(alone[:, effort], axis=1)
        evidence['joint_effort_alone_second'] = efforts[:, -2] if efforts.shape[1] >= 2 else np.full(len(alone), np.nan)
        evidence['camera_locality'] = local_share(raw['camera_cells'] - normalisation.camera_cell_scale)
        return evidence

    def fit_residual_scale(self, windows: list[Window]) -> dict[str, np.ndarray]:
        """Set the normal residual levels from normal `windows` and return their evidence, in one pass.

        Each joint feature's scale, fused and alone, is its 90th percentile of mean squared residual
        on the windows, raised to its channel's floor (see channel_floored); each camera cell's is
        its 99th percentile of the camera's own residual.
        """
        raw = self._raw_evidence(windows)
        normalisation = self.normalisation
        for name, residuals in (
            ('residual_scale', raw['joint_residuals']),
            ('alone_residual_scale', raw['joint_alone_residuals']),
        ):
            residuals = residuals[np.isfinite(residuals).all(axis=1)]
            # A model that does not use the joints (the camera-only baseline) has no residual to scale.
            scale = np.quantile(residuals, 0.9, axis=0) if len(residuals) else np.ones(residuals.shape[1])
            scale = channel_floored(scale, normalisation.std, self.spec.features)
            setattr(normalisation, name, np.maximum(scale, 1e-6).astype(np.float32))
        cells = raw['camera_cells'][np.isfinite(raw['camera_cells']).all(axis=1)]
        scale = np.quantile(cells, 0.99, axis=0) if len(cells) else np.ones(cells.shape[1])
        normalisation.camera_cell_scale = np.maximum(scale, 1e-9).astype(np.float32)
        return self._scaled(raw)

    def evidence(self, windows: list[Window]) -> dict[str, np.ndarray]:
        """Return the attention vectors (N, D) and the raw evidence that needs no calibration."""
        missing = [name for name in RESIDUAL_LEVELS if getattr(self.normalisation, name) is None]
        if missing:
            raise ArtifactError(
                f'the artifact lacks {", ".join(missing)}; it was not written by a finished `mcf train`'
            )
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
