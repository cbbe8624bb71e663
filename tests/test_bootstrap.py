"""The set-up that `make test` and `make demo` run first (harness/bootstrap.py): which
requirements it finds missing, and its clone of the pinned ComfyUI release, on a local
repository instead of GitHub. CI runs the whole of it on a bare machine (.ci/run)."""
import subprocess
import sys

import pytest

from harness import bootstrap

pytestmark = pytest.mark.unit


def test_missing_requirements_are_what_this_python_lacks(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pytest\n\n#non essential dependencies:\nsurely-not-installed-package>=1.0\n"
                            "pytest>=999  # too new\ntorch; python_version < '3'\n")
    lines = bootstrap.requirement_lines(requirements)
    assert lines == ["pytest", "surely-not-installed-package>=1.0", "pytest>=999", "torch; python_version < '3'"]
    assert bootstrap.missing_requirements(sys.executable, lines) == ["surely-not-installed-package>=1.0", "pytest>=999"]


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.fixture
def comfy_home(tmp_path, monkeypatch):
    """~/comfy/ComfyUI moved into tmp_path; returns that target."""
    target = tmp_path / "home" / "comfy" / "ComfyUI"
    target.parent.mkdir(parents=True)
    monkeypatch.setattr(bootstrap.host, "DEFAULT_HOST", target)
    return target


def test_clone_takes_the_pinned_release_tag(tmp_path, comfy_home, monkeypatch):
    upstream = tmp_path / "upstream"
    upstream.mkdir()
    _git("init", "-q", cwd=upstream)
    (upstream / "release.txt").write_text("tagged\n")
    _git("add", ".", cwd=upstream)
    _git("commit", "-qm", "release", cwd=upstream)
    _git("tag", bootstrap.COMFYUI_TAG, cwd=upstream)
    (upstream / "release.txt").write_text("later work\n")
    _git("commit", "-qam", "after the release", cwd=upstream)
    monkeypatch.setattr(bootstrap, "COMFYUI_GIT", upstream.as_uri())

    assert bootstrap.clone_comfyui() is None
    assert (comfy_home / "release.txt").read_text() == "tagged\n"
    assert list(comfy_home.parent.iterdir()) == [comfy_home]  # no partial clone left beside it


def test_a_failed_clone_says_why_and_leaves_nothing(tmp_path, comfy_home, monkeypatch):
    monkeypatch.setattr(bootstrap, "COMFYUI_GIT", (tmp_path / "no such repository").as_uri())
    reason = bootstrap.clone_comfyui()
    assert reason and "no such repository" in reason, reason
    assert list(comfy_home.parent.iterdir()) == []


def test_clone_leaves_an_existing_folder_alone(comfy_home):
    comfy_home.mkdir()
    (comfy_home / "mine.txt").write_text("user data")
    assert "exists and is not a ComfyUI checkout" in bootstrap.clone_comfyui()
    assert (comfy_home / "mine.txt").read_text() == "user data"
