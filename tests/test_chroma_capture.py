"""Chroma (hooks/chroma.py) beyond what every family gets (test_identical_latents,
test_paper_equations, test_every_family, test_coexistence): blocks the model skips,
the T5 text encoder, and Chroma Radiance's pixels."""
import contextlib

import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from harness.checks import check_words_own_tokens
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import CHROMA, CHROMA_RADIANCE

pytestmark = pytest.mark.model


@contextlib.contextmanager
def skipping(model, blocks):
    """The model's skip_mmdit (an attribute of the diffusion model, set by other nodes) for a while."""
    dm = model.model.diffusion_model
    before, dm.skip_mmdit = dm.skip_mmdit, list(blocks)
    try:
        yield
    finally:
        dm.skip_mmdit = before


def test_a_skipped_block_gives_no_scores_and_the_others_still_count(chroma):
    concepts = CHROMA.concepts()
    with skipping(chroma, [1]):
        with recorded_inputs(chroma) as calls:
            latent, capture = CHROMA.run_capture(chroma, concepts, cfg=3.0, steps=2, layers="all", keep=KEEP_ALL)
        assert torch.equal(latent, CHROMA.run_ksampler(chroma, cfg=3.0, steps=2))
        assert not capture.error and capture.layers == (0, 2)
        output_space, _ = expected_scores(BY_NAME["Chroma"], chroma, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"], output_space, atol=1e-4, rtol=1e-4)
    assert capture.maps().shape == (1, 3, 8, 6)


def test_when_every_chosen_block_is_skipped_the_maps_say_so(chroma):
    with skipping(chroma, [2]):
        latent, capture = CHROMA.run_capture(chroma, CHROMA.concepts(), steps=2, layers="2")
        assert torch.equal(latent, CHROMA.run_ksampler(chroma, steps=2))
    assert "none of the chosen layers [2] ran: the model skipped their blocks; choose other layers" in capture.error


def test_encode_with_the_t5_text_encoder(chroma_clip, chroma):
    concepts, encoded_with = ConceptEncode.execute(chroma_clip, "cat, dragonfly", pooling="mean").args
    assert concepts.family == "Chroma" and encoded_with == "Chroma text encoder (T5-XXL): the T5 tokens"
    check_words_own_tokens(chroma_clip, concepts, start=0, trailing=1, add_special_tokens=False)   # then </s>, unpadded
    latent, capture = CHROMA.run_capture(chroma, concepts, steps=2)
    assert not capture.error and capture.maps().shape == (1, 2, 8, 6)


def test_radiance_maps_cover_the_pixels_in_16_pixel_patches(chroma_radiance, tiny_vae):
    """Pixel space: a 128 x 96 image is 8 x 6 patches of 16 pixels, and maps of the
    image's own size, from the sampler and from Encode Image with the pixel-space VAE."""
    latent, capture = CHROMA_RADIANCE.run_capture(chroma_radiance, CHROMA_RADIANCE.concepts(), steps=2)
    assert latent.shape == (1, 3, 128, 96) and not capture.error
    assert capture.grid[-2:] == (8, 6) and capture.image_size == (128, 96)
    image = torch.rand(1, 96, 64, 3, generator=torch.Generator().manual_seed(1))
    read = ConceptAttentionEncodeImage.execute(chroma_radiance, tiny_vae("pixel_space"), image, CHROMA_RADIANCE.concepts(),
                                               0.5, 1, 0, "default", positive=CHROMA_RADIANCE.conditioning(1)).args[0]
    assert not read.error and read.grid[-2:] == (6, 4) and read.image_size == (96, 64)
