"""The model artifact: one `.mcf` file with a JSON header and weights that load without pickle.

Layout: the 8-byte magic `MCFMODEL`, the header length (4 bytes, big-endian), the UTF-8 JSON
header, then the state dict as written by `torch.save` (read back with `weights_only=True`, which
refuses anything but tensors and plain containers). The header records the SHA-256 of the weight
bytes, so truncation and corruption are caught before any weight is used.
"""

import hashlib
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

from mcf_ros.errors import UserError

MAGIC = b'MCFMODEL'
FORMAT_VERSION = 6
# Format 5 lacks the joint_repeats channel's calibration; `mcf calibrate` reads it (the channel
# silent until the refit) and writes format 6.
REFITTABLE_FORMAT = 5
SILENT_SCALE = 1e30


class ArtifactError(UserError):
    """The artifact is missing, corrupt, truncated, of another format version, or does not fit the data."""


@dataclass
class Artifact:
    """A loaded model: its header (config, spec, normalisation, calibration, provenance) and weights."""

    header: dict
    state_dict: dict

    @property
    def model_id(self) -> str:
        """Return a short id: the first 12 hex digits of the weights' SHA-256.

        A recalibrated model (`mcf calibrate`: the same weights) hashes its recalibration record in too.
        """
        digest = self.header['weights_sha256']
        if 'recalibration' in self.header:
            record = json.dumps(self.header['recalibration'], sort_keys=True)
            digest = hashlib.sha256(f'{digest}{record}'.encode()).hexdigest()
        return digest[:12]


def header_to_rewrite(header: dict) -> dict:
    """Return a copy of a loaded header without what save_artifact adds (format version, weight hash)."""
    return {key: value for key, value in header.items() if key not in ('format_version', 'weights_sha256')}


def save_artifact(path: str | Path, header: dict, state_dict: dict) -> Artifact:
    """Write the artifact; the format version and weight hash are added to the header."""
    buffer = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in state_dict.items()}, buffer)
    weights = buffer.getvalue()
    header = {**header, 'format_version': FORMAT_VERSION, 'weights_sha256': hashlib.sha256(weights).hexdigest()}
    encoded = json.dumps(header, indent=1).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MAGIC + struct.pack('>I', len(encoded)) + encoded + weights)
    return Artifact(header, state_dict)


def load_artifact(path: str | Path, refit: bool = False) -> Artifact:
    """Read and verify an artifact; raise ArtifactError naming the problem.

    `refit` (for `mcf calibrate`) also reads REFITTABLE_FORMAT, its missing channel silent.
    """
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f'model not found: {path}')
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        raise ArtifactError(f'{path} is not an mcf model artifact (bad magic bytes)')
    if len(data) < len(MAGIC) + 4:
        raise ArtifactError(f'{path} is truncated (no header)')
    (length,) = struct.unpack('>I', data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if start + length > len(data):
        raise ArtifactError(f'{path} is truncated (header cut short)')
    try:
        header = json.loads(data[start : start + length])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f'{path} has a corrupt header: {err}') from None
    version = header.get('format_version')
    if version != FORMAT_VERSION and not (refit and version == REFITTABLE_FORMAT):
        hint = (
            f': refit it with `mcf calibrate --model {path} --bag NORMAL_BAG --out NEW.mcf`'
            if version == REFITTABLE_FORMAT
            else ''
        )
        raise ArtifactError(f'{path} is artifact format {version}; this mcf reads format {FORMAT_VERSION}{hint}')
    if version == REFITTABLE_FORMAT:
        calibration = header['calibration']
        calibration['centre']['joint_repeats'], calibration['scale']['joint_repeats'] = 0.0, SILENT_SCALE
    weights = data[start + length :]
    if hashlib.sha256(weights).hexdigest() != header.get('weights_sha256'):
        raise ArtifactError(f'{path} is truncated or corrupt (weights do not match their checksum)')
    try:
        state_dict = torch.load(io.BytesIO(weights), weights_only=True, map_location='cpu')
    except Exception as err:
        raise ArtifactError(f'{path} has unloadable weights: {err}') from None
    return Artifact(header, state_dict)
