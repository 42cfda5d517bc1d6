"""The MCF autoencoder: shapes, masks, and the concept-fusion formula against a hand computation."""

import torch

from mcf_ros.model.mcf import ConceptFusion, MCFAutoencoder, ModelConfig

CONFIG = ModelConfig(image_size=32, grid_points=20, joint_features=18, latent_dim=8)


def inputs(batch=3):
    torch.manual_seed(0)
    return torch.rand(batch, 3, 32, 32), torch.randn(batch, 20, 18), torch.ones(batch, 2, dtype=torch.bool)


def test_outputs_have_the_shapes_of_the_inputs():
    image, joints, mask = inputs()
    out = MCFAutoencoder(CONFIG)(image, joints, mask)
    assert out['image'].shape == image.shape
    assert out['joints'].shape == joints.shape
    assert out['attention'].shape == (3, 8) and out['latents'].shape == (3, 2, 8) and out['fused'].shape == (3, 8)
    assert torch.all((out['attention'] > 0) & (out['attention'] < 1))


def test_fusion_matches_the_formula_computed_by_hand():
    torch.manual_seed(1)
    fusion = ConceptFusion(4, 2)
    latents = torch.randn(5, 2, 4)
    mask = torch.ones(5, 2, dtype=torch.bool)
    fused, attention = fusion(latents, mask)
    a = torch.sigmoid(fusion.attention(latents.flatten(1)))
    extreme = latents.max(1).values
    pre = (
        a * latents.mean(1) + (1 - a) * extreme + fusion.residual[0](latents[:, 0]) + fusion.residual[1](latents[:, 1])
    )
    expected = torch.nn.functional.layer_norm(pre, (4,), fusion.norm.weight, fusion.norm.bias)
    assert torch.allclose(attention, a)
    assert torch.allclose(fused, expected, atol=1e-6)


def test_a_masked_modality_has_no_influence_on_the_output():
    model = MCFAutoencoder(CONFIG).eval()
    image, joints, mask = inputs()
    mask[:, 0] = False
    first = model(image, joints, mask)
    second = model(torch.rand_like(image), joints, mask)
    assert torch.allclose(first['fused'], second['fused'])
    assert torch.allclose(first['joints'], second['joints'])


def test_with_every_modality_masked_the_output_is_still_finite():
    image, joints, mask = inputs()
    out = MCFAutoencoder(CONFIG)(image, joints, torch.zeros_like(mask))
    assert all(torch.isfinite(value).all() for value in out.values())
