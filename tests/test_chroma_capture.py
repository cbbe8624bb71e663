"""Chroma (hooks/chroma.py) beyond what every family gets (test_identical_latents,
test_paper_equations, test_every_family, test_coexistence): blocks the model skips,
and the T5 text encoder."""
import contextlib

import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.nodes.encode import ConceptEncode
from harness.checks import check_words_own_tokens
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import CHROMA

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
