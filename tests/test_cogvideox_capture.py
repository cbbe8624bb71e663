"""ConceptAttention on tiny CogVideoX checkpoints (ComfyUI's CogVideoXTransformer3DModel,
loaded by its own loader): 1.0 with RoPE (5b-like), 1.0 with the positional table
(2b-like), 1.5 (patch_size_t = 2) and image-to-video. Encoding a video, per-frame IMAGE
and MASK batches in the documented layout, the temporal mapping, the T5 text encoder,
and no hook left behind. (For every family: identical latents in
test_identical_latents.py, the paper's equations in test_paper_equations.py.)"""
import comfy.model_management
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL, ConceptAttention
from concept_attention.analysis.errors import NodeInputError
from concept_attention.analysis.render import concept_colours
from concept_attention.nodes.aggregate import HeatmapAggregate
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from concept_attention.nodes.overlay import HeatmapOverlay
from harness.checks import aggregate
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import COGVIDEOX

pytestmark = pytest.mark.model
MODELS = ["cogvideox", "cogvideox_2b", "cogvideox_15"]
run_capture, run_ksampler = COGVIDEOX.run_capture, COGVIDEOX.run_ksampler


@pytest.fixture(scope="module")
def concepts():
    return COGVIDEOX.concepts()


def test_encode_a_video_equals_the_paper_equations(cogvideox, concepts, tiny_vae):
    frames = torch.rand(9, 64, 48, 3, generator=torch.Generator().manual_seed(0))     # one video of 9 frames
    with recorded_inputs(cogvideox) as calls:
        capture = ConceptAttentionEncodeImage.execute(cogvideox, tiny_vae("taehv.safetensors"), frames, concepts, 0.5, 1,
                                                      0, "all", KEEP_ALL, positive=COGVIDEOX.conditioning(1)).args[0]
    assert calls[0]["x"].shape == (1, 16, 3, 8, 6)             # 9 frames -> 3 latent frames
    assert capture.video_frames == 9 and capture.grid == (3, 4, 3) and capture.image_size == (64, 48)
    output_space, _ = expected_scores(BY_NAME["CogVideoX"], cogvideox, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"], output_space, atol=1e-4, rtol=1e-4)
    assert aggregate(capture)[0].shape == (3 * 9, 64, 48, 3)


def test_default_layers_are_every_block(cogvideox, concepts):
    assert run_capture(cogvideox, concepts)[1].layers == (0, 1, 2)


def test_an_earlier_attention_override_still_runs_and_sees_every_block(cogvideox, concepts):
    seen = []

    def earlier(func, *args, **kwargs):
        seen.append(args[0].shape[1])
        return func(*args, **kwargs)

    patched = cogvideox.clone()
    patched.model_options["transformer_options"]["optimized_attention_override"] = earlier
    captured, _ = run_capture(patched, concepts, steps=1)
    assert torch.equal(captured, run_ksampler(patched, steps=1))
    assert seen == [32 + 3 * 4 * 3] * 6      # 3 blocks in the plain and in the capture run, text + video tokens


def test_image_to_video_maps(cogvideox_i2v, concepts):
    image = torch.randn(1, 16, 3, 8, 6, generator=torch.Generator().manual_seed(1))
    positive = COGVIDEOX.conditioning(1, concat_latent_image=image)
    captured, capture = run_capture(cogvideox_i2v, concepts, positive=positive)
    assert torch.equal(captured, run_ksampler(cogvideox_i2v, positive=positive))
    assert capture.maps().shape == (1, 3, 3, 4, 3)


# Per-frame outputs

@pytest.mark.parametrize("which, token_frames", [("cogvideox", 3), ("cogvideox_15", 2)])
def test_per_frame_outputs_are_concept_major_frames(request, concepts, which, token_frames):
    model = request.getfixturevalue(which)
    _, capture = run_capture(model, concepts, batch=2, size=(3, 8, 6))
    heatmaps, soft, argmax, thresholded, labels, maps = aggregate(capture)
    frames = 9                                               # 3 latent frames: frame 0, then 4 each
    assert capture.video_frames == frames and capture.grid[0] == token_frames
    assert heatmaps.shape == (2 * 3 * frames, 64, 48, 3)
    assert soft.shape == argmax.shape == thresholded.shape == (2 * 3 * frames, 64, 48)
    assert labels.splitlines() == [w for _ in range(2) for w in ("dragon", "rock", "sky") for _ in range(frames)]
    # every decoded frame's masks partition it
    per_frame = argmax.reshape(2, 3, frames, 64, 48)
    assert torch.equal(per_frame.sum(dim=1), torch.ones(2, frames, 64, 48))
    # the segmentation picture: one per decoded frame, video-major, each pixel its winner's colour
    segmentation = HeatmapAggregate.execute(capture, "all", "all", "concept_attention", "per_concept", "image",
                                            "plasma", label=False).args[6]
    colours = torch.tensor(concept_colours(("dragon", "rock", "sky"))) / 255.0
    assert torch.allclose(segmentation, colours[per_frame.argmax(dim=1)].reshape(2 * frames, 64, 48, 3), atol=1e-6)
    # frames of the same token frame carry the same map; layout [video, concept, frame]
    grid = capture.maps()                                    # [2, 3, token frames, 4, 3]
    expected_frames = capture.token_frame_of()
    assert expected_frames.tolist() == ([0, 1, 1, 1, 1, 2, 2, 2, 2] if token_frames == 3 else [0, 0, 0, 0, 0, 1, 1, 1, 1])
    _, on_grid, _, _, _, _ = aggregate(capture, size="latent_grid", normalization="joint")
    assert on_grid.shape == (2 * 3 * token_frames, 4, 3)
    assert maps.maps.shape == (2, 3, frames, 64, 48)
    assert grid.shape[2] == token_frames


def test_one_concept_as_a_video(cogvideox, concepts):
    _, capture = run_capture(cogvideox, concepts, size=(3, 8, 6))
    everything = aggregate(capture)[1].reshape(1, 3, 9, 64, 48)
    rock = aggregate(capture, concept="Rock")
    assert rock[1].shape == (9, 64, 48) and rock[4].splitlines() == ["rock"] * 9
    assert torch.equal(rock[1], everything[0, 1])            # per-concept normalisation does not depend on the others
    # its argmax mask is where rock beats the other concepts, not the whole frame
    all_masks = aggregate(capture)[2].reshape(1, 3, 9, 64, 48)
    assert torch.equal(rock[2], all_masks[0, 1]) and 0 < rock[2].mean() < 1
    with pytest.raises(NodeInputError, match="Concept Heatmaps › concept: 'tree' is not a captured concept; .*dragon, rock, sky"):
        aggregate(capture, concept="tree")


def test_planted_maps_move_across_the_decoded_frames_as_documented():
    """A synthetic capture whose concept 0 wins a different patch in each token frame:
    the peak moves across the decoded frames exactly as token_frame_of says."""
    token_frames, height, width = 3, 4, 4
    scores = torch.zeros(1, 1, 1, 2, token_frames, height, width)      # [E, L, B, C, F, h, w]
    scores[..., 1, :, :, :] = 1.0                                      # "still" wins everywhere else
    peaks = [(0, 0), (1, 2), (3, 3)]
    for frame, (row, column) in enumerate(peaks):
        scores[..., 0, frame, row, column] = 10.0
    capture = ConceptAttention(concepts=("moving", "still"), family="CogVideoX", layers=(0,), keep=KEEP_ALL,
                               grid=(token_frames, height, width), image_size=(height * 8, width * 8),
                               video_frames=9, frames_per_latent=4, latents_per_token=1, batch_size=1,
                               steps=(0,), sigmas=(1.0,),
                               scores={m: scores.flatten(-3) for m in ("concept_attention", "cross_attention")})
    argmax = aggregate(capture, size="image")[2].reshape(2, 9, height * 8, width * 8)
    expected = [0, 1, 1, 1, 1, 2, 2, 2, 2]                   # frame 0 alone, then 4 frames per latent frame
    for decoded, token in enumerate(expected):
        row, column = peaks[token]
        assert argmax[0, decoded, row * 8 + 4, column * 8 + 4] == 1, (decoded, token)
        for other, (r, c) in enumerate(peaks):
            if other != token:
                assert argmax[0, decoded, r * 8 + 4, c * 8 + 4] == 0, (decoded, other)


def test_overlay_of_each_decoded_frame(cogvideox, concepts):
    _, capture = run_capture(cogvideox, concepts, batch=2, size=(3, 8, 6))
    maps = aggregate(capture)[5]
    frames = torch.rand(2 * 9, 64, 48, 3, generator=torch.Generator().manual_seed(0))
    overlays = HeatmapOverlay.execute(frames, maps, 0.5, "plasma", False).args[0]
    assert overlays.shape == (2 * 3 * 9, 64, 48, 3)
    # video 1, concept 2, frame 5 blends frame 5 of video 1
    index = (1 * 3 + 2) * 9 + 5
    only_image = HeatmapOverlay.execute(frames, maps, 0.0, "plasma", False).args[0]
    assert torch.allclose(only_image[index], frames[9 + 5])
    with pytest.raises(NodeInputError, match="Concept Overlay › image: 10 images for maps of 2 videos of 9 frames"):
        HeatmapOverlay.execute(frames[:10], maps, 0.5, "plasma", False)


# Text encoder, errors, hygiene

def test_encode_with_the_cogvideox_text_encoder(cogvideox, cogvideox_clip):
    concepts, encoded_with = ConceptEncode.execute(cogvideox_clip, "dragon, rock").args
    assert concepts.family == "CogVideoX" and encoded_with == "CogVideoX text encoder (T5-XXL): the T5-XXL tokens"
    cond = cogvideox_clip.encode_from_tokens(cogvideox_clip.tokenize("rock"))
    assert cond.shape[1] == 226 and torch.equal(concepts.embeddings[1], cond[0, 0])
    prompt = cogvideox_clip.encode_from_tokens_scheduled(cogvideox_clip.tokenize("a dragon on a rock"))
    captured, capture = run_capture(cogvideox, concepts, positive=prompt)
    assert torch.equal(captured, run_ksampler(cogvideox, positive=prompt))
    assert capture.maps().shape == (1, 2, 3, 4, 3)


def test_an_interrupt_inside_a_block_removes_the_hooks(cogvideox, concepts):
    """The pre-hooks live for one model call: an interrupt raised while the blocks run
    (here by an earlier attention override) leaves none behind."""
    def interrupting(func, *args, **kwargs):
        raise comfy.model_management.InterruptProcessingException()

    patched = cogvideox.clone()
    patched.model_options["transformer_options"]["optimized_attention_override"] = interrupting
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        run_capture(patched, concepts)
    assert all(not block._forward_pre_hooks for block in cogvideox.model.diffusion_model.blocks)
