"""The image is unchanged: for every tiny checkpoint of every family
(harness.families), sampling with ConceptAttention gives a latent bit-identical to
KSampler's with the same inputs, and captures every step."""
import pytest
import torch

from harness.families import TESTED

pytestmark = pytest.mark.model

CASES = [pytest.param(tested, tiny.name, id=tiny.name) for tested in TESTED for tiny in tested.tiny_models]


# Every pair of values of (cfg, batch, sampler with or without the cross-attention
# baseline) appears once per model: 4 runs instead of the 8 of every combination.
SETTINGS = [(1.0, 1, "euler", False), (3.0, 2, "euler", False), (1.0, 2, "dpmpp_2m", True), (3.0, 1, "dpmpp_2m", True)]


@pytest.mark.parametrize("tested, which", CASES)
@pytest.mark.parametrize("cfg, batch, sampler, baseline", SETTINGS)
def test_latent_is_bit_identical_to_ksampler(request, tested, which, cfg, batch, sampler, baseline):
    model, harness = request.getfixturevalue(which), tested.harness
    # 3 steps: dpmpp_2m's second-order update starts at the second.
    captured, capture = harness.run_capture(model, harness.concepts(), cfg=cfg, batch=batch, sampler=sampler, steps=3,
                                            cross_attention=baseline)
    assert torch.equal(captured, harness.run_ksampler(model, cfg=cfg, batch=batch, sampler=sampler, steps=3))
    assert capture.family == tested.name and capture.batch_size == batch and capture.captured_steps == (0, 1, 2)
    assert capture.maps("cross_attention" if baseline else "concept_attention").shape[:2] == (batch, 3)
