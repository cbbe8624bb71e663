"""Z-Image and Lumina 2 (hooks/z_image.py) beyond what every family gets
(test_identical_latents, test_paper_equations, test_every_family, test_coexistence):
Z-Image-Turbo's own settings, the Qwen 3 and Gemma 2 text encoders, and Omni
reference images."""
import inspect

import pytest
import torch

from concept_attention.nodes.encode import ConceptEncode
from harness.checks import check_words_own_tokens
from harness.sampling import Z_IMAGE

pytestmark = pytest.mark.model


def test_turbo_settings_8_steps_at_cfg_1_give_the_same_image(z_image):
    latent, capture = Z_IMAGE.run_capture(z_image, Z_IMAGE.concepts(), cfg=1.0, steps=8, sampler="res_multistep")
    assert torch.equal(latent, Z_IMAGE.run_ksampler(z_image, cfg=1.0, steps=8, sampler="res_multistep"))
    assert not capture.error and len(capture.steps) == 8 and capture.maps().shape == (1, 3, 8, 6)


def test_omni_reference_images_stop_the_capture_with_the_reason_and_keep_the_image(z_image):
    if "ref_latents" not in inspect.signature(z_image.model.diffusion_model._forward).parameters:
        pytest.skip("this ComfyUI's Z-Image takes no reference images (Omni); ComfyUI 0.3.75 predates them")
    reference = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    editing = Z_IMAGE.conditioning(1, reference_latents=[reference])
    latent, capture = Z_IMAGE.run_capture(z_image, Z_IMAGE.concepts(), steps=2, positive=editing)
    assert torch.equal(latent, Z_IMAGE.run_ksampler(z_image, steps=2, positive=editing))
    assert "Z-Image reference images (Omni editing) are not supported yet" in capture.error


def test_encode_takes_the_words_own_tokens_inside_the_template(z_image_clip, z_image):
    concepts, encoded_with = ConceptEncode.execute(z_image_clip, "cat, dragonfly", pooling="mean").args
    assert concepts.family == "Z-Image" and encoded_with == "Z-Image text encoder (Qwen 3 4B): the word's own tokens"
    # "<|im_start|>user\n" + the word + "<|im_end|>\n<|im_start|>assistant\n"
    check_words_own_tokens(z_image_clip, concepts, start=3, trailing=5)
    cat, dog = (z_image_clip.encode_from_tokens(z_image_clip.tokenize(word)) for word in ("cat", "dog"))
    assert torch.equal(cat[0, 0], dog[0, 0])             # a causal model: the template's start is the same for all
    latent, capture = Z_IMAGE.run_capture(z_image, concepts, steps=2)
    assert not capture.error and capture.maps().shape == (1, 2, 8, 6)


def test_lumina2_encode_takes_the_words_own_pieces_after_the_start_token(lumina2_clip, lumina2):
    """Gemma 2's template: a start token, then the word's pieces (counted here by the
    SentencePiece model itself), no end token."""
    concepts, encoded_with = ConceptEncode.execute(lumina2_clip, "cat, dragonfly", pooling="mean").args
    first, _ = ConceptEncode.execute(lumina2_clip, "cat, dragonfly", pooling="first_token").args
    assert concepts.family == "Z-Image" and encoded_with == "Lumina 2 text encoder (Gemma 2 2B): the word's own tokens"
    pieces = lumina2_clip.tokenizer.gemma2_2b.tokenizer.tokenizer
    for word, mean, first_piece in zip(concepts.words, concepts.embeddings, first.embeddings):
        cond = lumina2_clip.encode_from_tokens(lumina2_clip.tokenize(word))
        assert cond.shape[1] == 1 + len(pieces.encode(word, add_bos=False)), (word, cond.shape)
        torch.testing.assert_close(mean, cond[0, 1:].float().mean(dim=0))
        torch.testing.assert_close(first_piece, cond[0, 1].float())
    latent, capture = Z_IMAGE.run_capture(lumina2, concepts, steps=2)
    assert not capture.error and capture.maps().shape == (1, 2, 8, 6)
