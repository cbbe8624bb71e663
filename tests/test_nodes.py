"""Node behaviour a user sees: encoding, heatmap outputs, overlays and clear errors
(that no patch of ours remains after a run: tests/test_every_family.py)."""
import re

import comfy.model_management
import comfy.model_patcher
import comfy.supported_models
import pytest
import torch

from concept_attention import hooks
from concept_attention.analysis import viewer_data
from concept_attention.analysis.errors import NodeInputError
from concept_attention.analysis.render import concept_colours
from concept_attention.analysis.viewer_data import BUDGET_BYTES
from concept_attention.nodes import NODES
from concept_attention.nodes.aggregate import HeatmapAggregate
from concept_attention.nodes.encode import ConceptEncode
from concept_attention.nodes.overlay import HeatmapOverlay
from concept_attention.nodes.sampler import ConceptAttentionSampler
from concept_attention.nodes.viewer import UI_KEY, ConceptAttentionViewer
from harness.checks import aggregate
from harness.sampling import FLUX1

pytestmark = pytest.mark.model

conditioning, latent, run_capture = FLUX1.conditioning, FLUX1.latent, FLUX1.run_capture


@pytest.fixture(scope="module")
def concepts(flux_clip):
    return ConceptEncode.execute(flux_clip, "dragon, rock\nsky").args[0]


@pytest.fixture(scope="module")
def capture(flux_dev, concepts):
    return run_capture(flux_dev, concepts, batch=2, size=(16, 12))[1]


# Every node

@pytest.mark.parametrize("node", NODES, ids=lambda n: n.__name__)
def test_every_input_and_output_has_a_tooltip(node):
    schema = node.define_schema()
    assert schema.display_name and schema.category.startswith("ConceptAttention/") and schema.description
    aliases = getattr(schema, "search_aliases", None)      # None: ComfyUI 0.3.75's schema has no aliases
    assert schema.display_name.startswith("Concept") and (aliases is None or len(aliases) >= 3)
    undocumented = [i.id for i in schema.inputs if not i.tooltip] + \
                   [o.display_name for o in schema.outputs if not o.tooltip]
    assert not undocumented


# Words an artist does not use; a tooltip may give them after its plain first sentence.
JARGON = ("softmax", "MiB", "RoPE", "Jaccard", "queries", "embedding", "bilinear", "standard deviation", "forward pass",
          "token", "CONCEPT_ATTN", "DiT")


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.__name__)
def test_every_tooltip_starts_in_plain_words(node):
    schema = node.define_schema()
    tips = {f"{spec.id}": spec.tooltip for spec in schema.inputs} | {o.display_name: o.tooltip for o in schema.outputs}
    first_sentences = {name: re.split(r"\. |\(", tip)[0] for name, tip in tips.items()}
    technical = {name: word for name, sentence in first_sentences.items() for word in JARGON if word in sentence}
    assert not technical, technical


# ConceptEncode

def test_encode_takes_each_words_first_token(flux_clip, concepts):
    assert concepts.words == ("dragon", "rock", "sky") and concepts.embeddings.shape == (3, 64)
    alone = flux_clip.encode_from_tokens(flux_clip.tokenize("rock"))
    assert torch.equal(concepts.embeddings[1], alone[0, 0])


def test_encode_mean_pools_a_split_word(flux_clip):
    word = "skyscraper"      # four T5 tokens
    cond = flux_clip.encode_from_tokens(flux_clip.tokenize(word))
    first = ConceptEncode.execute(flux_clip, word, "first_token").args[0].embeddings[0]
    mean = ConceptEncode.execute(flux_clip, word, "mean").args[0].embeddings[0]
    assert torch.equal(first, cond[0, 0])
    assert torch.allclose(mean, cond[0, :4].mean(dim=0))


@pytest.mark.parametrize("text, message", [
    ("  ,\n", "Concept Encode › concepts: no concepts given"),
    ("sky, rock, Sky", "Concept Encode › concepts: concept 'Sky' is given twice"),
])
def test_encode_rejects_bad_concepts(flux_clip, text, message):
    with pytest.raises(NodeInputError, match=message):
        ConceptEncode.execute(flux_clip, text)


def test_encode_needs_a_working_text_encoder(flux_clip):
    with pytest.raises(NodeInputError, match="Concept Encode › clip: no text encoder is connected"):
        ConceptEncode.execute(None, "sky")

    class Broken:
        def tokenize(self, text, return_word_ids=False):
            raise RuntimeError("weights missing")

    with pytest.raises(NodeInputError, match="Concept Encode › clip: this text encoder could not encode 'sky': weights missing"):
        ConceptEncode.execute(Broken(), "sky")


# HeatmapAggregate and HeatmapOverlay

def test_aggregate_outputs_are_image_major_batches(capture):
    heatmaps, soft, argmax, _, labels, maps = aggregate(capture)
    assert heatmaps.shape == (6, 128, 96, 3) and soft.shape == argmax.shape == (6, 128, 96)
    assert labels.splitlines() == ["dragon", "rock", "sky"] * 2
    assert soft.min() >= 0 and soft.max() <= 1
    expected = capture.maps()
    assert torch.allclose(maps.maps[1, 2].mean(), soft[5].mean())
    # per-concept normalisation stretches every map to the full 0..1 range
    assert torch.allclose(soft.flatten(1).amax(dim=1), torch.ones(6))
    _, joint, argmax, _, _, _ = aggregate(capture, normalization="joint", size="latent_grid")
    assert joint.shape == argmax.shape == (6, 8, 6)
    # joint normalisation keeps the ranking of concepts; argmax follows the raw maps
    assert torch.equal(joint.reshape(2, 3, 8, 6).argmax(dim=1), expected.argmax(dim=1))
    assert torch.equal(argmax.reshape(2, 3, 8, 6).argmax(dim=1), expected.argmax(dim=1))


def test_argmax_masks_partition_each_image(capture):
    argmax = aggregate(capture)[2].reshape(2, 3, 128, 96)
    assert torch.equal(argmax.sum(dim=1), torch.ones(2, 128, 96))
    assert set(argmax.unique().tolist()) == {0.0, 1.0}


def test_segmentation_picture_paints_each_region_in_its_concepts_colour(capture):
    def outputs(label):
        return HeatmapAggregate.execute(capture, "all", "all", "concept_attention", "per_concept", "image", "plasma",
                                        label=label).args
    argmax, plain = outputs(False)[2].reshape(2, 3, 128, 96), outputs(False)[6]
    colours = torch.tensor(concept_colours(("dragon", "rock", "sky"))) / 255.0
    assert plain.shape == (2, 128, 96, 3) and torch.allclose(plain, colours[argmax.argmax(dim=1)], atol=1e-6)
    labelled = outputs(True)[6]
    written = (labelled != plain).any(dim=-1)              # the word boxes: black with white text
    for image in range(2):
        regions = [c for c in range(3) if argmax[image, c].any()]
        assert 0 < written[image].float().mean() < 0.05 * len(regions)
        assert (labelled[image][written[image]] == 0).all(dim=-1).any()


def test_aggregate_subsets_and_methods_differ(flux_dev, concepts, capture):
    with_baseline = run_capture(flux_dev, concepts, batch=2, size=(16, 12), cross_attention=True)[1]
    full = aggregate(capture, size="latent_grid")[1]
    assert torch.equal(aggregate(with_baseline, size="latent_grid")[1], full)
    one_step = aggregate(capture, timesteps="3", size="latent_grid")[1]
    cross = aggregate(with_baseline, method="cross_attention", size="latent_grid")[1]
    assert not torch.allclose(full, one_step) and not torch.allclose(full, cross)


def test_the_cross_attention_baseline_is_recorded_only_when_asked(capture):
    assert capture.methods == ("concept_attention",) and set(capture.layer_sums) == {"concept_attention"}
    with pytest.raises(NodeInputError, match=r"Concept Heatmaps › method: this capture did not record cross_attention: "
                                             r"turn on cross_attention_baseline"):
        aggregate(capture, method="cross_attention")


@pytest.mark.parametrize("layers, timesteps, message", [
    ("7", "all", r"Concept Heatmaps › layers: layer 7 is out of range: valid layers are 0-2"),
    ("all", "9", r"Concept Heatmaps › timesteps: timestep 9 is out of range: valid timesteps are 0-3"),
    ("x", "all", "Concept Heatmaps › layers: 'x' is not a layer index"),
])
def test_aggregate_rejects_uncaptured_selections(capture, layers, timesteps, message):
    with pytest.raises(NodeInputError, match=message):
        aggregate(capture, layers=layers, timesteps=timesteps)


def test_overlay_labels_each_concept(capture):
    maps = aggregate(capture)[5]
    image = torch.full((2, 128, 96, 3), 0.5)
    plain = HeatmapOverlay.execute(image, maps, 0.5, "plasma", False).args[0]
    labelled = HeatmapOverlay.execute(image, maps, 0.5, "plasma", True).args[0]
    assert plain.shape == labelled.shape == (6, 128, 96, 3)
    corner = (labelled[:, :6, :20] - plain[:, :6, :20]).abs().amax()
    assert corner > 0.2 and torch.equal(labelled[:, 64:], plain[:, 64:])
    only_image = HeatmapOverlay.execute(image, maps, 0.0, "plasma", False).args[0]
    assert torch.allclose(only_image, torch.full_like(only_image, 0.5))


def test_overlay_rejects_a_mismatched_batch(capture):
    maps = aggregate(capture)[5]
    with pytest.raises(NodeInputError, match="Concept Overlay › image: 3 images for maps of 2"):
        HeatmapOverlay.execute(torch.zeros(3, 64, 64, 3), maps, 0.5, "plasma", True)


# ConceptAttentionViewer

def _decode(data_url):
    import base64
    import io

    import numpy
    from PIL import Image

    picture = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    return torch.from_numpy(numpy.asarray(picture).copy())


def test_viewer_views_are_the_aggregate_maps_in_8_bits(capture):
    view = ConceptAttentionViewer.execute(capture, torch.full((2, 128, 96, 3), 0.5)).ui[UI_KEY][0]
    assert view["concepts"] == ["dragon", "rock", "sky"] and view["grid"] == [8, 6] and view["batch"] == 2
    assert view["views"] == ["all steps and layers"] + [f"step {s}" for s in capture.captured_steps] + \
        [f"layer {layer}" for layer in capture.layers]
    subsets = [(None, None)] + [([s], None) for s in capture.captured_steps] + [(None, [layer]) for layer in capture.layers]
    for sheet, (steps, layers) in zip(view["maps"], subsets, strict=True):
        # tiles: a row per image, a column per concept, each the token grid
        tiles = _decode(sheet).reshape(2, 8, 3, 6).permute(0, 2, 1, 3).float() / 255
        assert (tiles - capture.maps(steps=steps, layers=layers)).abs().max() <= 0.5 / 255 + 1e-6
    assert [_decode(p).shape for p in view["pictures"]] == [(128, 96, 3)] * 2


@pytest.mark.parametrize("budget", [BUDGET_BYTES, 1_000_000])
def test_viewer_payload_keeps_to_its_budget(capture, budget, monkeypatch):
    # Noise is the worst case for JPEG: the pictures give up quality to fit what the maps leave.
    # (Two such pictures at the best quality just fit in 2 MB; the smaller budget needs the fallback.)
    monkeypatch.setattr(viewer_data, "BUDGET_BYTES", budget)
    noise = torch.rand(2, 1024, 1024, 3, generator=torch.Generator().manual_seed(0))
    view = ConceptAttentionViewer.execute(capture, noise).ui[UI_KEY][0]
    assert sum(map(len, view["maps"] + view["pictures"])) <= budget
    assert [_decode(p).shape for p in view["pictures"]] == [(1024, 1024, 3)] * 2


def test_viewer_asks_for_the_baseline_it_was_not_given(capture):
    with pytest.raises(NodeInputError, match=r"ConceptAttention Viewer › method: this capture did not record "
                                             r"cross_attention: turn on cross_attention_baseline"):
        ConceptAttentionViewer.execute(capture, torch.zeros(2, 128, 96, 3), method="cross_attention")


def test_viewer_rejects_a_mismatched_batch(capture):
    with pytest.raises(NodeInputError, match=r"ConceptAttention Viewer › images: 3 images for maps of 2 images"):
        ConceptAttentionViewer.execute(capture, torch.zeros(3, 128, 96, 3))


# Sampler errors and hygiene

def sample(model, concepts, layers="default", timesteps="all", size=(16, 16), steps=4):
    return ConceptAttentionSampler.execute(model, 0, steps, 1.0, "euler", "simple", conditioning(1), conditioning(2),
                                           latent(1, *size), 1.0, concepts, layers, timesteps)


@pytest.fixture(scope="module")
def tiny_sdxl():
    config = {"model_channels": 32, "use_linear_in_transformer": True, "transformer_depth": [0, 1], "context_dim": 64,
              "adm_in_channels": 2816, "use_temporal_attention": False, "in_channels": 4, "out_channels": 4,
              "num_res_blocks": [1, 1], "channel_mult": [1, 2], "transformer_depth_output": [0, 0, 1, 1],
              "num_head_channels": 16, "transformer_depth_middle": 1, "use_spatial_transformer": True,
              "legacy": False, "num_classes": "sequential", "image_size": 32}
    model = comfy.supported_models.SDXL(config).get_model({})
    return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))


def test_unsupported_model_lists_the_supported_families(tiny_sdxl, concepts):
    with pytest.raises(NodeInputError, match=r"ConceptAttention Sampler › model: SDXL \(UNetModel\) is not a supported "
                                             r"model; .*joint-attention transformer: Flux 1.* or, for cross-attention "
                                             r"maps only, Wan"):
        sample(tiny_sdxl, concepts)


def test_encode_names_an_encoder_it_cannot_read_and_those_it_can(flux_clip, monkeypatch):
    """An encoder no family knows, whose output does not line up with any of its token streams
    (HunyuanVideo 1.0's LLaVA, which crops its template, is one)."""
    monkeypatch.setattr(hooks, "text_encoding", lambda clip, tokens, length: None)
    with pytest.raises(NodeInputError, match=r"Concept Encode › clip: this text encoder \(FluxClipModel_?\w*\) is not "
                                             r"one Concept Encode knows.*It knows: Flux 1: the CLIP-L \+ T5 pair.*Wan: umT5-XXL"):
        ConceptEncode.execute(flux_clip, "sky")


@pytest.mark.parametrize("kwargs, message", [
    (dict(layers="3"), "ConceptAttention Sampler › layers: layer 3 is out of range: valid layers are 0-2 .*3 joint-attention blocks"),
    (dict(layers="1-x"), "ConceptAttention Sampler › layers: '1-x' is not a layer index or range"),
    (dict(timesteps="4"), r"ConceptAttention Sampler › timesteps: timestep 4 is out of range: valid timesteps are 0-3 .*runs 4 steps"),
    (dict(size=(16, 15)), "ConceptAttention Sampler › latent_image: latent size 15x16 is not a multiple of the model's 2x2 patch; .*multiples of 16 px"),
    (dict(concepts=None), "ConceptAttention Sampler › concepts: connect the output of a Concept Encode node"),
])
def test_sampler_rejects_bad_input(flux_dev, concepts, kwargs, message):
    kwargs = {"concepts": concepts, **kwargs}
    with pytest.raises(NodeInputError, match=message):
        sample(flux_dev, **kwargs)
