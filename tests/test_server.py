"""End to end through a real ComfyUI server: the extension loads from outside the
ComfyUI tree, and workflows/api/flux1_heatmaps.json runs over HTTP on tiny models.

Standard library only for the HTTP side (urllib, json, subprocess, socket).
"""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import host
import tiny_models

REPO = Path(__file__).resolve().parents[1]
COMFYUI = host.find_comfyui()  # the same host conftest puts on sys.path
WORKFLOW = REPO / "workflows" / "api" / "flux1_heatmaps.json"
NODES = ("ConceptEncode", "ConceptAttentionSampler", "HeatmapAggregate", "HeatmapOverlay")
CONCEPTS = ("dragon", "rock", "sky")
BATCH = 1
WIDTH, HEIGHT = 256, 192  # EmptySD3LatentImage in the workflow; non-square on purpose
UNET_NAME = "tiny_flux1_dev.safetensors"
CLIP_NAME = "tiny_clip_l.safetensors"
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


class Server:
    def __init__(self, url: str, output: Path, log: Path):
        self.url, self.output, self.log = url, output, log

    def get(self, route: str, timeout: float = 10):
        with urllib.request.urlopen(self.url + route, timeout=timeout) as r:
            return json.loads(r.read())

    def post(self, route: str, body: dict, timeout: float = 10):
        req = urllib.request.Request(self.url + route, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            pytest.fail(f"POST {route} -> {e.code}: {e.read().decode(errors='replace')}\n"
                        f"--- server log ---\n{_tail(self.log)}")


def _write_scratch(root: Path) -> Path:
    """Tiny models, an extra_model_paths.yaml and a custom_nodes folder linking to this repo."""
    models = root / "models"
    tiny_models.build_flux1_for_clip_l(models / "diffusion_models" / UNET_NAME)
    tiny_models.build_clip_l(models / "text_encoders" / CLIP_NAME)
    tiny_models.build_taef1(models / "vae_approx")
    custom_nodes = root / "custom_nodes"
    custom_nodes.mkdir()
    (custom_nodes / "ConceptAttention").symlink_to(REPO, target_is_directory=True)
    for d in ("user", "input", "output", "temp"):
        (root / d).mkdir()
    config = root / "extra_model_paths.yaml"
    config.write_text(
        "concept_attention_test:\n"
        f"    base_path: {root}\n"
        "    diffusion_models: models/diffusion_models\n"
        "    text_encoders: models/text_encoders\n"
        "    vae_approx: models/vae_approx\n"
        "    custom_nodes: custom_nodes\n"
    )
    return config


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("comfy_server")
    started = time.monotonic()
    config = _write_scratch(root)
    built = time.monotonic()
    port = _free_port()
    log = root / "server.log"
    cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--extra-model-paths-config", str(config),
           "--input-directory", str(root / "input"), "--output-directory", str(root / "output"),
           "--temp-directory", str(root / "temp"),
           "--user-directory", str(root / "user"), "--database-url", f"sqlite:///{root / 'comfy.db'}",
           "--disable-api-nodes", "--disable-auto-launch"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(cmd, cwd=COMFYUI, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    srv = Server(f"http://127.0.0.1:{port}", root / "output", log)
    srv.unet = root / "models" / "diffusion_models" / UNET_NAME
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"ComfyUI exited with code {proc.returncode}\n--- server log ---\n{_tail(log)}")
            try:
                srv.object_info = srv.get("/object_info", timeout=30)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"ComfyUI did not answer /object_info within {START_TIMEOUT_S} s\n"
                            f"--- server log ---\n{_tail(log)}")
            time.sleep(0.5)
        print(f"tiny models built in {built - started:.1f} s; server answered in {time.monotonic() - built:.1f} s")
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # pytest keeps the last three base temps; the CLIP-L alone is 247 MB. The log stays.
        shutil.rmtree(root / "models", ignore_errors=True)


def test_object_info_lists_the_nodes(server):
    info = server.object_info
    missing = [n for n in NODES if n not in info]
    assert not missing, f"nodes not loaded: {missing}\n--- server log ---\n{_tail(server.log)}"
    for name in NODES:
        assert info[name]["category"] == "ConceptAttention", (name, info[name]["category"])
    assert info["ConceptAttentionSampler"]["output"] == ["LATENT", "CONCEPT_ATTN"]


def _run(server, prompt: dict) -> dict:
    """POST the prompt and wait for its history entry; fails with the node error if it did not succeed."""
    queued = server.post("/prompt", {"prompt": prompt, "client_id": "concept-attention-test"})
    assert not queued.get("node_errors"), queued["node_errors"]
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        entry = server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None and (
                entry["status"]["completed"] or entry["status"].get("status_str") == "error"):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"prompt {prompt_id} did not finish within {RUN_TIMEOUT_S} s\n"
                        f"--- server log ---\n{_tail(server.log)}")
        time.sleep(0.25)
    status = entry["status"]
    if status.get("status_str") != "success":
        errors = [m[1] for m in status.get("messages", []) if m[0] == "execution_error"]
        detail = "\n".join(f"{e.get('node_type')} (node {e.get('node_id')}): {e.get('exception_type')}: "
                           f"{e.get('exception_message')}\n{''.join(e.get('traceback', []))}" for e in errors)
        pytest.fail(f"prompt failed: {status.get('status_str')}\n{detail}\n--- server log ---\n{_tail(server.log)}")
    return entry


def _saved(server, entry: dict, node_id: str) -> list[Path]:
    images = entry["outputs"].get(node_id, {}).get("images", [])
    paths = [server.output / img["subfolder"] / img["filename"] for img in images]
    assert all(img["type"] == "output" for img in images), images
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths), paths
    return paths


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def test_flux1_heatmaps_workflow(server):
    if not tiny_models.stock_loader_fits(server.unet):
        pytest.skip("this ComfyUI's UNETLoader builds Flux only at full size (24 heads), not the tiny test model")
    prompt = json.loads(WORKFLOW.read_text())
    by_type = {}
    for node_id, node in prompt.items():
        by_type.setdefault(node["class_type"], []).append(node_id)
    (unet,), (clip,) = by_type["UNETLoader"], by_type["CLIPLoader"]
    prompt[unet]["inputs"]["unet_name"] = UNET_NAME
    prompt[clip]["inputs"]["clip_name"] = CLIP_NAME
    assert prompt[clip]["inputs"]["type"] == "stable_diffusion"

    started = time.monotonic()
    entry = _run(server, prompt)
    print(f"workflow ran in {time.monotonic() - started:.1f} s")

    saves = {prompt[n]["inputs"]["filename_prefix"]: n for n in by_type["SaveImage"]}
    heatmaps = _saved(server, entry, saves["concept_heatmaps"])
    overlays = _saved(server, entry, saves["concept_overlays"])
    decoded = _saved(server, entry, saves["concept_image"])
    assert len(heatmaps) == len(CONCEPTS) * BATCH
    assert len(overlays) == len(CONCEPTS) * BATCH
    assert len(decoded) == BATCH
    on_disk = {prefix: sorted(server.output.glob(f"{prefix}_*.png")) for prefix in saves}
    assert on_disk["concept_heatmaps"] == sorted(heatmaps) and on_disk["concept_overlays"] == sorted(overlays)
    for path in heatmaps + overlays + decoded:
        assert _png_size(path) == (WIDTH, HEIGHT), path
