"""ConceptAttention on tiny SD3 and SD3.5-medium checkpoints (ComfyUI's MMDiT, loaded
by its own loader): Encode Image, SD3.5 medium's second attention, SD3's text
encoders, family mismatches, no patch left. (For every family: identical latents in
test_identical_latents.py, the paper's equations in test_paper_equations.py.)"""
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL, ConceptSet
from concept_attention.analysis.errors import NodeInputError
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from harness import tiny_models
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import FLUX1, SD3

pytestmark = pytest.mark.model
TEXT = tiny_models.SD3_TEXT_DIM
run_capture, run_ksampler = SD3.run_capture, SD3.run_ksampler


@pytest.fixture(scope="module")
def concepts():
    return SD3.concepts()


def test_encode_image_equals_the_paper_equations(sd35_medium, concepts, tiny_vae):
    image = torch.rand(1, 100, 70, 3, generator=torch.Generator().manual_seed(0))
    with recorded_inputs(sd35_medium) as calls:
        capture = ConceptAttentionEncodeImage.execute(sd35_medium, tiny_vae("taesd3"), image, concepts, 0.5, 1, 0, "all",
                                                      KEEP_ALL, positive=SD3.conditioning(1),
                                                      cross_attention_baseline=True).args[0]
    assert len(calls) == 1 and calls[0]["x"].shape == (1, 16, 12, 8)     # 100x70 px -> 96x64 px -> 1/8
    assert capture.grid == (1, 6, 4) and capture.image_size == (100, 70)
    output_space, cross = expected_scores(BY_NAME["SD3"], sd35_medium, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"], output_space, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(capture.scores["cross_attention"], cross, atol=1e-4, rtol=1e-4)


def test_sd35_medium_maps_come_from_the_joint_attention_not_attn2(sd35_medium, concepts):
    """Blocks with attn2 call the attention function twice with the same options; an
    override set before ours sees both calls, and still runs."""
    lengths = []

    def earlier_override(func, *args, **kwargs):
        lengths.append(args[0].shape[1])
        return func(*args, **kwargs)

    patched = sd35_medium.clone()
    patched.model_options["transformer_options"]["optimized_attention_override"] = earlier_override
    captured, capture = run_capture(patched, concepts, steps=1, size=(16, 12), keep=KEEP_ALL)
    prompt, image = 154, 8 * 6
    # blocks 0 and 1: joint, then attn2 over the image alone; block 2: joint only
    assert lengths == [prompt + image, image, prompt + image, image, prompt + image]
    assert torch.equal(captured, run_ksampler(patched, steps=1, size=(16, 12)))
    assert capture.scores["concept_attention"].shape == (1, 3, 1, 3, image)


def test_default_layers_are_every_joint_block(sd3, concepts):
    _, capture = run_capture(sd3, concepts)
    assert capture.layers == (0, 1, 2)


# Encoding with SD3's text encoders

def _first_word_position(clip, word, stream):
    tokens = clip.tokenize(word, return_word_ids=True)[stream][0]
    return [i for i, t in enumerate(tokens) if t[2] > 0]


def test_encode_takes_each_words_first_clip_token(sd3_clip):
    concepts, encoded_with = ConceptEncode.execute(sd3_clip, "dragon, rock").args
    assert concepts.family == "SD3" and concepts.embeddings.shape == (2, TEXT)
    assert encoded_with == "SD3 text encoder (CLIP-L, CLIP-G, T5-XXL): the CLIP-L + CLIP-G tokens"
    cond = sd3_clip.encode_from_tokens(sd3_clip.tokenize("rock"))
    assert cond.shape[1] == 77 + 77                      # the CLIP part, then T5
    assert _first_word_position(sd3_clip, "rock", "l") == [1]   # after the start token
    assert torch.equal(concepts.embeddings[1], cond[0, 1])


def test_encode_mean_pools_a_word_split_into_clip_tokens(sd3_clip):
    word = "photosynthesis"
    positions = _first_word_position(sd3_clip, word, "l")
    assert len(positions) > 1, positions                  # CLIP's BPE splits it
    cond = sd3_clip.encode_from_tokens(sd3_clip.tokenize(word))
    first = ConceptEncode.execute(sd3_clip, word, "first_token").args[0].embeddings[0]
    mean = ConceptEncode.execute(sd3_clip, word, "mean").args[0].embeddings[0]
    assert torch.equal(first, cond[0, positions[0]])
    torch.testing.assert_close(mean, cond[0, positions].mean(dim=0))


@pytest.mark.parametrize("parts, stream, part", [
    (dict(clip_l=False, clip_g=False), "t5xxl", "the T5-XXL tokens"),
    (dict(t5=False), "l", "the CLIP-L + CLIP-G tokens"),
    (dict(clip_l=False, t5=False), "g", "the CLIP-G tokens"),
])
def test_encode_uses_the_parts_the_loader_gave(parts, stream, part):
    clip = tiny_models.build_sd3_clip(**parts)
    concepts, encoded_with = ConceptEncode.execute(clip, "dragon").args
    assert encoded_with.endswith(part), encoded_with
    cond = clip.encode_from_tokens(clip.tokenize("dragon"))
    assert torch.equal(concepts.embeddings[0], cond[0, _first_word_position(clip, "dragon", stream)[0]])


def test_encoded_concepts_drive_the_sampler(sd3, sd3_clip):
    concepts = ConceptEncode.execute(sd3_clip, "dragon, rock, sky").args[0]
    captured, capture = run_capture(sd3, concepts, size=(16, 12))
    assert torch.equal(captured, run_ksampler(sd3, size=(16, 12)))
    maps = capture.maps()
    assert maps.shape == (1, 3, 8, 6) and torch.allclose(maps.sum(dim=1), torch.ones(1, 8, 6))


# Errors and hygiene

def test_concepts_of_another_family_are_refused(sd3, sd3_clip, flux_dev, flux_clip):
    flux_concepts = ConceptEncode.execute(flux_clip, "dragon").args[0]
    with pytest.raises(NodeInputError, match=r"ConceptAttention Sampler › concepts: these concepts come from the Flux 1 "
                                             r"text encoder .* made for Flux 1 models, but this model is SD3"):
        run_capture(sd3, flux_concepts)
    sd3_concepts = ConceptEncode.execute(sd3_clip, "dragon").args[0]
    with pytest.raises(NodeInputError, match=r"concepts: these concepts come from the SD3 text encoder .* "
                                             r"made for SD3 models, but this model is Flux 1"):
        FLUX1.run_capture(flux_dev, sd3_concepts)


def test_concepts_of_the_wrong_width_are_refused(sd3):
    narrow = ConceptSet(words=("dragon",), embeddings=torch.zeros(1, 64))
    with pytest.raises(NodeInputError, match="concepts: the concept vectors are 64 wide .* this SD3 model takes 4096-wide"):
        run_capture(sd3, narrow)


def test_a_latent_larger_than_the_position_table_is_refused(sd3, concepts):
    with pytest.raises(NodeInputError, match=r"ConceptAttention Sampler › latent_image: 1056x128 px is 66x8 patches, "
                                             r"more than this SD3 model's position table of 64x64; use at most 1024 px"):
        run_capture(sd3, concepts, size=(16, 132))
