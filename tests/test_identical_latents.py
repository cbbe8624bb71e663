"""The image is unchanged: for every family, sampling with ConceptAttention gives a
latent bit-identical to KSampler's with the same inputs, and captures every step."""
import pytest
import torch

from sampling import COGVIDEOX, FLUX1, FLUX2, SD3

MODELS = [("flux_dev", FLUX1, "Flux 1"), ("flux_schnell", FLUX1, "Flux 1"), ("sd3", SD3, "SD3"),
          ("sd35_medium", SD3, "SD3"), ("flux2_dev", FLUX2, "Flux 2"), ("flux2_klein", FLUX2, "Flux 2"),
          ("cogvideox", COGVIDEOX, "CogVideoX"), ("cogvideox_2b", COGVIDEOX, "CogVideoX"),
          ("cogvideox_15", COGVIDEOX, "CogVideoX"), ("cogvideox_i2v", COGVIDEOX, "CogVideoX")]


@pytest.mark.parametrize("which, family, name", MODELS, ids=[m[0] for m in MODELS])
@pytest.mark.parametrize("cfg", [1.0, 3.0])
@pytest.mark.parametrize("batch", [1, 2])
# The capture with and without the cross-attention baseline, each once per family and setting.
@pytest.mark.parametrize("sampler, baseline", [("euler", False), ("dpmpp_2m", True)])
def test_latent_is_bit_identical_to_ksampler(request, which, family, name, cfg, batch, sampler, baseline):
    model = request.getfixturevalue(which)
    captured, capture = family.run_capture(model, family.concepts(), cfg=cfg, batch=batch, sampler=sampler,
                                           cross_attention=baseline)
    assert torch.equal(captured, family.run_ksampler(model, cfg=cfg, batch=batch, sampler=sampler))
    assert capture.family == name and capture.batch_size == batch and capture.captured_steps == (0, 1, 2, 3)
    assert capture.maps("cross_attention" if baseline else "concept_attention").shape[:2] == (batch, 3)
