"""The image is unchanged: for every tiny checkpoint of every family
(harness.families), sampling with ConceptAttention gives a latent bit-identical to
KSampler's with the same inputs, and captures every step."""
import pytest
import torch

from harness.families import TESTED

pytestmark = pytest.mark.model

CASES = [pytest.param(tested, tiny.name, id=tiny.name) for tested in TESTED for tiny in tested.tiny_models]


@pytest.mark.parametrize("tested, which", CASES)
@pytest.mark.parametrize("cfg", [1.0, 3.0])
@pytest.mark.parametrize("batch", [1, 2])
# The capture with and without the cross-attention baseline, each once per family and setting.
@pytest.mark.parametrize("sampler, baseline", [("euler", False), ("dpmpp_2m", True)])
def test_latent_is_bit_identical_to_ksampler(request, tested, which, cfg, batch, sampler, baseline):
    model, harness = request.getfixturevalue(which), tested.harness
    captured, capture = harness.run_capture(model, harness.concepts(), cfg=cfg, batch=batch, sampler=sampler,
                                            cross_attention=baseline)
    assert torch.equal(captured, harness.run_ksampler(model, cfg=cfg, batch=batch, sampler=sampler))
    assert capture.family == tested.name and capture.batch_size == batch and capture.captured_steps == (0, 1, 2, 3)
    assert capture.maps("cross_attention" if baseline else "concept_attention").shape[:2] == (batch, 3)
