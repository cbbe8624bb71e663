"""Test bootstrap: put the real ComfyUI host on sys.path (CPU mode), load this
extension as the package `concept_attention`, and share tiny models."""
import importlib.util
import sys
from pathlib import Path

import pytest

import host

REPO = Path(__file__).resolve().parents[1]
COMFYUI = host.find_comfyui()
sys.path.insert(0, str(COMFYUI))

from comfy.cli_args import args  # noqa: E402  (must follow the sys.path set-up)

args.cpu = True


def _load_extension():
    # ComfyUI imports a custom node from its folder, whatever the folder is called;
    # tests give it a fixed importable name.
    spec = importlib.util.spec_from_file_location("concept_attention", REPO / "__init__.py",
                                                  submodule_search_locations=[str(REPO)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["concept_attention"] = module
    spec.loader.exec_module(module)


_load_extension()


def pytest_report_header(config):
    return f"ComfyUI {host.comfyui_version(COMFYUI)} at {COMFYUI}"


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def flux_dev(model_dir):
    import tiny_models
    return tiny_models.load_model(tiny_models.build_flux1(model_dir / "flux1_dev.safetensors", guidance=True), expect="Flux")


@pytest.fixture(scope="session")
def flux_schnell(model_dir):
    import tiny_models
    return tiny_models.load_model(tiny_models.build_flux1(model_dir / "flux1_schnell.safetensors", guidance=False), expect="FluxSchnell")


@pytest.fixture(scope="session")
def flux_clip():
    import tiny_models
    return tiny_models.build_flux_clip()
