"""Maps of existing images (ConceptAttentionEncodeImage), capture with any sampler
node (ConceptAttentionApply) and its caching semantics, and mask outputs."""
import nodes as comfy_nodes
import pytest
import torch
from comfy_extras.nodes_custom_sampler import (
    BasicScheduler,
    CFGGuider,
    KSamplerSelect,
    RandomNoise,
    SamplerCustomAdvanced,
)
from comfy_extras.nodes_slg import SkipLayerGuidanceDiT

from concept_attention.analysis import maths
from concept_attention.analysis.data import KEEP_ALL, KEEP_SUMS
from concept_attention.analysis.errors import NodeInputError
from concept_attention.nodes.apply import ConceptAttentionApply
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from harness.checks import aggregate
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import FLUX1

pytestmark = pytest.mark.model
SEED, STEPS = 5, 4
conditioning, latent, run_capture = FLUX1.conditioning, FLUX1.latent, FLUX1.run_capture


@pytest.fixture(scope="module")
def concepts(flux_clip):
    return ConceptEncode.execute(flux_clip, "dragon, rock, sky").args[0]


@pytest.fixture(scope="module")
def vae(tiny_vae):
    return tiny_vae("taef1")


def images(batch=1, height=100, width=70):
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(batch * height + width))


def encode(model, vae, image, concepts, noise_level=0.5, samples=1, seed=0, layers="all", positive=None, keep=KEEP_SUMS,
           cross_attention=False):
    return ConceptAttentionEncodeImage.execute(model, vae, image, concepts, noise_level, samples, seed, layers,
                                               keep=keep, positive=positive, cross_attention_baseline=cross_attention).args[0]


# Encode mode

def test_encode_image_equals_the_paper_equations(flux_dev, vae, concepts):
    with recorded_inputs(flux_dev) as calls:
        capture = encode(flux_dev, vae, images(), concepts, noise_level=0.3, keep=KEEP_ALL, cross_attention=True)
    assert len(calls) == 1 and capture.steps == (0,) and capture.sigmas == pytest.approx((0.3,))
    call = calls[0]
    assert call["flags"] == [0] and call["x"].shape == (1, 16, 12, 8)   # 100x70 px -> 96x64 px -> 12x8 latent
    expected_output, expected_cross = expected_scores(BY_NAME["Flux 1"], flux_dev, calls, concepts, (0, 1, 2))
    torch.testing.assert_close(capture.scores["concept_attention"], expected_output, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(capture.scores["cross_attention"], expected_cross, atol=1e-4, rtol=1e-4)
    # The empty prompt with guidance 0, as the paper reads images.
    assert torch.equal(call["context"], concepts.empty_prompt[0][0]) and call["guidance"].item() == 0.0


def test_encode_image_keeps_the_aspect_ratio_and_original_size(flux_dev, vae, concepts):
    capture = encode(flux_dev, vae, images(height=100, width=70), concepts)
    assert capture.grid == (1, 6, 4) and capture.image_size == (100, 70)
    assert aggregate(capture)[1].shape == (3, 100, 70)


def test_encode_image_gives_each_image_its_maps(flux_dev, vae, concepts):
    pair = torch.cat([images(height=64, width=96), torch.flip(images(height=64, width=96), dims=[2])])
    capture = encode(flux_dev, vae, pair, concepts)
    maps = capture.maps()
    assert maps.shape == (2, 3, 4, 6) and not torch.allclose(maps[0], maps[1])
    # Image 0's maps do not depend on what else is in the batch (row 0 gets the same noise).
    other_pair = torch.cat([pair[:1], torch.zeros_like(pair[:1])])
    torch.testing.assert_close(encode(flux_dev, vae, other_pair, concepts).maps()[0], maps[0], atol=1e-5, rtol=1e-5)


def test_noise_samples_average_single_passes(flux_dev, vae, concepts):
    image = images(height=64, width=64)
    averaged = encode(flux_dev, vae, image, concepts, samples=3, seed=10)
    assert averaged.steps == (0, 0, 0)
    singles = [encode(flux_dev, vae, image, concepts, seed=10 + n).maps() for n in range(3)]
    torch.testing.assert_close(averaged.maps(), sum(singles) / 3, atol=1e-6, rtol=1e-5)


def test_encode_image_with_a_prompt(flux_dev, vae, concepts, flux_clip):
    image = images(height=64, width=64)
    prompt = flux_clip.encode_from_tokens_scheduled(flux_clip.tokenize("a dragon on a rock"))
    with_prompt = encode(flux_dev, vae, image, concepts, positive=prompt).maps()
    assert not torch.allclose(with_prompt, encode(flux_dev, vae, image, concepts).maps())


# Apply with any sampler

def apply(model, concepts, layers="default", timesteps="all", cross_attention=False):
    return ConceptAttentionApply.execute(model, concepts, layers, timesteps,
                                         cross_attention_baseline=cross_attention).args


def ksampler(model, seed=SEED):
    return comfy_nodes.common_ksampler(model, seed, STEPS, 1.0, "euler", "simple", conditioning(1), conditioning(2),
                                       latent(1, 16, 12))[0]["samples"]


def ksampler_advanced(model):
    return comfy_nodes.KSamplerAdvanced().sample(model, "enable", SEED, STEPS, 1.0, "euler", "simple", conditioning(1),
                                                 conditioning(2), latent(1, 16, 12), 0, STEPS, "disable")[0]["samples"]


def sampler_custom_advanced(model):
    noise = RandomNoise.execute(SEED).args[0]
    guider = CFGGuider.execute(model, conditioning(1), conditioning(2), 1.0).args[0]
    sampler = KSamplerSelect.execute("euler").args[0]
    sigmas = BasicScheduler.execute(model, "simple", STEPS, 1.0).args[0]
    return SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, latent(1, 16, 12)).args[0]["samples"]


@pytest.mark.parametrize("run", [ksampler, ksampler_advanced, sampler_custom_advanced])
def test_apply_with_any_sampler_matches_the_sampler_node(flux_dev, concepts, run):
    patched, capture = apply(flux_dev, concepts, cross_attention=True)
    samples = run(patched)
    expected_latent, expected = run_capture(flux_dev, concepts, steps=STEPS, size=(16, 12), cross_attention=True)
    assert torch.equal(samples, expected_latent)
    assert capture.steps == expected.steps
    for method in maths.METHODS:
        assert torch.equal(capture.step_sums[method], expected.step_sums[method])
        assert torch.equal(capture.layer_sums[method], expected.layer_sums[method])


def test_a_rerun_replaces_the_maps(flux_dev, concepts):
    patched, capture = apply(flux_dev, concepts)
    ksampler(patched, seed=1)
    first = capture.maps()
    ksampler(patched, seed=2)
    assert capture.steps == (0, 1, 2, 3)                # not 8 evaluations: runs never mix
    assert not torch.allclose(first, capture.maps())
    patched_fresh, capture_fresh = apply(flux_dev, concepts)
    ksampler(patched_fresh, seed=2)
    assert torch.equal(capture.maps(), capture_fresh.maps())


def test_two_apply_nodes_keep_separate_maps(flux_dev, concepts, flux_clip):
    other = ConceptEncode.execute(flux_clip, "tree, water").args[0]
    base, base_capture = apply(flux_dev, concepts)
    hires, hires_capture = apply(base, other, layers="1")
    ksampler(base, seed=1)
    ksampler(hires, seed=2)
    assert base_capture.concepts == ("dragon", "rock", "sky") and base_capture.steps == (0, 1, 2, 3)
    assert hires_capture.concepts == ("tree", "water") and hires_capture.layers == (1,)
    assert hires_capture.maps().shape == (1, 2, 8, 6)


def test_guidance_extra_passes_do_not_pollute_the_maps(flux_dev, concepts):
    patched, capture = apply(flux_dev, concepts)
    guided = SkipLayerGuidanceDiT.execute(patched, scale=3.0, start_percent=0.0, end_percent=1.0,
                                          double_layers="1", single_layers="", rescaling_scale=0.0).args[0]
    with recorded_inputs(guided) as calls:
        comfy_nodes.common_ksampler(guided, SEED, STEPS, 2.0, "euler", "simple", conditioning(1), conditioning(2),
                                    latent(1, 16, 12))
    cond_calls = [c for c in calls if 0 in c["flags"]]
    assert len(cond_calls) > STEPS                       # skip-layer guidance adds conditional passes
    assert capture.steps == (0, 1, 2, 3)                 # but only the sampler's own pass is recorded


def test_aggregate_before_the_sampler_says_what_to_connect(flux_dev, concepts):
    _, capture = apply(flux_dev, concepts)
    with pytest.raises(NodeInputError, match="Concept Heatmaps › concept_attn: nothing was captured.*`after`"):
        aggregate(capture)


def test_apply_rejects_bad_layers(flux_dev, concepts):
    with pytest.raises(NodeInputError, match="ConceptAttention Apply › layers: layer 5 is out of range"):
        apply(flux_dev, concepts, layers="5")


# Masks

def test_threshold_masks(flux_dev, concepts):
    _, capture = run_capture(flux_dev, concepts, batch=2, size=(16, 12))
    _, soft, _, by_mean, _, _ = aggregate(capture)
    assert torch.equal(by_mean, (soft > soft.mean(dim=(1, 2), keepdim=True)).float())
    _, soft, _, fixed, _, _ = aggregate(capture, threshold_mode="fixed", threshold=0.7)
    assert torch.equal(fixed, (soft > 0.7).float())


def test_blur_and_grow_masks(flux_dev, concepts):
    _, capture = run_capture(flux_dev, concepts, size=(16, 12))
    _, soft, argmax, thresholded, _, _ = aggregate(capture)
    _, soft_blurred, _, _, _, _ = aggregate(capture, blur=4.0)
    assert soft_blurred.shape == soft.shape and not torch.allclose(soft_blurred, soft)
    _, _, grown, grown_threshold, _, _ = aggregate(capture, grow=3)
    assert torch.all(grown >= argmax) and grown.sum() > argmax.sum()
    assert torch.all(grown_threshold >= thresholded)
    _, _, shrunk, _, _, _ = aggregate(capture, grow=-3)
    assert torch.all(shrunk <= argmax) and shrunk.sum() < argmax.sum()
