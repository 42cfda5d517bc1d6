"""The model's evidence as an ONNX file (`mcf export --onnx`), and onnxruntime as a CPU backend.

The file holds what `inference.EvidenceModel` computes: the network and `packed_evidence`, for any
batch size and modality mask. Inputs: `image` (N, 3, S, S) float32 in [0, 1], `joints`
(N, T, F) float32 normalised with the artifact's mean and std, `mask` (N, 2) bool (camera,
kinematics present). Output: `evidence` (N, D + 3 + 2F + C), the packed columns. The metadata
names the model it came from (`mcf_model_id`), so a file left beside a retrained model is not used.
"""

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from mcf_ros.errors import UserError
from mcf_ros.model.artifact import Artifact

INPUTS = ('image', 'joints', 'mask')
OUTPUT = 'evidence'
MODEL_ID_KEY = 'mcf_model_id'


def onnx_beside(model: str | Path) -> Path:
    """Return where `mcf export --onnx` puts the ONNX file of a model: beside it, with the suffix .onnx."""
    return Path(model).with_suffix('.onnx')


def export_onnx(artifact: Artifact, out: str | Path) -> Path:
    """Export a model artifact's evidence computation to ONNX at `out`; return the path."""
    import onnx

    from mcf_ros.model.inference import Detector

    detector = Detector(artifact, 'cpu')
    spec = detector.spec
    example = (
        torch.rand(2, 3, spec.image_size, spec.image_size),
        torch.zeros(2, spec.grid_points, spec.joint_features),
        torch.ones(2, 2, dtype=torch.bool),
    )
    batch = {0: torch.export.Dim.DYNAMIC}
    logging.getLogger('torch.onnx').setLevel(logging.ERROR)  # ops of packages we do not use (torchvision)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)  # deprecations inside the exporter, not ours to fix
        program = torch.onnx.export(
            detector.evidence_model, example, input_names=list(INPUTS), output_names=[OUTPUT],
            dynamic_shapes=(batch, batch, batch), dynamo=True, verbose=False,
        )  # fmt: skip
    proto = program.model_proto
    onnx.helper.set_model_props(
        proto, {MODEL_ID_KEY: artifact.model_id, 'mcf_columns': evidence_columns(artifact), 'mcf_inputs': __doc__}
    )
    out = Path(out)
    onnx.save(proto, out)
    return out


def evidence_columns(artifact: Artifact) -> str:
    """Describe the packed output columns of this model, in order."""
    config = artifact.header['model']
    features = config['joint_features']
    return (
        f'attention[{config["latent_dim"]}], camera_error, latent_disagreement, joint_residuals[{features}], '
        f'camera_alone, joint_alone_residuals[{features}], camera_cells[rest]'
    )


class OnnxEvidence:
    """packed_evidence() through onnxruntime on the CPU: a callable like the traced model."""

    def __init__(self, path: Path, model_id: str, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        found = self._session.get_modelmeta().custom_metadata_map.get(MODEL_ID_KEY)
        if found != model_id:
            raise UserError(f'{path} was exported from model {found}, not {model_id}: run `mcf export --onnx` again')

    def __call__(self, image: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Return the packed evidence of a batch, as EvidenceModel does."""
        feeds = {name: np.ascontiguousarray(t.numpy()) for name, t in zip(INPUTS, (image, joints, mask), strict=True)}
        return torch.from_numpy(self._session.run([OUTPUT], feeds)[0])


def cpu_backend(path: Path | None, model_id: str, threads: int) -> tuple[OnnxEvidence | None, str]:
    """Return onnxruntime's evidence for `path` and 'onnxruntime', or None and why torch runs instead."""
    if path is None or not path.is_file():
        return None, 'torch (no exported ONNX beside the model)'
    try:
        return OnnxEvidence(path, model_id, threads), f'onnxruntime ({path.name})'
    except ImportError:
        return None, f'torch ({path.name} is there, but onnxruntime is not installed)'
    except UserError as err:
        return None, f'torch ({err})'
