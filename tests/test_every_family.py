"""What every family guarantees beyond bit-identity and the paper's equations, on one
tiny model of each (harness/families.py): reordering the concepts permutes the maps and
changes nothing else; nothing of ours stays on the model after a run, an input error
or an interrupt; Encode Image reads an existing image into maps of its own size."""
import pytest
import torch

from concept_attention.analysis.data import ConceptSet
from concept_attention.nodes.encode_image import ConceptAttentionEncodeImage
from harness.checks import check_no_patch_remains
from harness.families import one_model_each

pytestmark = pytest.mark.model


@pytest.mark.parametrize("tested, which", one_model_each())
def test_reordering_the_concepts_permutes_the_maps(request, tested, which):
    model, harness = request.getfixturevalue(which), tested.harness_of(which)
    concepts = harness.concepts()
    order = [2, 0, 1]
    shuffled = ConceptSet(words=tuple(concepts.words[i] for i in order), embeddings=concepts.embeddings[order])
    latent_a, capture_a = harness.run_capture(model, concepts, cfg=3.0, batch=2, steps=2, cross_attention=True)
    latent_b, capture_b = harness.run_capture(model, shuffled, cfg=3.0, batch=2, steps=2, cross_attention=True)
    assert torch.equal(latent_a, latent_b)
    for method in capture_a.methods:
        torch.testing.assert_close(capture_b.maps(method), capture_a.maps(method)[:, order], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("tested, which", one_model_each())
def test_no_patch_remains_after_a_run_an_error_or_an_interrupt(request, tested, which):
    model, harness = request.getfixturevalue(which), tested.harness_of(which)
    concepts = harness.concepts()
    check_no_patch_remains(model, lambda: harness.run_capture(model, concepts, steps=2)[0],
                           lambda: harness.run_capture(model, concepts, steps=2, layers="99"),
                           lambda: harness.run_ksampler(model, steps=2))


# A random tiny VAE of each family's latent (tests/conftest.py tiny_vae).
VAE = {"Flux 1": "taef1", "Flux 2": "taef2", "SD3": "taesd3", "Qwen-Image": "taef1", "Chroma": "taef1",
       "Z-Image": "taef1", "CogVideoX": "taehv.safetensors", "HunyuanVideo": "taehv.safetensors", "Wan": "taehv.safetensors"}


@pytest.mark.parametrize("tested, which", one_model_each())
def test_encode_image_gives_maps_of_the_image(request, tiny_vae, tested, which):
    model, harness = request.getfixturevalue(which), tested.harness_of(which)
    image = torch.rand(1, 100, 70, 3, generator=torch.Generator().manual_seed(1))
    capture = ConceptAttentionEncodeImage.execute(model, tiny_vae(VAE[tested.name]), image, harness.concepts(), 0.5, 1,
                                                  0, "default", positive=harness.conditioning(1)).args[0]
    assert not capture.error and capture.steps == (0,) and capture.image_size == (100, 70)
    maps = capture.maps(capture.methods[0])
    assert maps.shape[:2] == (1, 3) and torch.allclose(maps.sum(dim=1), torch.ones_like(maps[:, 0]))
