"""Tiny Flux checkpoints and text encoder load through ComfyUI's own code paths.

The models come from tests/conftest.py fixtures.
"""

import pytest
import torch

from harness import tiny_models

pytestmark = pytest.mark.model


def test_flux1_dev_loads_as_flux(flux_dev):
    dm = flux_dev.model.diffusion_model
    assert isinstance(dm.guidance_in, torch.nn.Module) and not isinstance(dm.guidance_in, torch.nn.Identity)
    assert len(dm.double_blocks) == 3 and len(dm.single_blocks) == 2
    assert next(dm.parameters()).dtype == torch.float32


def test_flux1_schnell_loads_as_flux_schnell(flux_schnell):
    assert isinstance(flux_schnell.model.diffusion_model.guidance_in, torch.nn.Identity)


def test_flux1_forward_is_finite(flux_dev):
    model = flux_dev
    x = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(0))
    ctx = torch.randn(1, 256, tiny_models.TINY_TEXT_DIM)
    y = torch.randn(1, tiny_models.TINY_TEXT_DIM)
    out = model.model.apply_model(x, torch.tensor([0.5]), c_crossattn=ctx, y=y, guidance=torch.tensor([3.5]))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_flux_clip_encodes(flux_clip):
    cond, pooled = flux_clip.encode_from_tokens(flux_clip.tokenize("a red dragon"), return_pooled=True)
    assert cond.ndim == 3 and cond.shape[0] == 1 and cond.shape[1] >= 256 and cond.shape[2] == tiny_models.TINY_TEXT_DIM
    assert pooled.shape == (1, tiny_models.TINY_TEXT_DIM)
    assert torch.isfinite(cond).all() and torch.isfinite(pooled).all()


def test_flux_clip_word_ids(flux_clip):
    tokens = flux_clip.tokenize("dragon", return_word_ids=True)
    first = tokens["t5xxl"][0][0]
    assert len(first) == 3 and first[2] == 1  # (token_id, weight, word_id)
    assert tokens["t5xxl"][0][1] == (1, 1.0, 0)  # T5 end token, no word


def test_flux_clip_distinguishes_words(flux_clip):
    a = flux_clip.encode_from_tokens(flux_clip.tokenize("dragon"))
    b = flux_clip.encode_from_tokens(flux_clip.tokenize("castle"))
    assert not torch.allclose(a[0, 0], b[0, 0])


def test_flux_clip_is_deterministic(flux_clip):
    again = tiny_models.build_flux_clip()
    tokens = flux_clip.tokenize("dragon")
    assert torch.equal(flux_clip.encode_from_tokens(tokens), again.encode_from_tokens(tokens))
