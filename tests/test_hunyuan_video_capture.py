"""HunyuanVideo (hooks/hunyuan_video.py) beyond what every family gets
(test_identical_latents, test_paper_equations, test_every_family, test_coexistence):
maps per decoded frame, Encode Image on a video, image-to-video's reference latent,
1.5's VAE, and Concept Encode with HunyuanVideo 1.5's Qwen 2.5-VL text encoder."""
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from harness import paper_equations
from harness.checks import aggregate, check_words_own_tokens
from harness.families import BY_NAME, expected_scores, family_missing, recorded_inputs
from harness.sampling import HUNYUAN_VIDEO, HUNYUAN_VIDEO_15

pytestmark = pytest.mark.model


def test_maps_per_decoded_frame_follow_the_causal_vae(hunyuan_video):
    """3 latent frames decode to 9 frames (the first alone, then 4 each): 9 maps per
    concept, each decoded frame carrying its latent frame's map."""
    _, capture = HUNYUAN_VIDEO.run_capture(hunyuan_video, HUNYUAN_VIDEO.concepts(), size=(3, 8, 6))
    heatmaps, soft, argmax, _, labels, _ = aggregate(capture)
    assert capture.video_frames == 9 and capture.grid == (3, 4, 3)
    assert soft.shape == (3 * 9, 64, 48) and labels.splitlines() == [w for w in ("dragon", "rock", "sky")
                                                                      for _ in range(9)]
    assert capture.token_frame_of().tolist() == [0, 1, 1, 1, 1, 2, 2, 2, 2]
    per_frame = soft.reshape(3, 9, 64, 48)
    assert torch.equal(per_frame[:, 1], per_frame[:, 4]) and not torch.equal(per_frame[:, 0], per_frame[:, 1])


def test_encode_a_video_equals_the_paper_equations(hunyuan_video, tiny_vae):
    """Encode Image reads an image batch as one video's frames (9 frames: 3 latent frames)."""
    frames = torch.rand(9, 64, 48, 3, generator=torch.Generator().manual_seed(0))
    concepts = HUNYUAN_VIDEO.concepts()
    with recorded_inputs(hunyuan_video) as calls:
        capture = ConceptAttentionEncodeImage.execute(hunyuan_video, tiny_vae("taehv.safetensors"), frames, concepts,
                                                      0.5, 1, 0, "all", KEEP_ALL,
                                                      positive=HUNYUAN_VIDEO.conditioning(1)).args[0]
    assert calls[0]["x"].shape == (1, 16, 3, 8, 6)
    assert capture.video_frames == 9 and capture.grid == (3, 4, 3) and capture.image_size == (64, 48)
    output_space, _ = expected_scores(BY_NAME["HunyuanVideo"], hunyuan_video, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"], output_space, atol=1e-4, rtol=1e-4)
    assert aggregate(capture)[0].shape == (3 * 9, 64, 48, 3)


def test_hunyuan_video_15_maps_have_its_vaes_size(hunyuan_video_15):
    """1.5's VAE: 16 pixels per latent pixel and 4 frames per latent frame after the first."""
    _, capture = HUNYUAN_VIDEO_15.run_capture(hunyuan_video_15, HUNYUAN_VIDEO_15.concepts(), size=(2, 8, 6))
    assert capture.image_size == (128, 96) and capture.video_frames == 5
    assert aggregate(capture)[1].shape == (3 * 5, 128, 96)


def test_a_reference_latent_is_attended_to_and_left_out_of_the_maps(hunyuan_video):
    """Image-to-video's reference latent sits before the video's tokens: the concepts
    attend to it, the maps cover the video only and equal the recomputation with it."""
    reference = torch.randn(1, 16, 1, 8, 6, generator=torch.Generator().manual_seed(3))
    positive = HUNYUAN_VIDEO.conditioning(1, ref_latent=reference)
    concepts = HUNYUAN_VIDEO.concepts()
    with recorded_inputs(hunyuan_video) as calls:
        latent, capture = HUNYUAN_VIDEO.run_capture(hunyuan_video, concepts, steps=1, positive=positive,
                                                    layers="all", keep=KEEP_ALL)
    assert torch.equal(latent, HUNYUAN_VIDEO.run_ksampler(hunyuan_video, steps=1, positive=positive))
    assert calls[0]["ref_latent"] is not None and capture.maps().shape == (1, 3, 3, 4, 3)
    want = paper_equations.hunyuan_video_concept_attention_maps(
        hunyuan_video.model.diffusion_model, calls[0]["x"], calls[0]["timestep"], calls[0]["context"], calls[0]["y"],
        calls[0]["guidance"], concepts.embeddings, (0, 1, 2), calls[0]["ref_latent"])[0]
    torch.testing.assert_close(capture.scores["concept_attention"][0], want, atol=1e-4, rtol=1e-4)


def test_image_to_video_with_a_guiding_frame_keeps_the_latent_and_gives_maps(hunyuan_video):
    """I2V's guiding frame doubles the modulation vector ([B, 2, hidden]); the text, and so
    the concepts, take its second half, the video's own."""
    positive = HUNYUAN_VIDEO.conditioning(1, guiding_frame_index=0)
    latent, capture = HUNYUAN_VIDEO.run_capture(hunyuan_video, HUNYUAN_VIDEO.concepts(), steps=2, positive=positive)
    assert torch.equal(latent, HUNYUAN_VIDEO.run_ksampler(hunyuan_video, steps=2, positive=positive))
    assert not capture.error and torch.isfinite(capture.maps()).all()


def test_encode_takes_the_words_own_tokens_with_hunyuan_video_15s_encoder(hunyuan_video_15_clip):
    if why := family_missing("HunyuanVideo")():
        pytest.skip(why)
    concepts, encoded_with = ConceptEncode.execute(hunyuan_video_15_clip, "cat, dragonfly", pooling="mean").args
    assert concepts.family == "HunyuanVideo" and concepts.embeddings.shape == (2, HUNYUAN_VIDEO.text_width)
    assert encoded_with.startswith("HunyuanVideo 1.5 / HunyuanImage 2.1 text encoder (Qwen 2.5-VL 7B)")
    # ComfyUI drops the system prefix and "<|im_start|>user\n": the word comes first, then
    # "<|im_end|>\n<|im_start|>assistant\n".
    check_words_own_tokens(hunyuan_video_15_clip, concepts, start=0, trailing=5)
    assert len(hunyuan_video_15_clip.tokenizer.qwen25_7b.tokenizer("dragonfly")["input_ids"]) > 1
