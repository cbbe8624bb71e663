"""pyproject.toml carries what the Comfy Registry and ComfyUI-Manager read
(docs.comfy.org/registry/specifications), in the forms they accept."""
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

try:
    import tomllib
except ImportError:                      # Python 3.10
    from pip._vendor import tomli as tomllib

pytestmark = pytest.mark.unit
REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT, COMFY = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]


def test_the_node_id_and_version_follow_the_registry_rules():
    name = PROJECT["name"]
    assert len(name) < 100 and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*([-_.][A-Za-z0-9]+)*", name)
    assert "comfyui" not in name.lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", PROJECT["version"])
    assert (REPO / PROJECT["license"]["file"]).is_file()


def test_the_registry_fields_are_there():
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", COMFY["PublisherId"])
    assert COMFY["DisplayName"] == "ConceptAttention"
    assert COMFY["requires-comfyui"] == ">=0.3.75"   # the oldest host the tests run on (docs/testing.md)
    urls = PROJECT["urls"]
    repository = urls["Repository"]
    assert urlparse(repository).scheme == "https" and urlparse(repository).netloc == "github.com"
    for key in ("Documentation", "Issues"):
        assert urls[key].startswith(repository + "/"), f"[project.urls] {key} is not a page of the repository"


def test_the_icon_is_a_square_picture_in_this_repository_at_the_address_given():
    owner_and_name = urlparse(PROJECT["urls"]["Repository"]).path.strip("/")
    prefix = f"https://raw.githubusercontent.com/{owner_and_name}/main/"
    assert COMFY["Icon"].startswith(prefix)
    icon = Image.open(REPO / COMFY["Icon"].removeprefix(prefix))
    assert icon.width == icon.height <= 400


def test_comfyui_reads_the_same_fields():
    config_parser = pytest.importorskip("comfy_config.config_parser",
                                        reason="this ComfyUI has no comfy_config (added after 0.3.75)")
    config = config_parser.extract_node_configuration(str(REPO))
    assert (config.tool_comfy.publisher_id, config.tool_comfy.display_name, config.tool_comfy.icon) == \
        (COMFY["PublisherId"], COMFY["DisplayName"], COMFY["Icon"])
    assert config.project.urls.repository == PROJECT["urls"]["Repository"]
    assert config.project.supported_comfyui_version == COMFY["requires-comfyui"]
