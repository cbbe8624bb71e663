"""Wan (hooks/wan.py), the cross-attention family, beyond what every family gets
(test_identical_latents, test_paper_equations, test_every_family): maps per decoded
frame for the 2.1 and 2.2 VAEs, image-to-video from an image, the 5B model's image-to-
video latent (per-frame timesteps), Concept Encode with umT5, and the map nodes, the
Report and the Viewer saying plainly that Wan has cross-attention maps only."""
import json
import types

import nodes as comfy_nodes
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.errors import NodeInputError
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from concept_attention.nodes.report import ConceptReport
from concept_attention.nodes.sampler import ConceptAttentionSampler
from concept_attention.nodes.viewer import UI_KEY, ConceptAttentionViewer
from harness.checks import aggregate
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import SEED, WAN21, WAN21_I2V, WAN22_5B
from harness.synthetic import planted

pytestmark = pytest.mark.model
CROSS = "cross_attention"


@pytest.mark.parametrize("which, harness, pixels", [("wan21", WAN21, 8), ("wan22_5b", WAN22_5B, 16)])
def test_a_peak_moving_across_token_frames_moves_across_decoded_frames(request, which, harness, pixels):
    """Both VAEs decode latent frame 0 to one frame and each later one to 4: 3 latent
    frames are 9 frames, of 8 (2.1) or 16 (2.2) pixels per latent pixel. A peak that
    moves one patch down and right per token frame moves so across the decoded frames."""
    _, capture = harness.run_capture(request.getfixturevalue(which), harness.concepts(), size=(3, 8, 6))
    assert capture.methods == (CROSS,) and capture.grid == (3, 4, 3)
    assert capture.video_frames == 9 and capture.image_size == (8 * pixels, 6 * pixels)
    assert aggregate(capture, method=CROSS)[1].shape == (3 * 9, 8 * pixels, 6 * pixels)

    def moving_peak(step, layer):
        maps = torch.full((1, 2, *capture.grid), 0.2)
        for frame in range(3):
            maps[0, 0, frame, frame, frame] = 0.9
        return torch.stack((maps[:, 0], 1 - maps[:, 0]), dim=1)

    layout = dict(video_frames=capture.video_frames, frames_per_latent=capture.frames_per_latent,
                  latents_per_token=capture.latents_per_token)
    moved = planted(moving_peak, ("peak", "rest"), image_size=capture.image_size, family="Wan", **layout)
    soft = aggregate(moved)[1][:9]                      # the concept "peak", frame by frame
    patch = 2 * pixels
    peaks = [divmod(int(frame.flatten().argmax()), frame.shape[1]) for frame in soft]
    assert [(row // patch, column // patch) for row, column in peaks] == [(0, 0)] + [(1, 1)] * 4 + [(2, 2)] * 4


def run_both(model, harness, positive, latent, cfg=3.0, steps=2):
    """(ConceptAttention Sampler's latent, its CONCEPT_ATTN with every step and layer, the
    diffusion model's inputs in its calls, KSampler's latent)."""
    with recorded_inputs(model) as calls:
        out = ConceptAttentionSampler.execute(model, SEED, steps, cfg, "euler", "simple", positive,
                                              harness.conditioning(2), latent, 1.0, harness.concepts(), "all", "all",
                                              KEEP_ALL).args
    plain = comfy_nodes.common_ksampler(model, SEED, steps, cfg, "euler", "simple", positive, harness.conditioning(2),
                                        latent)[0]["samples"]
    return out[0]["samples"], out[1], calls, plain


def test_image_to_video_from_an_image(wan21_i2v, tiny_vae):
    """WanImageToVideo's start image (its latent and mask concatenated to the noise, its
    CLIP-vision tokens in the cross-attention): the video is unchanged and the maps equal
    the recomputation, which reads the text keys, not the image's."""
    from comfy_extras.nodes_wan import WanImageToVideo

    gen = torch.Generator().manual_seed(4)
    vision = types.SimpleNamespace(penultimate_hidden_states=torch.randn(1, 257, 1280, generator=gen))
    positive, negative, latent = WanImageToVideo.execute(
        WAN21_I2V.conditioning(1), WAN21_I2V.conditioning(2), tiny_vae("taehv.safetensors"), 48, 64, 9, 1,
        start_image=torch.rand(1, 64, 48, 3, generator=gen), clip_vision_output=vision).args
    assert "concat_latent_image" in positive[0][1] and "clip_vision_output" in positive[0][1]
    captured, capture, calls, plain = run_both(wan21_i2v, WAN21_I2V, positive, latent)
    assert torch.equal(captured, plain)
    assert calls[0]["x"].shape[1] == 36 and calls[0]["clip_fea"].shape[-2:] == (257, 1280)
    _, cross = expected_scores(BY_NAME["Wan"], wan21_i2v, calls, WAN21_I2V.concepts(), (0, 1, 2))
    torch.testing.assert_close(capture.scores[CROSS], cross, atol=1e-4, rtol=1e-4)


def test_the_5b_models_image_to_video_latent_with_per_frame_timesteps(wan22_5b):
    """Wan 2.2 5B's image-to-video latent: the first frame kept by a noise mask, which
    gives every frame its own timestep. Unchanged video, maps as recomputed."""
    samples = torch.randn(1, 48, 3, 8, 6, generator=torch.Generator().manual_seed(6))
    mask = torch.ones(1, 1, 3, 8, 6)
    mask[:, :, 0] = 0
    latent = {"samples": samples, "noise_mask": mask}
    captured, capture, calls, plain = run_both(wan22_5b, WAN22_5B, WAN22_5B.conditioning(1), latent)
    assert torch.equal(captured, plain)
    assert calls[0]["timestep"].shape[-1] == 3 and not torch.equal(calls[0]["timestep"][0, 0], calls[0]["timestep"][0, 1])
    _, cross = expected_scores(BY_NAME["Wan"], wan22_5b, calls, WAN22_5B.concepts(), (0, 1, 2))
    torch.testing.assert_close(capture.scores[CROSS], cross, atol=1e-4, rtol=1e-4)


def test_concept_encode_reads_each_words_own_umt5_tokens(wan21, wan_clip):
    """umT5 puts a word at 0, then its end token, padded to 512. mean pooling averages a
    word's pieces ("dragon" is two in the tokenizer used here)."""
    concepts, encoded_with = ConceptEncode.execute(wan_clip, "dragon, rock", "mean").args
    assert concepts.family == "Wan" and encoded_with == "Wan text encoder (umT5-XXL): the word's own tokens"
    pieces = [t for t in wan_clip.tokenize("dragon", return_word_ids=True)["umt5xxl"][0] if t[2] > 0]
    dragon = wan_clip.encode_from_tokens(wan_clip.tokenize("dragon"))
    assert dragon.shape[1] == 512 and len(pieces) == 2
    torch.testing.assert_close(concepts.embeddings[0], dragon[0, :2].float().mean(dim=0))
    rock = wan_clip.encode_from_tokens(wan_clip.tokenize("rock"))
    torch.testing.assert_close(concepts.embeddings[1], rock[0, 0].float())
    prompt = wan_clip.encode_from_tokens_scheduled(wan_clip.tokenize("a dragon on a rock"))
    captured, capture = WAN21.run_capture(wan21, concepts, positive=prompt)
    assert torch.equal(captured, WAN21.run_ksampler(wan21, positive=prompt))
    assert capture.maps(CROSS).shape == (1, 2, 3, 4, 3)


def test_asking_a_wan_capture_for_conceptattention_maps_says_why_not(wan21):
    _, capture = WAN21.run_capture(wan21, WAN21.concepts(), steps=2)
    with pytest.raises(NodeInputError) as error:
        aggregate(capture, method="concept_attention")
    message = str(error.value)
    assert "Concept Heatmaps" in message and "method" in message
    assert "Wan has no joint attention" in message and "choose method = cross_attention" in message


def test_the_report_and_the_viewer_say_the_maps_are_cross_attention_only(wan21):
    _, capture = WAN21.run_capture(wan21, WAN21.concepts(), steps=2)
    note = "Wan has no joint attention: cross-attention maps only"
    table, text = ConceptReport.execute(capture, method=CROSS).args[:2]
    assert table.splitlines()[0].startswith(f"ConceptAttention report: cross_attention ({note}), ")
    assert json.loads(text)["method"] == CROSS and json.loads(text)["method_note"] == note
    frames = torch.rand(9, 64, 48, 3)
    shown = ConceptAttentionViewer.execute(capture, frames, method=CROSS).ui[UI_KEY][0]
    assert shown["method"] == f"cross_attention ({note})" and shown["frames"] == 9


def test_encode_a_video_equals_the_recomputation(wan21, tiny_vae):
    """Encode Image reads an image batch as one video's frames (9 frames: 3 latent frames)."""
    frames = torch.rand(9, 64, 48, 3, generator=torch.Generator().manual_seed(0))
    concepts = WAN21.concepts()
    with recorded_inputs(wan21) as calls:
        capture = ConceptAttentionEncodeImage.execute(wan21, tiny_vae("taehv.safetensors"), frames, concepts, 0.5, 1,
                                                      0, "all", KEEP_ALL, positive=WAN21.conditioning(1)).args[0]
    assert calls[0]["x"].shape == (1, 16, 3, 8, 6)
    assert capture.video_frames == 9 and capture.grid == (3, 4, 3) and capture.image_size == (64, 48)
    _, cross = expected_scores(BY_NAME["Wan"], wan21, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores[CROSS], cross, atol=1e-4, rtol=1e-4)
    assert aggregate(capture)[0].shape == (3 * 9, 64, 48, 3)
