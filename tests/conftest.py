"""Test bootstrap: put the real ComfyUI host on sys.path (CPU mode), load this
extension as the package `concept_attention`, and share tiny models."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # tests use the tools: host, comfy_server, ...
import host  # noqa: E402

COMFYUI = host.prepare()


def pytest_report_header(config):
    return f"ComfyUI {host.comfyui_version(COMFYUI)} at {COMFYUI}"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def flux_dev(model_dir):
    import tiny_models
    path = tiny_models.build_flux(model_dir / "flux1_dev.safetensors", guidance=True)
    return tiny_models.load_model(path, tiny_models.flux_config(guidance=True), expect="Flux")


@pytest.fixture(scope="session")
def flux_schnell(model_dir):
    import tiny_models
    path = tiny_models.build_flux(model_dir / "flux1_schnell.safetensors", guidance=False)
    return tiny_models.load_model(path, tiny_models.flux_config(guidance=False), expect="FluxSchnell")


@pytest.fixture(scope="session")
def flux_clip():
    import tiny_models
    return tiny_models.build_flux_clip()


@pytest.fixture(scope="session")
def sd3(model_dir):
    """Tiny SD3 medium-like MMDiT (3 joint blocks, the last pre_only), through the stock loader."""
    import tiny_models
    return tiny_models.load_with_stock_loader(tiny_models.build_sd3(model_dir / "sd3.safetensors"), expect="SD3")


@pytest.fixture(scope="session")
def sd35_medium(model_dir):
    """Tiny SD3.5 medium-like MMDiT: QK RMSNorm and x_block.attn2 in blocks 0 and 1."""
    import tiny_models
    path = tiny_models.build_sd3(model_dir / "sd35_medium.safetensors", tiny_models.SD35_MEDIUM_CONFIG)
    return tiny_models.load_with_stock_loader(path, expect="SD3")


@pytest.fixture(scope="session")
def sd3_clip():
    import tiny_models
    return tiny_models.build_sd3_clip()


@pytest.fixture(scope="session")
def flux2_dev(model_dir):
    """Tiny Flux 2 with a guidance embedding (dev-like)."""
    import tiny_models
    path = tiny_models.build_flux(model_dir / "flux2_dev.safetensors", guidance=True, config=tiny_models.FLUX2_CONFIG)
    return tiny_models.load_model(path, tiny_models.flux_config(True, tiny_models.FLUX2_CONFIG), expect="Flux2")


@pytest.fixture(scope="session")
def flux2_klein(model_dir):
    """Tiny Flux 2 without a guidance embedding (Klein-like)."""
    import tiny_models
    path = tiny_models.build_flux(model_dir / "flux2_klein.safetensors", guidance=False, config=tiny_models.FLUX2_CONFIG)
    return tiny_models.load_model(path, tiny_models.flux_config(False, tiny_models.FLUX2_CONFIG), expect="Flux2")


@pytest.fixture(scope="session")
def klein_clip():
    import comfy.text_encoders.flux
    import tiny_models
    if not hasattr(comfy.text_encoders.flux, "KleinTokenizer"):
        pytest.skip("this ComfyUI has no Klein text encoder (Qwen 3); ComfyUI 0.3.75 predates it")
    return tiny_models.build_klein_clip()


@pytest.fixture(scope="session")
def tiny_vae(tmp_path_factory):
    """load(name): VAELoader's VAE of that name, from random tiny TAEs: taef1 (Flux 1),
    taesd3 (SD3), taef2 (Flux 2), taehv.safetensors (video, for CogVideoX); skipped where
    this ComfyUI's VAELoader lists no such name."""
    import folder_paths
    import nodes
    import tiny_models

    directory = tmp_path_factory.mktemp("vae_approx")
    for name, channels in (("taef1", 16), ("taesd3", 16), ("taef2", 128)):
        tiny_models.build_taesd(directory, vae_name=name, latent_channels=channels)
    tiny_models.build_taehv(directory / "taehv.safetensors")
    folder_paths.add_model_folder_path("vae_approx", str(directory))

    def load(name):
        if name not in nodes.VAELoader.vae_list(nodes.VAELoader):
            pytest.skip(f"this ComfyUI's VAELoader has no {name}")
        return nodes.VAELoader().load_vae(name)[0]
    return load


def _cogvideox(model_dir, name, config, expect="CogVideoX_T2V"):
    from concept_attention import hooks
    import tiny_models
    if "CogVideoX" in hooks.UNAVAILABLE:
        pytest.skip(hooks.UNAVAILABLE["CogVideoX"])
    return tiny_models.load_with_stock_loader(tiny_models.build_cogvideox(model_dir / f"{name}.safetensors", config),
                                              expect=expect)


@pytest.fixture(scope="session")
def cogvideox(model_dir):
    """Tiny CogVideoX 1.0 with RoPE (5b-like)."""
    import tiny_models
    return _cogvideox(model_dir, "cogvideox_5b", tiny_models.COGVIDEOX_CONFIG)


@pytest.fixture(scope="session")
def cogvideox_2b(model_dir):
    """Tiny CogVideoX 1.0 with the positional table (2b-like)."""
    import tiny_models
    return _cogvideox(model_dir, "cogvideox_2b", tiny_models.COGVIDEOX_2B_CONFIG)


@pytest.fixture(scope="session")
def cogvideox_15(model_dir):
    """Tiny CogVideoX 1.5 (patch_size_t = 2)."""
    import tiny_models
    return _cogvideox(model_dir, "cogvideox_15", tiny_models.COGVIDEOX_15_CONFIG)


@pytest.fixture(scope="session")
def cogvideox_i2v(model_dir):
    """Tiny CogVideoX 1.0 image-to-video (the image latent concatenated to the noise)."""
    import tiny_models
    return _cogvideox(model_dir, "cogvideox_i2v", tiny_models.COGVIDEOX_I2V_CONFIG, expect="CogVideoX_I2V")


@pytest.fixture(scope="session")
def cogvideox_clip():
    from concept_attention import hooks
    import tiny_models
    if "CogVideoX" in hooks.UNAVAILABLE:
        pytest.skip(hooks.UNAVAILABLE["CogVideoX"])
    return tiny_models.build_cogvideox_clip()
