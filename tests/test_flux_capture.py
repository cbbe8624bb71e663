"""ConceptAttentionSampler on tiny Flux 1 checkpoints loaded by ComfyUI's own loader:
kept sums, batches, CFG, layouts, multi-stage samplers. (For every family: identical
latents in test_identical_latents.py, the paper's equations in test_paper_equations.py.)"""
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL, KEEP_SUMS
from concept_attention.hooks import capture as capture_core
from harness.families import BY_NAME, expected_scores, recorded_inputs
from harness.sampling import FLUX1

pytestmark = pytest.mark.model
run_capture, run_ksampler = FLUX1.run_capture, FLUX1.run_ksampler


@pytest.fixture(scope="module")
def concepts():
    return FLUX1.concepts()


def test_kept_sums_give_the_paper_maps_of_every_step_or_layer_subset(flux_dev, concepts):
    """keep=per_step_and_per_layer stores sums; its maps for all, a step subset and a
    layer subset equal the softmax-then-mean of the paper-equation scores."""
    with recorded_inputs(flux_dev) as calls:
        _, capture = run_capture(flux_dev, concepts, cfg=3.0, batch=2, steps=3, layers="all", size=(16, 12),
                                 cross_attention=True)
    assert capture.keep == KEEP_SUMS and not capture.scores and len(calls) == 3
    expected_both = expected_scores(BY_NAME["Flux 1"], flux_dev, calls, concepts, (0, 1, 2))
    for method, expected in zip(("concept_attention", "cross_attention"), expected_both):
        softmaxed = expected.softmax(dim=-2)                               # [E, L, B, C, P]
        for layers, steps, want in [(None, None, softmaxed.mean(dim=(0, 1))),
                                    (None, [0, 2], softmaxed[[0, 2]].mean(dim=(0, 1))),
                                    ([1], None, softmaxed[:, [1]].mean(dim=(0, 1)))]:
            got = capture.maps(method, layers=layers, steps=steps).flatten(2)
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="choose a subset of the layers or of the timesteps, not both"):
        capture.maps(layers=[1], steps=[0])
    with pytest.raises(ValueError, match="maps without the softmax need the raw scores"):
        capture.maps(softmax=False)


@pytest.mark.parametrize("flags, batch, rows, chunks", [
    ([0], 2, slice(0, 2), 1), ([1, 0], 4, slice(2, 4), 1), ([0, 1], 2, slice(0, 1), 1),
    ([1, 0, 0], 3, slice(1, 3), 2), ([0, 1, 0], 6, [0, 1, 4, 5], 2), ([1], 2, None, 0)])
def test_conditional_rows_are_a_slice_when_they_are_one_run(flags, batch, rows, chunks):
    got_rows, got_chunks = capture_core.conditional_rows({"cond_or_uncond": flags}, batch)
    assert got_chunks == chunks
    if isinstance(rows, list):                     # not one run: an index tensor
        assert got_rows.tolist() == rows
    else:
        assert got_rows == rows


def test_rows_as_an_index_give_the_maps_of_rows_as_a_slice(flux_dev, concepts, monkeypatch):
    """Conditional rows that are not one run are selected by an index (a copy) instead of
    a slice (a view): the same scores."""
    _, by_slice = run_capture(flux_dev, concepts, cfg=3.0, batch=2, steps=2, keep=KEEP_ALL)
    as_slice = capture_core.conditional_rows

    def as_index(transformer_options, batch):
        rows, chunks = as_slice(transformer_options, batch)
        return (None if rows is None else torch.arange(batch)[rows]), chunks

    monkeypatch.setattr(capture_core, "conditional_rows", as_index)
    _, by_index = run_capture(flux_dev, concepts, cfg=3.0, batch=2, steps=2, keep=KEEP_ALL)
    for method in by_slice.scores:
        torch.testing.assert_close(by_index.scores[method], by_slice.scores[method], atol=0, rtol=0)


def test_batch_images_get_their_own_maps(flux_dev, concepts):
    _, capture = run_capture(flux_dev, concepts, batch=2, size=(16, 12))
    maps = capture.maps()
    assert maps.shape == (2, 3, 8, 6)
    assert not torch.allclose(maps[0], maps[1])
    assert torch.allclose(maps.sum(dim=1), torch.ones(2, 8, 6))


def test_layers_and_timesteps_are_selected(flux_dev, concepts):
    _, capture = run_capture(flux_dev, concepts, layers="1-2", timesteps="1,3", keep=KEEP_ALL)
    assert capture.layers == (1, 2) and capture.captured_steps == (1, 3)
    assert capture.maps(layers=[2], steps=[3]).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"layers \[0\] were not captured"):
        capture.maps(layers=[0])


def test_default_layers_are_the_last_four_of_a_small_model(flux_dev, concepts):
    _, capture = run_capture(flux_dev, concepts)
    assert capture.layers == (0, 1, 2)    # the tiny model has 3 double blocks


def test_extra_evaluations_count_toward_the_step_of_their_noise_level(flux_dev, concepts):
    latent_out, capture = run_capture(flux_dev, concepts, sampler="heun", steps=3)
    assert torch.equal(latent_out, run_ksampler(flux_dev, sampler="heun", steps=3))
    # Heun evaluates at sigma_i, then corrects at sigma_i+1 (none after the last step):
    # each evaluation counts toward the schedule step of its noise level.
    assert capture.steps == (0, 1, 1, 2, 2)
    assert capture.sigmas[1] == capture.sigmas[2]


def test_capture_size_is_what_it_stores(flux_dev, concepts):
    _, everything = run_capture(flux_dev, concepts, batch=2, layers="all", keep=KEEP_ALL)
    assert everything.scores["concept_attention"].shape == (4, 3, 2, 3, 64)     # [E, L, B, C, P]
    assert everything.nbytes == 4 * 3 * 2 * 3 * 64 * 4                           # one method, fp32
    _, sums = run_capture(flux_dev, concepts, batch=2, layers="all", cross_attention=True)
    assert sums.step_sums["concept_attention"].shape == (4, 2, 3, 64)           # [E, B, C, P]
    assert sums.layer_sums["cross_attention"].shape == (3, 2, 3, 64)            # [L, B, C, P]
    assert sums.nbytes == 2 * (4 + 3) * 2 * 3 * 64 * 4                          # two methods
    stored = [*everything.scores.values(), *sums.step_sums.values(), *sums.layer_sums.values()]
    assert all(s.device.type == "cpu" and s.dtype == torch.float32 for s in stored)


def test_existing_block_patches_still_run(flux_dev, concepts):
    seen = []

    def other_patch(args, extra):
        seen.append(args["transformer_options"]["block_index"])
        return extra["original_block"](args)

    patched = flux_dev.clone()
    for i in range(3):
        patched.set_model_patch_replace(other_patch, "dit", "double_block", i)
    expected = run_ksampler(patched)
    runs = len(seen)
    captured, capture = run_capture(patched, concepts)
    assert torch.equal(captured, expected)
    assert len(seen) == 2 * runs and capture.captured_steps == (0, 1, 2, 3)
