"""Qwen-Image and Qwen-Image-Edit (hooks/qwen_image.py) beyond what every family gets
(test_identical_latents, test_paper_equations, test_every_family, test_coexistence):
editing with each reference method, the Qwen 2.5-VL text encoder, Concept Encode's
refusals, Encode Image and Apply."""
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.errors import NodeInputError
from concept_attention.nodes.apply import ConceptAttentionApply
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from harness import paper_equations
from harness.checks import check_words_own_tokens
from harness.families import BY_NAME, recorded_inputs
from harness.sampling import QWEN_IMAGE

pytestmark = pytest.mark.model
TESTED = BY_NAME["Qwen-Image"]
REFERENCE = torch.randn(1, 16, 1, 10, 8, generator=torch.Generator().manual_seed(3))   # [B, C, frames, H, W]


@pytest.mark.parametrize("method", [None, "index", "negative_index", "index_timestep_zero"])
def test_editing_attends_to_the_reference_and_maps_only_the_image(qwen_image_edit, method):
    """Identical latents, and maps equal to the recomputation with the reference tokens
    as keys (at t = 0 under index_timestep_zero, the 2511 model's default)."""
    extra = {"reference_latents": [REFERENCE]}
    if method is not None:
        extra["reference_latents_method"] = method
    editing = QWEN_IMAGE.conditioning(1, **extra)
    concepts = QWEN_IMAGE.concepts()
    with recorded_inputs(qwen_image_edit) as calls:
        latent, capture = QWEN_IMAGE.run_capture(qwen_image_edit, concepts, cfg=3.0, steps=2, positive=editing,
                                                 layers="all", keep=KEEP_ALL, cross_attention=True)
    assert torch.equal(latent, QWEN_IMAGE.run_ksampler(qwen_image_edit, cfg=3.0, steps=2, positive=editing))
    assert not capture.error
    dm = qwen_image_edit.model.diffusion_model
    conditional = [call for call in calls if call["flags"] == [0]]
    assert conditional and all(len(call["ref_latents"]) == 1 for call in conditional)
    assert all(call.get("ref_latents_method", dm.default_ref_method) == (method or "index_timestep_zero")
               for call in conditional)
    expected = [TESTED.paper_scores(dm, call, concepts, (0, 1, 2)) for call in conditional]
    torch.testing.assert_close(capture.scores["concept_attention"], torch.stack([e[0] for e in expected]),
                               atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(capture.scores["cross_attention"], torch.stack([e[1] for e in expected]),
                               atol=1e-4, rtol=1e-4)
    assert capture.maps().shape == (1, 3, 6, 8)                                  # the 12x16 latent, not the reference


def test_the_reference_changes_the_maps(qwen_image_edit):
    concepts = QWEN_IMAGE.concepts()
    plain = QWEN_IMAGE.run_capture(qwen_image_edit, concepts, steps=1)[1].maps()
    editing = QWEN_IMAGE.conditioning(1, reference_latents=[REFERENCE])
    edited = QWEN_IMAGE.run_capture(qwen_image_edit, concepts, steps=1, positive=editing)[1].maps()
    assert edited.shape == plain.shape and not torch.allclose(edited, plain, atol=1e-4)


def test_the_concepts_sit_at_the_first_prompt_position(qwen_image):
    """txt_start moves with the image size; a concept at another position gives other maps."""
    concepts = QWEN_IMAGE.concepts()
    with recorded_inputs(qwen_image) as calls:
        capture = QWEN_IMAGE.run_capture(qwen_image, concepts, steps=1, layers="all", keep=KEEP_ALL, size=(20, 8))[1]
    dm = qwen_image.model.diffusion_model
    want, _ = paper_equations.qwen_image_concept_attention_maps(dm, calls[0]["x"], calls[0]["timestep"],
                                                                calls[0]["context"], concepts.embeddings, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"][0], want, atol=1e-4, rtol=1e-4)


# Concept Encode with the Qwen 2.5-VL text encoder

def test_encode_takes_the_words_own_tokens_after_the_cropped_template(qwen_image_clip):
    concepts, encoded_with = ConceptEncode.execute(qwen_image_clip, "cat, dragonfly", pooling="mean").args
    assert concepts.family == "Qwen-Image" and concepts.embeddings.shape == (2, QWEN_IMAGE.text_width)
    assert encoded_with == "Qwen-Image text encoder (Qwen 2.5-VL 7B): the word's own tokens"
    # ComfyUI drops the system prefix and "<|im_start|>user\n": the word comes first, then
    # "<|im_end|>\n<|im_start|>assistant\n".
    check_words_own_tokens(qwen_image_clip, concepts, start=0, trailing=5)
    assert len(qwen_image_clip.tokenizer.qwen25_7b.tokenizer("dragonfly")["input_ids"]) > 1
    first, _ = ConceptEncode.execute(qwen_image_clip, "cat, dragonfly").args
    cat = qwen_image_clip.encode_from_tokens(qwen_image_clip.tokenize("cat"))
    assert torch.equal(first.embeddings[0], cat[0, 0].float())
    assert (first.text_position, first.text_length) == (0, 6)


def test_qwen_image_concepts_on_another_family_are_refused(qwen_image_clip, flux_dev):
    from concept_attention.nodes.sampler import ConceptAttentionSampler
    concepts, _ = ConceptEncode.execute(qwen_image_clip, "cat").args
    with pytest.raises(NodeInputError) as raised:
        ConceptAttentionSampler.execute(flux_dev, 1, 1, 1.0, "euler", "simple", [], [], {"samples": torch.zeros(1, 16, 8, 8)},
                                        1.0, concepts, "default", "all")
    assert "Qwen-Image" in str(raised.value) and "Flux 1" in str(raised.value)


# Encode Image and Apply

def test_encode_image_equals_the_paper_equations(qwen_image, tiny_vae):
    """An existing image's latent, 4-D from a 2-D VAE, goes in as one frame, as KSampler
    would give it; the concepts carry no empty prompt here, so a prompt is connected."""
    concepts = QWEN_IMAGE.concepts()
    image = torch.rand(1, 100, 70, 3, generator=torch.Generator().manual_seed(1))
    with recorded_inputs(qwen_image) as calls:
        capture = ConceptAttentionEncodeImage.execute(qwen_image, tiny_vae("taef1"), image, concepts, 0.4, 1, 0, "all",
                                                      keep=KEEP_ALL, positive=QWEN_IMAGE.conditioning(1),
                                                      cross_attention_baseline=True).args[0]
    assert len(calls) == 1 and calls[0]["x"].shape == (1, 16, 1, 12, 8)    # 100x70 px -> 96x64 px
    want = TESTED.paper_scores(qwen_image.model.diffusion_model, calls[0], concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"][0], want[0], atol=1e-4, rtol=1e-4)
    assert capture.maps().shape == (1, 3, 6, 4) and not capture.is_video


def test_apply_with_ksampler_gives_the_sampler_nodes_maps(qwen_image):
    concepts = QWEN_IMAGE.concepts()
    latent, expected = QWEN_IMAGE.run_capture(qwen_image, concepts, cfg=3.0, steps=3)
    patched, capture = ConceptAttentionApply.execute(qwen_image, concepts, "default", "all").args
    assert torch.equal(QWEN_IMAGE.run_ksampler(patched, cfg=3.0, steps=3), latent)
    torch.testing.assert_close(capture.maps(), expected.maps(), atol=0, rtol=0)
