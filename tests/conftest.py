"""Test bootstrap: put the real ComfyUI host on sys.path (CPU mode), load this
extension as the package `concept_attention`, share tiny models (one session fixture
per harness.families tiny model), and hold every test to one tier (docs/testing.md)."""
import pytest

from harness import host

COMFYUI = host.prepare()

from harness.families import TESTED  # noqa: E402  (imports ComfyUI, which host.prepare() made importable)

# The tiers, fastest first: `make check` runs the first two.
TIERS = ("unit", "model", "server", "browser")


def pytest_report_header(config):
    return f"ComfyUI {host.comfyui_version(COMFYUI)} at {COMFYUI}"


def pytest_collection_modifyitems(config, items):
    for item in items:
        tiers = [mark.name for mark in item.iter_markers() if mark.name in TIERS]
        if len(tiers) != 1:
            raise pytest.UsageError(f"{item.nodeid} is marked {tiers or 'with no tier'}: give it exactly one of "
                                    f"{', '.join(TIERS)} (pytestmark at the top of its file, or on the test)")


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_models")


def _tiny_model_fixture(family_name, tiny):
    @pytest.fixture(scope="session", name=tiny.name)
    def fixture(model_dir):
        from concept_attention import hooks
        if family_name in hooks.UNAVAILABLE:
            pytest.skip(hooks.UNAVAILABLE[family_name])
        if tiny.missing() is not None:
            pytest.skip(tiny.missing())
        return tiny.build(model_dir)
    return fixture


for _tested in TESTED:
    for _tiny in _tested.tiny_models:
        globals()[f"_fixture_{_tiny.name}"] = _tiny_model_fixture(_tested.name, _tiny)


def _text_encoder_fixture(name):
    """A session fixture `name` that builds tiny_models.build_<name>()."""
    @pytest.fixture(scope="session", name=name)
    def fixture():
        from harness import tiny_models
        return getattr(tiny_models, f"build_{name}")()
    return fixture


for _name in ("flux_clip", "sd3_clip", "qwen_image_clip", "chroma_clip", "z_image_clip", "lumina2_clip",
              "hunyuan_video_15_clip", "wan_clip"):
    globals()[f"_fixture_{_name}"] = _text_encoder_fixture(_name)


@pytest.fixture(scope="session")
def klein_clip():
    import comfy.text_encoders.flux

    from harness import tiny_models
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

    from harness import tiny_models

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


@pytest.fixture(scope="session")
def cogvideox_clip():
    from concept_attention import hooks
    from harness import tiny_models
    if "CogVideoX" in hooks.UNAVAILABLE:
        pytest.skip(hooks.UNAVAILABLE["CogVideoX"])
    return tiny_models.build_cogvideox_clip()
