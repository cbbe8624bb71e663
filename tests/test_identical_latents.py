"""The image is unchanged: for every tiny checkpoint of every family
(harness.families), sampling with ConceptAttention gives a latent bit-identical to
KSampler's with the same inputs, and captures every step."""
import pytest
import torch

from concept_attention import hooks
from concept_attention.analysis.maths import CONCEPT_ATTENTION, METHODS
from harness.families import TESTED

pytestmark = pytest.mark.model

# Every pair of values of (cfg, batch, sampler with or without the cross-attention
# baseline) appears once on each family's first tiny model: 4 runs instead of the 8 of
# every combination. Its other tiny models (a variant's own code path: SD3.5's attn2,
# CogVideoX 1.5's frame pairs, ...) take two runs that still cover every value.
SETTINGS = [(1.0, 1, "euler", False), (3.0, 2, "euler", False), (1.0, 2, "dpmpp_2m", True), (3.0, 1, "dpmpp_2m", True)]
VARIANT_SETTINGS = [SETTINGS[1], (1.0, 1, "dpmpp_2m", True)]
CASES = [pytest.param(tested, tiny.name, *setting, id=f"{tiny.name}-cfg{setting[0]:g}-batch{setting[1]}-{setting[2]}")
         for tested in TESTED for number, tiny in enumerate(tested.tiny_models)
         for setting in (SETTINGS if number == 0 else VARIANT_SETTINGS)]


@pytest.mark.parametrize("tested, which, cfg, batch, sampler, baseline", CASES)
def test_latent_is_bit_identical_to_ksampler(request, tested, which, cfg, batch, sampler, baseline):
    model, harness = request.getfixturevalue(which), tested.harness_of(which)
    # dpmpp_2m's second-order update needs 3 steps (the first and the last are first-order).
    steps = 3 if sampler == "dpmpp_2m" else 2
    captured, capture = harness.run_capture(model, harness.concepts(), cfg=cfg, batch=batch, sampler=sampler,
                                            steps=steps, cross_attention=baseline)
    assert torch.equal(captured, harness.run_ksampler(model, cfg=cfg, batch=batch, sampler=sampler, steps=steps))
    assert capture.family == tested.name and capture.batch_size == batch
    assert capture.captured_steps == tuple(range(steps))
    # A cross-attention family (Wan) records its one method either way.
    family_methods = hooks.family_of(model).methods
    expected = (METHODS if baseline else (CONCEPT_ATTENTION,)) if CONCEPT_ATTENTION in family_methods else family_methods
    assert capture.methods == expected
    assert capture.maps(capture.methods[-1]).shape[:2] == (batch, 3)
