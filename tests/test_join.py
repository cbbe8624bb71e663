"""Concept Join: a generation sampled in two parts (Wan 2.2 14B's high- and low-noise
models, each in a KSamplerAdvanced with ConceptAttention Apply) joined into one capture,
which equals one capture of every step; parts that overlap, leave steps out, or belong
to other latents or concepts are refused, naming the node and its inputs."""
import nodes as comfy_nodes
import pytest
import torch

from concept_attention.analysis.data import KEEP_ALL
from concept_attention.analysis.errors import NodeInputError
from concept_attention.nodes.apply import ConceptAttentionApply
from concept_attention.nodes.join import ConceptAttentionJoin
from harness.sampling import SEED, WAN21

pytestmark = pytest.mark.model
STEPS = 4


def sample_part(model, concepts, latent, start, end, keep=KEEP_ALL, last=True):
    """(LATENT, CONCEPT_ATTN) of KSamplerAdvanced over steps start..end of STEPS, with ConceptAttention Apply."""
    patched, capture = ConceptAttentionApply.execute(model, concepts, "default", "all", keep).args
    out = comfy_nodes.KSamplerAdvanced().sample(patched, "enable" if start == 0 else "disable", SEED, STEPS, 3.0,
                                                "euler", "simple", WAN21.conditioning(1), WAN21.conditioning(2), latent,
                                                start, end, "disable" if last else "enable")[0]
    return out, capture


def join(a, b):
    return ConceptAttentionJoin.execute(a, b).args[0]


@pytest.mark.parametrize("keep", [KEEP_ALL, "per_step_and_per_layer"])
def test_two_parts_joined_equal_one_capture_of_every_step(wan21, keep):
    concepts = WAN21.concepts()
    whole_latent, whole = sample_part(wan21, concepts, WAN21.latent(), 0, STEPS, keep)
    middle, high = sample_part(wan21, concepts, WAN21.latent(), 0, 2, keep, last=False)
    final, low = sample_part(wan21, concepts, middle, 2, STEPS, keep)
    # ComfyUI's split sampling matches the whole run to rounding (the latent leaves and re-enters the model's scale).
    torch.testing.assert_close(final["samples"], whole_latent["samples"])
    assert high.steps == (0, 1) and low.steps == (0, 1)      # each part counts from its own start
    for joined in (join(high, low), join(low, high)):
        assert joined.steps == whole.steps == (0, 1, 2, 3) and joined.schedule == pytest.approx(whole.schedule)
        assert joined.sigmas == pytest.approx(whole.sigmas)
        torch.testing.assert_close(joined.maps("cross_attention"), whole.maps("cross_attention"))
        torch.testing.assert_close(joined.maps("cross_attention", steps=(2, 3)),
                                   whole.maps("cross_attention", steps=(2, 3)))


@pytest.fixture(scope="module")
def parts(wan21):
    """Captures of steps 0-1, 2-3 and 1-3 of one generation, and of steps 0-1 of a smaller latent."""
    concepts = WAN21.concepts()
    middle, high = sample_part(wan21, concepts, WAN21.latent(), 0, 2, last=False)
    _, low = sample_part(wan21, concepts, middle, 2, STEPS)
    _, from_one = sample_part(wan21, concepts, middle, 1, STEPS)
    _, small = sample_part(wan21, concepts, WAN21.latent(1, 3, 4, 6), 0, 2, last=False)
    _, other_words = sample_part(wan21, WAN21.concepts(("cat", "dog", "sky")), middle, 2, STEPS)
    return {"high": high, "low": low, "from_one": from_one, "small": small, "other_words": other_words}


@pytest.mark.parametrize("a, b, inputs, says", [
    ("high", "from_one", "concept_attn_a and concept_attn_b", "overlap"),
    ("small", "low", "concept_attn_a and concept_attn_b", "different latents"),
    ("high", "other_words", "concept_attn_a and concept_attn_b", "different concepts (dragon, rock, sky and cat, dog, sky)"),
    ("high", "unsampled", "concept_attn_b", "holds no maps"),
])
def test_parts_of_other_generations_are_refused(wan21, parts, a, b, inputs, says):
    unsampled = ConceptAttentionApply.execute(wan21, WAN21.concepts(), "default", "all", KEEP_ALL).args[1]
    captures = {**parts, "unsampled": unsampled}
    with pytest.raises(NodeInputError) as error:
        join(captures[a], captures[b])
    assert str(error.value).startswith(f"Concept Join (high + low noise) › {inputs}: ") and says in str(error.value)


def test_one_capture_given_twice_is_refused(parts):
    with pytest.raises(NodeInputError, match="both inputs are the same capture. Give each part its own ConceptAttention Apply"):
        join(parts["high"], parts["high"])


def test_a_gap_between_the_parts_is_refused(wan21):
    concepts = WAN21.concepts()
    middle, high = sample_part(wan21, concepts, WAN21.latent(), 0, 1, last=False)
    _, low = sample_part(wan21, concepts, middle, 2, STEPS)
    with pytest.raises(NodeInputError, match="not consecutive.*steps between them are missing"):
        join(high, low)
