"""ConceptAttention on tiny Flux 2 checkpoints (ComfyUI's Flux class with the Flux 2
parameters, loaded by its own loader): dev-like (guidance embedding) and Klein-like
(none). Identical latents, maps that equal the paper's equations with the text
padded as ComfyUI pads it, one constant concept position, reference latents, and
ConceptEncode with a tiny Klein text encoder (ComfyUI's Qwen 3 class, the real
tokenizer and chat template). Flux 2 dev's Mistral tokenizer data does not ship
with ComfyUI, so the dev model is tested with conditioning built directly.
(Identical latents for every family: test_identical_latents.py.)"""
import dataclasses

import comfy.patcher_extension
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.errors import NodeInputError
from concept_attention.hooks import flux2
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from harness import paper_equations, tiny_models
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import FLUX1, FLUX2

pytestmark = pytest.mark.model
WIDTH = tiny_models.FLUX2_TEXT_DIM
FLUX2_TESTED = BY_NAME["Flux 2"]
TEXT_TOKENS = 512   # model_base.Flux2.extra_conds left-pads the prompt with zeros to this many tokens
conditioning, run_capture, run_ksampler = FLUX2.conditioning, FLUX2.run_capture, FLUX2.run_ksampler


@pytest.fixture(scope="module")
def concepts():
    return FLUX2.concepts()


def test_encode_image_equals_the_paper_equations(flux2_klein, concepts, tiny_vae):
    image = torch.rand(1, 100, 70, 3, generator=torch.Generator().manual_seed(0))
    with recorded_inputs(flux2_klein) as calls:
        capture = ConceptAttentionEncodeImage.execute(flux2_klein, tiny_vae("taef2"), image, concepts, 0.5, 1, 0, "all",
                                                      KEEP_ALL, positive=conditioning(1)).args[0]
    assert calls[0]["x"].shape == (1, 128, 6, 4)       # 100x70 px -> 96x64 px -> 1/16
    # ComfyUI left-pads the prompt to 512; a bare vector sits where a one-token word would, at the end.
    assert calls[0]["context"].shape[1] == TEXT_TOKENS
    assert capture.grid == (1, 6, 4) and capture.image_size == (100, 70)
    expected = expected_scores(FLUX2_TESTED, flux2_klein, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"], expected[0], atol=1e-4, rtol=1e-4)


def test_default_layers_are_the_last_three_eighths(flux2_klein, concepts):
    assert flux2.FAMILY.default_layers(8) == (5, 6, 7)            # the reference's 5-7 of Flux 2 dev's 8
    assert flux2.FAMILY.default_layers(5) == (3, 4)
    assert run_capture(flux2_klein, concepts)[1].layers == (1, 2)


def unpadded(model, tokens):
    """A clone whose model calls see only the prompt's last `tokens` text tokens, without
    the left-padding to 512 that ComfyUI adds (as a direct call, or a ComfyUI that does
    not pad, would give them); a wrapper outside the capture's."""
    def strip(executor, x, timestep, context, *args, **kwargs):
        return executor(x, timestep, context[:, -tokens:], *args, **kwargs)
    clone = model.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "test_unpadded", strip)
    return clone


# (text position, text length) of the concepts' own encoding -> the position they take in a 40-token text
@pytest.mark.parametrize("text_position, text_length, expected", [
    (0, 1, 39),      # a bare vector: the end of the text, as after left-padding
    (3, 512, 3),     # Klein's template, right-padded to 512 by its tokenizer: where the word is
    (45, 50, 39),    # past the end of this text: clamped into it
])
def test_text_shorter_than_the_concepts_position_still_gives_maps(flux2_dev, text_position, text_length, expected):
    concepts = dataclasses.replace(FLUX2.concepts(), text_position=text_position, text_length=text_length)
    model = unpadded(flux2_dev, FLUX2.tokens)
    with recorded_inputs(flux2_dev) as calls:
        _, capture = run_capture(model, concepts, steps=1, layers="all", keep=KEEP_ALL)
    assert not capture.error and capture.steps == (0,)
    inputs = {**calls[0], "context": calls[0]["context"][:, -FLUX2.tokens:]}
    want, _ = paper_equations.concept_attention_maps(flux2_dev.model.diffusion_model, inputs["x"], inputs["timestep"],
                                                     inputs["context"], inputs["y"], inputs["guidance"],
                                                     concepts.embeddings, (0, 1, 2), concept_position=expected)
    torch.testing.assert_close(capture.scores["concept_attention"][0], want, atol=1e-4, rtol=1e-4)


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
    with recorded_inputs(flux2_klein) as calls:
        captured, capture = run_capture(flux2_klein, concepts, steps=1, layers="all", keep=KEEP_ALL, positive=prompt)
    assert torch.equal(captured, run_ksampler(flux2_klein, steps=1, positive=prompt))
    assert calls[0]["context"].shape[1] == TEXT_TOKENS
    expected = expected_scores(FLUX2_TESTED, flux2_klein, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"], expected[0], atol=1e-4, rtol=1e-4)


# Errors and hygiene

def test_concepts_of_another_family_are_refused(flux2_klein, flux_dev, flux_clip, klein_clip):
    with pytest.raises(NodeInputError, match=r"concepts: these concepts come from the Flux 1 text encoder .* "
                                             r"made for Flux 1 models, but this model is Flux 2"):
        run_capture(flux2_klein, ConceptEncode.execute(flux_clip, "dragon").args[0])
    with pytest.raises(NodeInputError, match=r"concepts: these concepts come from the Flux 2 text encoder .* "
                                             r"made for Flux 2 models, but this model is Flux 1"):
        FLUX1.run_capture(flux_dev, ConceptEncode.execute(klein_clip, "dragon").args[0])
