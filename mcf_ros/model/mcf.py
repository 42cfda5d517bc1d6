"""The Multimodal Concept Fusion autoencoder for a camera and a joint-state stream.

Each modality has an encoder to a latent z_m of `latent_dim`. The concept-fusion block computes an
attention vector a = sigmoid(MLP([z_1..z_M])) and the fused concept
f = LayerNorm(a * mean_m(z_m) + (1 - a) * max_m(z_m) + sum_m P_m z_m), where missing modalities
are masked out of the mean, the max and the residual projections. Each modality has a decoder
from f. The concept score is mean(a): high when the shared (joint) information dominates.

Inputs: images float (B, 3, S, S) in [0, 1]; joints float (B, T, F) normalised; mask bool (B, 2)
with True where the modality is present.
"""

import itertools
from dataclasses import asdict, dataclass

import torch
from torch import nn

CAMERA, KINEMATICS = 0, 1
MODALITIES = ('camera', 'kinematics')
# 'mcf' is the product; the others are the baselines, run in the same harness: an early-fusion
# autoencoder (concatenated latents), and single-modality autoencoders.
FUSIONS = {'mcf': (True, True), 'concat': (True, True), 'camera': (True, False), 'kinematics': (False, True)}


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the model; stored in the artifact."""

    image_size: int = 64
    grid_points: int = 50
    joint_features: int = 18
    latent_dim: int = 64
    fusion: str = 'mcf'

    @property
    def uses(self) -> tuple[bool, bool]:
        """Return whether the model encodes and rebuilds (camera, kinematics)."""
        return FUSIONS[self.fusion]

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)


def _conv_stack(channels: list[int]) -> nn.Sequential:
    layers = []
    for c_in, c_out in itertools.pairwise(channels):
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.GELU()]
    return nn.Sequential(*layers)


class CameraEncoder(nn.Module):
    """Four stride-2 convolutions (S -> S/16) and a linear map to the latent."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.features = _conv_stack([3, 16, 32, 64, 64])
        self.project = nn.Linear(64 * (config.image_size // 16) ** 2, config.latent_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Map images (B, 3, S, S) to latents (B, D)."""
        return self.project(self.features(image).flatten(1))


class CameraDecoder(nn.Module):
    """A linear map to S/16 feature maps and four stride-2 transposed convolutions back to S."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.side = config.image_size // 16
        self.expand = nn.Linear(config.latent_dim, 64 * self.side**2)
        layers = []
        for c_in, c_out in ((64, 64), (64, 32), (32, 16)):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.GELU()]
        layers += [nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1), nn.Sigmoid()]
        self.features = nn.Sequential(*layers)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        """Map fused concepts (B, D) to images (B, 3, S, S) in [0, 1]."""
        return self.features(self.expand(fused).view(-1, 64, self.side, self.side))


class KinematicsEncoder(nn.Module):
    """Temporal convolutions over the joint grid, then a linear map to the latent."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(config.joint_features, 64, 5, stride=2, padding=2),
            nn.GELU(),
            nn.Conv1d(64, 64, 5, stride=2, padding=2),
            nn.GELU(),
        )
        steps = (config.grid_points + 3) // 4
        self.project = nn.Linear(64 * steps, config.latent_dim)

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        """Map joint grids (B, T, F) to latents (B, D)."""
        return self.project(self.features(joints.transpose(1, 2)).flatten(1))


class KinematicsDecoder(nn.Module):
    """An MLP from the fused concept to the whole joint grid."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.shape = (config.grid_points, config.joint_features)
        self.net = nn.Sequential(
            nn.Linear(config.latent_dim, 256), nn.GELU(), nn.Linear(256, config.grid_points * config.joint_features)
        )

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        """Map fused concepts (B, D) to joint grids (B, T, F)."""
        return self.net(fused).view(-1, *self.shape)


class ConceptFusion(nn.Module):
    """Attention-weighted blend of the mean and the max of the latents, plus residuals, then LayerNorm."""

    def __init__(self, latent_dim: int, modalities: int = 2):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(modalities * latent_dim, latent_dim), nn.GELU(), nn.Linear(latent_dim, latent_dim)
        )
        self.residual = nn.ModuleList(nn.Linear(latent_dim, latent_dim, bias=False) for _ in range(modalities))
        self.norm = nn.LayerNorm(latent_dim)

    def forward(self, latents: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse latents (B, M, D) under mask (B, M); return the fused concept (B, D) and attention a (B, D)."""
        present = mask[..., None].to(latents.dtype)
        masked = latents * present
        attention = torch.sigmoid(self.attention(masked.flatten(1)))
        mean = masked.sum(1) / present.sum(1).clamp(min=1.0)
        extreme = latents.masked_fill(~mask[..., None], float('-inf')).amax(1)
        extreme = torch.where(mask.any(1, keepdim=True), extreme, torch.zeros_like(extreme))
        residual = sum(project(masked[:, m]) for m, project in enumerate(self.residual))
        return self.norm(attention * mean + (1.0 - attention) * extreme + residual), attention


class EarlyFusion(nn.Module):
    """Baseline fusion: a linear map of the concatenated (masked) latents, then LayerNorm; no attention."""

    def __init__(self, latent_dim: int, modalities: int = 2, uses: tuple[bool, ...] = (True, True)):
        super().__init__()
        self.register_buffer('uses', torch.tensor(uses), persistent=False)  # follows the model to its device
        self.project = nn.Linear(modalities * latent_dim, latent_dim)
        self.norm = nn.LayerNorm(latent_dim)

    def forward(self, latents: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse latents (B, M, D); the 'attention' is a constant 0.5, as this block has none."""
        present = (mask & self.uses)[..., None].to(latents.dtype)
        fused = self.norm(self.project((latents * present).flatten(1)))
        return fused, torch.full_like(fused, 0.5)


class MCFAutoencoder(nn.Module):
    """Camera and kinematics encoders, concept fusion, and one decoder per modality.

    With `config.fusion` other than 'mcf' the fusion block is a baseline's (see FUSIONS).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.camera_encoder = CameraEncoder(config)
        self.kinematics_encoder = KinematicsEncoder(config)
        if config.fusion == 'mcf':
            self.fusion = ConceptFusion(config.latent_dim, len(MODALITIES))
        else:
            self.fusion = EarlyFusion(config.latent_dim, len(MODALITIES), config.uses)
        self.camera_decoder = CameraDecoder(config)
        self.kinematics_decoder = KinematicsDecoder(config)

    def forward(self, image: torch.Tensor, joints: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Return reconstructions, the attention vector, the latents and the fused concept."""
        latents = torch.stack([self.camera_encoder(image), self.kinematics_encoder(joints)], dim=1)
        fused, attention = self.fusion(latents, mask)
        return {
            'image': self.camera_decoder(fused),
            'joints': self.kinematics_decoder(fused),
            'attention': attention,
            'latents': latents,
            'fused': fused,
        }

    def alone(self, latents: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return what each sensor says alone: the image from the camera latent, the joints from the kinematics one.

        Modality dropout trains both, so on normal data each sensor alone rebuilds its own input. A
        sensor whose own view is abnormal (a fogged lens, a joint moving as it never does) keeps its
        residual here, while one that is normal but disagrees with the other sensor does not.
        """
        absent = torch.zeros_like(mask[:, CAMERA])
        camera_only = torch.stack([mask[:, CAMERA], absent], dim=1)
        kinematics_only = torch.stack([absent, mask[:, KINEMATICS]], dim=1)
        image = self.camera_decoder(self.fusion(latents, camera_only)[0])
        joints = self.kinematics_decoder(self.fusion(latents, kinematics_only)[0])
        return image, joints
