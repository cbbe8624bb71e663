"""Start a real ComfyUI server with this extension, post prompts, collect outputs.

Standard library only. Used by the demo command and the server tests: the
extension is linked into a scratch custom_nodes folder named in an
extra_model_paths.yaml, so it loads from outside the ComfyUI tree.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class ServerError(RuntimeError):
    pass


class ComfyServer:
    """A ComfyUI process on a free loopback port, with scratch folders under `root`.

    model_folders: {"diffusion_models": Path, ...} folders to add to ComfyUI's search paths.
    """

    def __init__(self, host: Path, root: Path, model_folders: dict, python: str = sys.executable):
        self.host, self.root, self.python = Path(host), Path(root), python
        self.model_folders = model_folders
        self.output = self.root / "output"
        self.input = self.root / "input"
        self.log = self.root / "server.log"
        self.process = None
        self.url = None

    def _write_config(self) -> Path:
        custom_nodes = self.root / "custom_nodes"
        custom_nodes.mkdir(parents=True, exist_ok=True)
        link = custom_nodes / "ConceptAttention"
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        for name in ("user", "input", "output", "temp"):
            (self.root / name).mkdir(exist_ok=True)
        lines = ["concept_attention:", f"    base_path: {self.root}", "    custom_nodes: custom_nodes"]
        lines += [f"    {kind}: {folder}" for kind, folder in self.model_folders.items()]
        config = self.root / "extra_model_paths.yaml"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, timeout: float = 120.0):
        config = self._write_config()
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
               "--extra-model-paths-config", str(config),
               "--input-directory", str(self.input), "--output-directory", str(self.output),
               "--temp-directory", str(self.root / "temp"), "--user-directory", str(self.root / "user"),
               "--database-url", f"sqlite:///{self.root / 'comfy.db'}",
               "--disable-api-nodes", "--disable-auto-launch"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(cmd, cwd=self.host, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerError(f"ComfyUI exited with code {self.process.returncode}\n{self.log_tail()}")
            try:
                self.object_info = self.get("/object_info", timeout=30)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"ComfyUI did not answer within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.5)

    def stop(self):
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def get(self, route: str, timeout: float = 10):
        with urllib.request.urlopen(self.url + route, timeout=timeout) as response:
            return json.loads(response.read())

    def run(self, prompt: dict, timeout: float = 300.0) -> dict:
        """Post an API-format prompt and wait for it; returns its /history entry.
        Raises ServerError with each failing node's message when it does not succeed."""
        request = urllib.request.Request(self.url + "/prompt", data=json.dumps({"prompt": prompt}).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                prompt_id = json.loads(response.read())["prompt_id"]
        except urllib.error.HTTPError as e:
            raise ServerError(f"POST /prompt -> {e.code}: {e.read().decode(errors='replace')}") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                if entry["status"].get("status_str") != "success":
                    raise ServerError(f"prompt failed:\n{_failures(entry)}\n{self.log_tail()}")
                return entry
            time.sleep(0.2)
        raise ServerError(f"prompt did not finish within {timeout:.0f} s\n{self.log_tail()}")

    def saved_files(self, entry: dict, node_id: str) -> list:
        """Paths of the images a SaveImage node wrote."""
        images = entry["outputs"].get(node_id, {}).get("images", [])
        return [self.output / image["subfolder"] / image["filename"] for image in images]

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "--- server log ---\n" + "\n".join(text.splitlines()[-lines:])


def _failures(entry: dict) -> str:
    out = []
    for kind, data in entry.get("status", {}).get("messages", []):
        if kind == "execution_error":
            out.append(f"{data.get('node_type')} (node {data.get('node_id')}): "
                       f"{data.get('exception_type')}: {data.get('exception_message')}\n"
                       + "".join(data.get("traceback", [])))
    return "\n".join(out) or json.dumps(entry.get("status"), indent=1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
