"""Start a real ComfyUI server with this extension, post prompts, collect outputs.

Standard library only. Used by the demo command, `python -m tools.make_workflows`,
`python -m tools.render_thumbnails` and the server tests: the extension is linked into a
scratch custom_nodes folder named in an extra_model_paths.yaml, so it loads from
outside the ComfyUI tree.
"""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


class ServerError(RuntimeError):
    pass


class ComfyClient:
    """The HTTP side of a ComfyUI server at `url`: one ComfyServer started, or any running one."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def read(self, route: str, timeout: float = 10) -> bytes:
        """The body of GET `route`."""
        with urllib.request.urlopen(self.url + route, timeout=timeout) as response:
            return response.read()

    def get(self, route: str, timeout: float = 10):
        return json.loads(self.read(route, timeout))

    def post(self, route: str, data: bytes, content_type: str, timeout: float = 60):
        request = urllib.request.Request(self.url + route, data=data, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                return json.loads(body) if body else None        # /settings answers with no body
        except urllib.error.HTTPError as e:
            body = e.read().decode(errors="replace")
            raise ServerError(f"POST {route} -> {e.code}: {body}\n{self.log_tail()}") from None

    def run(self, prompt: dict, timeout: float = 300.0) -> dict:
        """Post an API-format prompt and wait for it; returns its /history entry.
        Raises ServerError with each failing node's message when it does not succeed."""
        queued = self.post("/prompt", json.dumps({"prompt": prompt}).encode(), "application/json")
        # ComfyUI still queues a prompt some of whose outputs are invalid, to run the others.
        if queued.get("node_errors"):
            raise ServerError(f"node errors: {json.dumps(queued['node_errors'], indent=1)}")
        entry = self.wait(queued["prompt_id"], timeout)
        if entry["status"].get("status_str") != "success":
            raise ServerError(f"prompt failed:\n{_failures(entry)}\n{self.log_tail()}")
        return entry

    def wait(self, prompt_id: str, timeout: float = 300.0) -> dict:
        """The /history entry of a queued prompt once it has finished, whatever its outcome."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                return entry
            time.sleep(0.2)
        raise ServerError(f"prompt did not finish within {timeout:.0f} s\n{self.log_tail()}")

    def upload_image(self, path: Path, name: str) -> str:
        """Upload to the server's input folder (overwriting `name`); returns the LoadImage value."""
        boundary = uuid.uuid4().hex
        body = b"".join([
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/png\r\n\r\n".encode(), Path(path).read_bytes(), b"\r\n",
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"overwrite\"\r\n\r\ntrue\r\n".encode(),
            f"--{boundary}--\r\n".encode(),
        ])
        answer = self.post("/upload/image", body, f"multipart/form-data; boundary={boundary}")
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def view(self, image: dict) -> bytes:
        """The file of an image of a /history entry, fetched as the frontend does (its type may be temp)."""
        query = urllib.parse.urlencode({key: image[key] for key in ("filename", "subfolder", "type")})
        return self.read(f"/view?{query}", timeout=60)

    def log_tail(self) -> str:
        return ""  # the log of a server this process did not start is out of reach


class ComfyServer(ComfyClient):
    """A ComfyUI process on a free loopback port, with scratch folders under `root`.

    model_folders: {"diffusion_models": Path, ...} folders to add to ComfyUI's search paths.
    env: variables to set for the process on top of this one's.
    extra_nodes: more custom node files to load beside the extension (the tests' tiny
    model loaders, harness/tiny_model_nodes.py); the repository is then on the
    process's PYTHONPATH, so that they import harness/.
    """

    def __init__(self, host: Path, root: Path, model_folders: dict = None, python: str = sys.executable,
                 env: dict = None, extra_nodes: tuple = ()):
        self.host, self.root, self.python = Path(host), Path(root), python
        self.model_folders = model_folders or {}
        self.extra_nodes = tuple(Path(node) for node in extra_nodes)
        self.env = {**(env or {}), **({"PYTHONPATH": str(REPO)} if self.extra_nodes else {})}
        self.output = self.root / "output"
        self.input = self.root / "input"
        self.log = self.root / "server.log"
        self.process = None
        self.url = None  # known once started

    def _write_config(self) -> Path:
        custom_nodes = self.root / "custom_nodes"
        custom_nodes.mkdir(parents=True, exist_ok=True)
        link = custom_nodes / "ConceptAttention"
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        for node in self.extra_nodes:
            if not (custom_nodes / node.name).exists():
                (custom_nodes / node.name).symlink_to(node)
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
                                            stdin=subprocess.DEVNULL,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env})
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            try:
                self.object_info = self.get("/object_info", timeout=30)
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                # A `with` block whose __enter__ raises never calls __exit__.
                self.stop()
                raise ServerError(f"ComfyUI did not answer within {timeout:.0f} s\n{self.log_tail()}")
            time.sleep(0.5)
        raise ServerError(f"ComfyUI exited with code {self.process.returncode}\n{self.log_tail()}")

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
