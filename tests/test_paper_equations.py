"""Every family's maps equal an independent recomputation from the paper's equations
(harness/paper_equations.py, plain torch with the block's own modules), within 1e-4 in
fp32: the raw scores of both methods (Wan: the cross-attention baseline) for every step and layer, and the maps, a
softmax over the concepts per (step, layer), then the mean. Over every tiny checkpoint
of harness.families, with and without CFG, batches of one and two, odd sizes."""
import math

import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.maths import METHODS
from harness.families import TESTED, expected_scores, recorded_inputs

pytestmark = pytest.mark.model

CASES = [pytest.param(tested, tiny.name, cfg, batch, size, id=f"{tiny.name}-cfg{cfg:g}-batch{batch}-{'x'.join(map(str, size))}")
         for tested in TESTED for tiny in tested.tiny_models for cfg, batch, size in tested.paper_cases]


@pytest.mark.parametrize("tested, which, cfg, batch, size", CASES)
def test_maps_equal_the_paper_equations(request, tested, which, cfg, batch, size):
    model = request.getfixturevalue(which)
    harness = tested.harness_of(which)
    concepts = harness.concepts()
    with recorded_inputs(model) as calls:
        _, capture = harness.run_capture(model, concepts, cfg=cfg, batch=batch, steps=2, layers="all", size=size,
                                         keep=KEEP_ALL, cross_attention=True)
    layers = tuple(range(len(capture.layers)))
    assert capture.layers == layers and len(capture.steps) == 2
    expected = {method: scores for method, scores in zip(METHODS, expected_scores(tested, model, calls, concepts, layers))
                if scores is not None}      # a cross-attention family (Wan) has the baseline only
    assert capture.methods == tuple(expected)
    for method, scores in expected.items():
        assert scores.shape == (2, len(layers), batch, 3, math.prod(capture.grid))
        torch.testing.assert_close(capture.scores[method], scores, atol=1e-4, rtol=1e-4)
    # The maps: a softmax over the concepts per (step, layer), then the mean.
    method, scores = next(iter(expected.items()))
    maps = capture.maps(method)
    assert maps.shape[:2] == (batch, 3) and maps.shape[-2:] == capture.grid[-2:]
    torch.testing.assert_close(maps.flatten(2), scores.softmax(dim=-2).mean(dim=(0, 1)), atol=1e-5, rtol=1e-5)
