"""The shipped demo model (demo/weights) through ComfyUI's own loaders and sampler.

Thresholds come from measurements of the shipped weights (docs/demo-model.md),
with margin.
"""
import numpy as np
import pytest
import torch

from concept_attention.demo import scenes
from concept_attention.demo.model import load_config, load_demo

pytestmark = pytest.mark.model

# Measured on the shipped weights: see docs/demo-model.md ("Tests").
VAE_PSNR_FLOOR = 21.0


@pytest.fixture(scope="module")
def demo():
    return load_demo()


@pytest.fixture(scope="module")
def config():
    return load_config()


def _encode(clip, text):
    return clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)


def test_loaded_as_flux_schnell_at_its_config(demo, config):
    model, _, _ = demo
    assert type(model.model.model_config).__name__ == "FluxSchnell"
    dm = model.model.diffusion_model
    p = dm.params
    want = config["dit"]
    assert (p.hidden_size, p.num_heads, p.depth, p.depth_single_blocks, p.patch_size) == (
        want["hidden_size"], want["num_heads"], want["depth"], want["depth_single_blocks"], want["patch_size"])
    assert (p.context_in_dim, p.vec_in_dim, list(p.axes_dim)) == (64, 64, want["axes_dim"])
    assert not p.guidance_embed


def test_built_from_config_equals_the_stock_loader_where_it_can(tmp_path, monkeypatch):
    """Where this host's loader cannot size a Flux checkpoint (ComfyUI 0.3.75 fixes 24
    heads; every version fixes Flux 1's patch size at 2), load_flux builds ComfyUI's Flux
    from its config: the same model as the loader's where the loader can (here a tiny
    Flux on ComfyUI 0.33)."""
    import comfy.utils

    from concept_attention.demo import model as demo_model
    from harness import tiny_models

    config = tiny_models.flux_config(guidance=False)
    path = tiny_models.build_flux(tmp_path / "tiny.safetensors", guidance=False)
    if not demo_model.stock_loader_builds(comfy.utils.load_torch_file(str(path)), config):
        pytest.skip("this ComfyUI's loader fixes Flux at 24 heads")
    stock = demo_model.load_flux(path, config)
    monkeypatch.setattr(demo_model, "stock_loader_builds", lambda *args: False)
    built = demo_model.load_flux(path, config)
    assert type(built.model.model_config).__name__ == type(stock.model.model_config).__name__ == "FluxSchnell"
    assert torch.equal(built.model.model_sampling.sigmas, stock.model.model_sampling.sigmas)
    gen = torch.Generator().manual_seed(0)
    x, sigma = torch.randn(1, 16, 16, 16, generator=gen), torch.tensor([0.5])
    cond, pooled = torch.randn(1, 32, 64, generator=gen), torch.randn(1, 64, generator=gen)
    with torch.no_grad():
        want = stock.model.apply_model(x, sigma, c_crossattn=cond, y=pooled)
        got = built.model.apply_model(x, sigma, c_crossattn=cond, y=pooled)
    assert torch.equal(got, want)


def test_a_patch_size_the_stock_loader_cannot_size_is_built_from_config(tmp_path):
    """A Flux 1 with patch 1 (demo/train.py --architecture patch1): ComfyUI's detection
    would take it for patch 2 with a quarter of its input channels."""
    import comfy.model_detection
    import comfy.utils

    from concept_attention.demo import model as demo_model
    from harness import tiny_models

    config = {**tiny_models.flux_config(guidance=False), "patch_size": 1}
    path = tiny_models.build_flux(tmp_path / "patch1.safetensors", guidance=False, config=config)
    sd = comfy.utils.load_torch_file(str(path))
    assert comfy.model_detection.detect_unet_config(sd, "")["patch_size"] == 2
    assert not demo_model.stock_loader_builds(sd, config)
    model = demo_model.load_flux(path, config)
    assert model.model.diffusion_model.patch_size == 1
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        out = model.model.apply_model(x, torch.tensor([0.5]), c_crossattn=torch.randn(1, 8, 64), y=torch.zeros(1, 64))
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_functional_forward_matches_flux(demo):
    """demo/train.py trains through flux_forward; it must equal Flux.forward."""
    from concept_attention.demo.train import flux_forward

    model, clip, _ = demo
    dm = model.model.diffusion_model
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 16, 16, generator=gen)
    sigma = torch.tensor([0.3, 0.8])
    cond, pooled = _encode(clip, "a red circle and a blue square on grass")
    cond, pooled = cond.repeat(2, 1, 1).float(), pooled.repeat(2, 1).float()
    with torch.no_grad():
        ref = dm(x, sigma, cond, y=pooled)
        out = flux_forward(dm, x, sigma, cond, pooled)
    assert next(dm.parameters()).dtype == torch.float32
    assert (ref - out).abs().max() < 1e-4 * max(1.0, ref.abs().max().item())


def test_text_encoder(demo, config):
    _, clip, _ = demo
    cond, pooled = _encode(clip, "a red circle on grass")
    min_len = config["text_encoder"]["tokenizer_data"]["t5xxl_min_length"]
    assert cond.shape == (1, min_len, 64) and pooled.shape == (1, 64)
    assert torch.isfinite(cond).all()
    assert pooled.abs().max() == 0  # by construction: the prompt reaches the DiT through T5 tokens
    # Every concept word is one T5 token, and alone it stays closer to its in-caption vector than any other
    # word (the trained encoder: "red" 0.56, the other words 0.06 at most).
    t5 = clip.tokenizer.t5xxl.tokenizer
    for word in scenes.CONCEPT_WORDS:
        assert len(t5(word)["input_ids"]) == 2, word          # the word and </s>
    ids = t5("a red circle on grass")["input_ids"]
    red = ids.index(t5("red")["input_ids"][0])
    alone = _encode(clip, "red")[0][0, 0]
    sims = {w: torch.cosine_similarity(cond[0, red], _encode(clip, w)[0][0, 0], dim=0).item()
            for w in ("red", "blue", "circle", "grass")}
    assert sims["red"] > 0.45 and sims["red"] > max(v for w, v in sims.items() if w != "red") + 0.3, sims
    assert torch.isfinite(alone).all()


def test_vae_round_trip(demo):
    _, _, vae = demo
    batch = scenes.make_batch(range(scenes.EVAL_SEEDS.start, scenes.EVAL_SEEDS.start + 4))
    images = torch.from_numpy(batch.images)
    with torch.no_grad():
        latents = vae.encode(images)
        recon = vae.decode(latents).float().cpu()
    assert latents.shape == (4, 16, 16, 16)
    mse = ((recon - images) ** 2).mean(dim=(1, 2, 3))
    psnr = 10 * torch.log10(1.0 / mse)
    assert psnr.min() > VAE_PSNR_FLOOR, psnr


def test_generates_red_circle_on_grass(demo):
    """ComfyUI's own KSampler (euler, 20 steps, CFG 4): red in the centre, grass around."""
    import nodes

    model, clip, vae = demo
    positive = clip.encode_from_tokens_scheduled(clip.tokenize("a red circle on grass"))
    negative = clip.encode_from_tokens_scheduled(clip.tokenize(""))
    latent = {"samples": torch.zeros(2, 16, 16, 16)}
    out = nodes.common_ksampler(model, 7, 20, 4.0, "euler", "simple", positive, negative, latent)[0]
    with torch.no_grad():
        images = vae.decode(out["samples"]).float().cpu().numpy()
    for im in images:
        r, g, b = im[..., 0], im[..., 1], im[..., 2]
        red = (r > 0.6) & (g < 0.35) & (b < 0.35)
        greenish = (g > r + 0.1) & (g > b + 0.1)
        centre = (slice(40, 88), slice(40, 88))
        border = np.ones(red.shape, dtype=bool)
        border[16:112, 16:112] = False
        assert red[centre].mean() > greenish[centre].mean() + 0.3, (red[centre].mean(), greenish[centre].mean())
        assert red[centre].mean() > 0.4
        assert greenish[border].mean() > 0.5, greenish[border].mean()


def test_the_demo_node_reads_the_layers_its_config_states_by_default(config):
    """layers "default" on the demo model are the blocks measured best for it (its
    config's default_layers), not the Flux family's rule; another Flux keeps the rule."""
    from concept_attention import hooks
    from concept_attention.nodes.demo import ConceptAttentionDemoModel
    from concept_attention.nodes.encode import ConceptEncode
    from concept_attention.nodes.sampler import ConceptAttentionSampler

    model, clip, _ = ConceptAttentionDemoModel.execute().args
    stated = tuple(config["default_layers"])
    assert hooks.default_layers(model) == stated != hooks.default_layers(load_demo()[0])
    concepts = ConceptEncode.execute(clip, "red, circle, grass").args[0]
    prompt, empty = (clip.encode_from_tokens_scheduled(clip.tokenize(text)) for text in ("a red circle on grass", ""))
    _, capture = ConceptAttentionSampler.execute(model, 0, 2, 4.0, "euler", "simple", prompt, empty,
                                                 {"samples": torch.zeros(1, 16, 16, 16)}, 1.0, concepts, "default",
                                                 "all").args
    assert capture.layers == stated
