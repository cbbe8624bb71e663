"""Other extensions on the same model, for every family: a block patch (patches_replace)
set before ours or after ours, and an attention override set before or after ours,
all keep running and keep their effect on the image, and the maps stay the same
whichever came first."""
import pytest
import torch

from concept_attention import hooks
from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.errors import NodeInputError
from concept_attention.hooks.call import CrossAttentionCall
from concept_attention.nodes.apply import ConceptAttentionApply
from concept_attention.nodes.report import ConceptReport
from concept_attention.nodes.sampler import ConceptAttentionSampler
from harness import sampling
from harness.checks import aggregate
from harness.families import once_per_model, one_model_each

pytestmark = pytest.mark.model
BLOCKS = 3                                                    # every tiny model has 3 joint blocks or more


def scaling_block_patch(calls: list, previous=None):
    """Another extension's block patch: scales the block's outputs (a visible effect)
    and counts its calls in `calls`. With `previous` it wraps the entry it replaced, as
    a careful extension does; otherwise it overwrites it and runs the block itself.
    (A function, as model clones may deep-copy other objects in their options.)"""
    def patch(args, extra):
        calls.append(args["transformer_options"].get("block_index"))
        out = previous(args, extra) if previous is not None else extra["original_block"](args)
        return {key: None if value is None else value * 1.01 for key, value in out.items()}   # SD3: no text at the end
    return patch


def with_block_patches(model, calls, wrap_previous=False):
    patched = model.clone()
    existing = patched.model_options["transformer_options"].get("patches_replace", {}).get("dit", {})
    for i in range(BLOCKS):
        patch = scaling_block_patch(calls, existing.get(("double_block", i)) if wrap_previous else None)
        patched.set_model_patch_replace(patch, "dit", "double_block", i)
    return patched


def apply_then_sample(family, model, concepts, add_others, keep=KEEP_ALL):
    """ConceptAttention Apply first, then `add_others(model)` on its output, then KSampler."""
    patched, capture = ConceptAttentionApply.execute(model, concepts, "all", "all", keep).args
    latent = family.run_ksampler(add_others(patched))
    return latent, capture


@pytest.mark.parametrize("tested, which", one_model_each(with_block_patches=True))
def test_block_patches_before_and_after_ours_keep_running(request, tested, which):
    family, model = tested.harness_of(which), request.getfixturevalue(which)
    concepts = family.concepts()
    calls = []
    others = with_block_patches(model, calls)
    expected = family.run_ksampler(others)                    # the other extension alone
    assert not torch.equal(expected, family.run_ksampler(model))
    alone = len(calls)

    before, capture_before = family.run_capture(others, concepts, layers="all", keep=KEEP_ALL)
    assert torch.equal(before, expected) and len(calls) == 2 * alone

    # Set after ours, overwriting our entries as many extensions do: both still run.
    after, capture_after = apply_then_sample(family, model, concepts, lambda patched: with_block_patches(patched, calls))
    assert torch.equal(after, expected) and len(calls) == 3 * alone
    assert torch.allclose(capture_after.scores[capture_after.methods[0]], capture_before.scores[capture_before.methods[0]])

    # A careful extension that calls the entry it replaced (ours): ours still runs once per block.
    careful, capture_careful = apply_then_sample(family, model, concepts,
                                                 lambda patched: with_block_patches(patched, calls, wrap_previous=True))
    assert torch.equal(careful, expected) and len(calls) == 4 * alone
    assert torch.allclose(capture_careful.scores[capture_careful.methods[0]], capture_before.scores[capture_before.methods[0]])
    # and our maps are those of the patched image: not the maps without the other extension
    plain = family.run_capture(model, concepts, layers="all", keep=KEEP_ALL)[1]
    assert not torch.allclose(plain.scores[plain.methods[0]], capture_before.scores[capture_before.methods[0]])


def scaling_override(calls):
    def override(func, *args, **kwargs):
        calls.append(args[0].shape[1])
        return func(*args, **kwargs) * 1.01
    return override


@pytest.mark.parametrize("tested, which", one_model_each())
def test_attention_overrides_before_and_after_ours_keep_running(request, tested, which):
    family, model = tested.harness_of(which), request.getfixturevalue(which)
    concepts = family.concepts()
    calls = []
    others = model.clone()
    others.model_options["transformer_options"]["optimized_attention_override"] = scaling_override(calls)
    expected = family.run_ksampler(others)
    assert not torch.equal(expected, family.run_ksampler(model))
    alone = len(calls)

    before, capture_before = family.run_capture(others, concepts, layers="all", keep=KEEP_ALL)
    assert torch.equal(before, expected) and len(calls) == 2 * alone

    def add_after(patched):
        clone = patched.clone()
        clone.model_options["transformer_options"]["optimized_attention_override"] = scaling_override(calls)
        return clone
    after, capture_after = apply_then_sample(family, model, concepts, add_after)
    assert torch.equal(after, expected) and len(calls) == 3 * alone
    assert torch.allclose(capture_after.scores[capture_after.methods[0]], capture_before.scores[capture_before.methods[0]])


# A failure of the capture never breaks sampling

@pytest.fixture(scope="module")
def plain_latents(request):
    """which -> KSampler's latent of that tiny model at cfg 3, 2 steps (computed once)."""
    return once_per_model(request, lambda harness, model: harness.run_ksampler(model, cfg=3.0, steps=2))


# Where an error is planted: the method of the family's ModelCall, for a joint-attention family and
# for a cross-attention one (Wan: no stream; its block step makes the concepts' keys).
PLANTED = {
    "making the call": ("__init__", "__init__"),
    "recording scores": ("record", "on_attention"),
    "a block's step": ("advance", "concept_keys"),
}


def planted_failure(self, *args, **kwargs):
    raise RuntimeError("planted")


@pytest.mark.parametrize("where", list(PLANTED))
@pytest.mark.parametrize("tested, which", one_model_each())
def test_a_failing_capture_still_gives_the_image_and_a_clear_error(request, monkeypatch, plain_latents, tested, which,
                                                                   where):
    family, model = tested.harness_of(which), request.getfixturevalue(which)
    expected = plain_latents(which)
    call_type = hooks.family_of(model).call_type
    name = PLANTED[where][issubclass(call_type, CrossAttentionCall)]
    monkeypatch.setattr(call_type, name, planted_failure)
    latent, capture = family.run_capture(model, family.concepts(), cfg=3.0, steps=2)
    assert torch.equal(latent, expected)
    assert capture.error == "RuntimeError: planted" and not capture.steps
    for run_node in (lambda: aggregate(capture), lambda: ConceptReport.execute(capture)):
        with pytest.raises(NodeInputError, match=r"› concept_attn: the capture failed during sampling, so there are "
                                                 r"no maps \(RuntimeError: planted\)\. The image was sampled as it "
                                                 r"would be without ConceptAttention"):
            run_node()
    monkeypatch.undo()
    assert not family.run_capture(model, family.concepts(), steps=1)[1].error       # the next run captures again


def test_a_nan_latent_gives_a_clear_message_on_the_maps(flux_dev):
    family = sampling.FLUX1
    latent = family.latent(1)
    latent["samples"][0, 0, 0, 0] = float("nan")
    out = ConceptAttentionSampler.execute(flux_dev, sampling.SEED, 2, 1.0, "euler", "simple", family.conditioning(1),
                                          family.conditioning(2), latent, 1.0, family.concepts(), "default", "all")
    capture = out.args[1]
    assert capture.nonfinite_steps == (0, 1)
    with pytest.raises(NodeInputError, match=r"Concept Heatmaps › concept_attn: the scores of steps 0, 1 hold NaN"):
        aggregate(capture)
