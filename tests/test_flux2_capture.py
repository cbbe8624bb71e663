"""ConceptAttention on tiny Flux 2 checkpoints (ComfyUI's Flux class with the Flux 2
parameters, loaded by its own loader): dev-like (guidance embedding) and Klein-like
(none). Identical latents, maps that equal the paper's equations with the text
padded as ComfyUI pads it, one constant concept position, reference latents, and
ConceptEncode with a tiny Klein text encoder (ComfyUI's Qwen 3 class, the real
tokenizer and chat template). Flux 2 dev's Mistral tokenizer data does not ship
with ComfyUI, so the dev model is tested with conditioning built directly.
(Identical latents for every family: test_identical_latents.py.)"""
import pytest
import torch

import comfy.patcher_extension
import tiny_models
from concept_attention.data import KEEP_ALL, ConceptSet
from concept_attention.errors import NodeInputError
from concept_attention.hooks import flux2
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from sampling import FLUX1, FLUX2
from test_flux_capture import recording_model, reference_scores
from test_nodes import check_no_patch_remains

MODELS = ["flux2_dev", "flux2_klein"]
WIDTH = tiny_models.FLUX2_TEXT_DIM
DIFFUSION_MODEL = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
conditioning, run_capture, run_ksampler = FLUX2.conditioning, FLUX2.run_capture, FLUX2.run_ksampler


@pytest.fixture(scope="module")
def concepts():
    return FLUX2.concepts()


@pytest.mark.parametrize("which", MODELS)
@pytest.mark.parametrize("cfg, batch", [(1.0, 1), (3.0, 2)])
def test_maps_equal_the_paper_equations(request, concepts, which, cfg, batch):
    model = request.getfixturevalue(which)
    calls = []
    _, capture = run_capture(recording_model(model, calls), concepts, cfg=cfg, batch=batch, steps=2, layers="all",
                             size=(8, 6), keep=KEEP_ALL, cross_attention=True)
    # ComfyUI left-pads the 40-token prompt to 512; a bare vector sits where a one-token word would, at the end.
    assert {call["context"].shape[1] for call in calls} == {flux2.TEXT_TOKENS}
    expected = reference_scores(model, calls, concepts, (0, 1, 2), position=flux2.TEXT_TOKENS - 1)
    assert expected[0].shape[0] == len(capture.steps) == 2
    torch.testing.assert_close(capture.scores["concept_attention"], expected[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(capture.scores["cross_attention"], expected[1], atol=1e-4, rtol=1e-4)
    assert capture.maps().shape == (batch, 3, 8, 6) and capture.image_size == (128, 96)


def test_encode_image_equals_the_paper_equations(flux2_klein, concepts, tiny_vae):
    calls = []
    image = torch.rand(1, 100, 70, 3, generator=torch.Generator().manual_seed(0))
    capture = ConceptAttentionEncodeImage.execute(recording_model(flux2_klein, calls), tiny_vae("taef2"), image, concepts,
                                                  0.5, 1, 0, "all", KEEP_ALL, positive=conditioning(1)).args[0]
    assert calls[0]["x"].shape == (1, 128, 6, 4)       # 100x70 px -> 96x64 px -> 1/16
    assert capture.grid == (1, 6, 4) and capture.image_size == (100, 70)
    expected = reference_scores(flux2_klein, calls, concepts, (0, 1, 2), position=flux2.TEXT_TOKENS - 1)
    torch.testing.assert_close(capture.scores["concept_attention"], expected[0], atol=1e-4, rtol=1e-4)


def test_default_layers_are_the_last_three_eighths(flux2_klein, concepts):
    assert flux2.default_layers(8) == (5, 6, 7)            # the reference's 5-7 of Flux 2 dev's 8
    assert flux2.default_layers(5) == (3, 4)
    assert run_capture(flux2_klein, concepts)[1].layers == (1, 2)


def test_reordering_the_concepts_permutes_the_maps(flux2_dev, concepts):
    order = [2, 0, 1]
    shuffled = ConceptSet(words=tuple(concepts.words[i] for i in order), embeddings=concepts.embeddings[order])
    latent_a, capture_a = run_capture(flux2_dev, concepts, batch=2, cross_attention=True)
    latent_b, capture_b = run_capture(flux2_dev, shuffled, batch=2, cross_attention=True)
    assert torch.equal(latent_a, latent_b)
    for method in ("concept_attention", "cross_attention"):
        torch.testing.assert_close(capture_b.maps(method), capture_a.maps(method)[:, order], atol=1e-5, rtol=1e-5)


def test_reference_latents_are_attended_to_but_not_mapped(flux2_dev, concepts):
    reference = torch.randn(1, 128, 8, 8, generator=torch.Generator().manual_seed(3))
    editing = conditioning(1, reference_latents=[reference])
    captured, capture = run_capture(flux2_dev, concepts, positive=editing)
    assert torch.equal(captured, run_ksampler(flux2_dev, positive=editing))
    maps = capture.maps()
    assert maps.shape == (1, 3, 8, 8) and torch.allclose(maps.sum(dim=1), torch.ones(1, 8, 8))
    assert not torch.allclose(maps, run_capture(flux2_dev, concepts)[1].maps())


# Encoding with the Klein text encoder

def test_encode_takes_the_words_own_token_inside_the_template(klein_clip):
    concepts, encoded_with = ConceptEncode.execute(klein_clip, "cat, dog").args
    assert concepts.family == "Flux 2" and concepts.embeddings.shape == (2, WIDTH)
    assert encoded_with == "Flux 2 text encoder (Qwen 3 4B, as Klein 4B): the word's own tokens inside the chat template"
    # "<|im_start|>user\ncat<|im_end|>..." padded to 512: the word at 3
    assert (concepts.text_position, concepts.text_length) == (3, 512)
    cat = klein_clip.encode_from_tokens(klein_clip.tokenize("cat"))
    dog = klein_clip.encode_from_tokens(klein_clip.tokenize("dog"))
    assert torch.equal(concepts.embeddings[0], cat[0, 3]) and torch.equal(concepts.embeddings[1], dog[0, 3])
    # The template's first token is the same for every word in a causal model: taking it
    # would make every map 1/C. The words' own vectors differ.
    assert torch.equal(cat[0, 0], dog[0, 0])
    assert not torch.allclose(concepts.embeddings[0], concepts.embeddings[1], atol=1e-3)


def test_encode_mean_pools_a_word_split_into_tokens(klein_clip):
    word = "elephant"                                       # two Qwen tokens
    cond = klein_clip.encode_from_tokens(klein_clip.tokenize(word))
    first = ConceptEncode.execute(klein_clip, word, "first_token").args[0].embeddings[0]
    mean = ConceptEncode.execute(klein_clip, word, "mean").args[0].embeddings[0]
    assert torch.equal(first, cond[0, 3])
    torch.testing.assert_close(mean, cond[0, 3:5].mean(dim=0))


def test_klein_concepts_and_prompt_through_the_sampler(flux2_klein, klein_clip):
    """End to end with the real template: the prompt padded to 512 by the tokenizer, the
    concepts at the word's own position (3), maps equal to the paper's equations."""
    concepts = ConceptEncode.execute(klein_clip, "cat, rock, sky").args[0]
    prompt = klein_clip.encode_from_tokens_scheduled(klein_clip.tokenize("a cat on a rock under the sky"))
    calls = []
    captured, capture = run_capture(recording_model(flux2_klein, calls), concepts, steps=1, layers="all",
                                    keep=KEEP_ALL, positive=prompt)
    assert torch.equal(captured, run_ksampler(flux2_klein, steps=1, positive=prompt))
    expected = reference_scores(flux2_klein, calls, concepts, (0, 1, 2), position=3)
    torch.testing.assert_close(capture.scores["concept_attention"], expected[0], atol=1e-4, rtol=1e-4)


# Errors and hygiene

def test_concepts_of_another_family_are_refused(flux2_klein, flux_dev, flux_clip, klein_clip):
    with pytest.raises(NodeInputError, match=r"concepts: these concepts come from the Flux 1 text encoder .* "
                                             r"made for Flux 1 models, but this model is Flux 2"):
        run_capture(flux2_klein, ConceptEncode.execute(flux_clip, "dragon").args[0])
    with pytest.raises(NodeInputError, match=r"concepts: these concepts come from the Flux 2 text encoder .* "
                                             r"made for Flux 2 models, but this model is Flux 1"):
        FLUX1.run_capture(flux_dev, ConceptEncode.execute(klein_clip, "dragon").args[0])


def test_no_patch_remains_after_run_error_or_interrupt(flux2_dev, concepts):
    check_no_patch_remains(flux2_dev, lambda: run_capture(flux2_dev, concepts)[0],
                           lambda: run_capture(flux2_dev, concepts, layers="9"), lambda: run_ksampler(flux2_dev))
