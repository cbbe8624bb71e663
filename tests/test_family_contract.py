"""Every family in hooks.FAMILIES keeps the family contract (hooks/family.py), and
every family is tested: tiny checkpoints that ComfyUI builds as that family, cases in
the bit-identity test and in the paper-equation test (harness/families.py)."""
import importlib.util
import inspect

import pytest
from test_identical_latents import CASES as IDENTICAL_LATENT_CASES
from test_paper_equations import CASES as PAPER_EQUATION_CASES

from concept_attention import hooks
from concept_attention.analysis import maths
from concept_attention.hooks.call import CrossAttentionCall, ModelCall
from concept_attention.hooks.family import APPLY_MODEL, DIFFUSION_MODEL, Family
from concept_attention.hooks.text import TextEncoding
from harness.families import BY_NAME

pytestmark = pytest.mark.model
FAMILIES = [pytest.param(family, id=family.name) for family in hooks.FAMILIES]


def family_contract_errors(family) -> list:
    """What `family` lacks of the contract, in words (empty when it keeps it)."""
    errors = []
    if not isinstance(family, Family):
        return [f"{family!r} is not a hooks.family.Family"]
    if not (isinstance(family.call_type, type) and issubclass(family.call_type, ModelCall)):
        errors.append("call_type is not a ModelCall subclass")
    elif issubclass(family.call_type, CrossAttentionCall):
        errors += [f"{family.call_type.__name__} does not define {name}" for name in ("concept_keys", "text_attention")
                   if getattr(family.call_type, name) is getattr(CrossAttentionCall, name)]
        if maths.CONCEPT_ATTENTION in family.methods:
            errors.append("a cross-attention model cannot give ConceptAttention's maps")
    elif family.call_type.block_concepts is ModelCall.block_concepts:
        errors.append(f"{family.call_type.__name__} does not define block_concepts")
    for name in ("matches", "blocks", "default_layers", "context_width", "text_encoding", "patch_size", "max_patches",
                 "latent_downscale", "latents_per_token"):
        if not callable(getattr(family, name)):
            errors.append(f"{name} is not callable")
    for name in ("name", "default_layers_text", "text_encoder"):
        if not (isinstance(getattr(family, name), str) and getattr(family, name).strip()):
            errors.append(f"{name} is empty")
    if family.call_wrapper not in (DIFFUSION_MODEL, APPLY_MODEL):
        errors.append(f"call_wrapper {family.call_wrapper!r} is neither DIFFUSION_MODEL nor APPLY_MODEL")
    if not (isinstance(family.frames_per_latent, int) and family.frames_per_latent >= 1):
        errors.append("frames_per_latent is not a positive whole number")
    for count in (1, 2, 8, 19, 60):
        layers = family.default_layers(count) if callable(family.default_layers) else ()
        if not layers or list(layers) != sorted(set(layers)) or not all(0 <= i < count for i in layers):
            errors.append(f"default_layers({count}) = {layers!r} is not a non-empty increasing run of block indices")
            break
    return errors


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_keeps_the_contract(family):
    assert family_contract_errors(family) == []


def test_a_family_that_breaks_the_contract_is_told_what_it_lacks():
    family = hooks.FAMILIES[0]
    broken = Family(name="", matches=family.matches, call_type=ModelCall, blocks=family.blocks,
                    default_layers=lambda count: (count,), default_layers_text="x", context_width=family.context_width,
                    text_encoding=family.text_encoding, text_encoder="x", latent_downscale=8, call_wrapper="elsewhere",
                    frames_per_latent=0)
    assert family_contract_errors(broken) == [
        "ModelCall does not define block_concepts", "latent_downscale is not callable", "name is empty",
        "call_wrapper 'elsewhere' is neither DIFFUSION_MODEL nor APPLY_MODEL",
        "frames_per_latent is not a positive whole number",
        "default_layers(1) = (1,) is not a non-empty increasing run of block indices"]


def test_family_names_are_unique_and_named_in_messages():
    names = [family.name for family in hooks.FAMILIES]
    assert len(set(names)) == len(names)
    listed = hooks.family_names()
    assert all(name in listed for name in names)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_tested(request, family):
    tested = BY_NAME.get(family.name)
    assert tested is not None, f"{family.name} has no entry in harness/families.py TESTED"
    assert tested.tiny_models, f"{family.name} has no tiny checkpoint"
    buildable = [tiny for tiny in tested.tiny_models if tiny.missing() is None]   # the others skip, saying why
    assert buildable, f"this ComfyUI can build none of {family.name}'s tiny checkpoints"
    for tiny in buildable:
        model = request.getfixturevalue(tiny.name)
        assert hooks.family_of(model) is family, f"the tiny model {tiny.name} is not built as {family.name}"
        dm = model.model.diffusion_model
        assert family.layer_count(dm) >= 3, f"{tiny.name}: at least 3 blocks, so that a stream passes through some"
        assert family.context_width(dm) == tested.harness_of(tiny.name).text_width, \
            f"{tiny.name}: the harness builds text of another width"
    assert {case.values[1] for case in IDENTICAL_LATENT_CASES if case.values[0] is tested} == \
        {tiny.name for tiny in tested.tiny_models}, f"{family.name} lacks bit-identity cases"
    assert {case.values[1] for case in PAPER_EQUATION_CASES if case.values[0] is tested} == \
        {tiny.name for tiny in tested.tiny_models}, f"{family.name} lacks paper-equation cases"
    assert inspect.signature(tested.paper_scores).parameters.keys() == {"dm", "inputs", "concepts", "layers"}


def test_a_tested_family_is_missing_only_where_this_comfyui_lacks_its_model_code():
    available = {family.name for family in hooks.FAMILIES}
    assert set(BY_NAME) == available | set(hooks.UNAVAILABLE) and not available & set(hooks.UNAVAILABLE)
    # CogVideoX, the one family ComfyUI 0.3.75 lacks: listed exactly where its model code exists.
    has_cogvideox = importlib.util.find_spec("comfy.ldm.cogvideo") is not None
    assert ("CogVideoX" in available) == has_cogvideox
    assert all("update ComfyUI" in why for why in hooks.UNAVAILABLE.values())


def test_text_encoding_is_none_for_another_families_encoder(flux_clip):
    found = [family.name for family in hooks.FAMILIES if isinstance(family.text_encoding(flux_clip), TextEncoding)]
    assert found == ["Flux 1"]
