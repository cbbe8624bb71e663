"""Runs on a real server, on the demo graph (workflows/api/demo.json): an interrupt
sent through /interrupt in the middle of a long run leaves nothing behind (the next
run gives the maps of a fresh server), a graph run again gives the same maps, and a
change of aggregation settings alone does not sample again (ComfyUI's cache)."""
import copy
import json
import time

import pytest

from harness import host
from harness.comfy_server import REPO, ComfyServer

pytestmark = pytest.mark.server

WORKFLOW = json.loads((REPO / "workflows" / "api" / "demo.json").read_text())
IDS = {node["_meta"]["title"]: node_id for node_id, node in WORKFLOW.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ComfyServer(host.find_comfyui(), tmp_path_factory.mktemp("runs_server")) as srv:
        yield srv


def graph(steps=4, seed=3, colormap="plasma"):
    prompt = copy.deepcopy(WORKFLOW)
    prompt[IDS["sampler"]]["inputs"].update(steps=steps, seed=seed)
    prompt[IDS["aggregate"]]["inputs"]["colormap"] = colormap
    return prompt


def run(server, prompt):
    """(the heatmap PNGs, the ids of the nodes ComfyUI took from its cache)."""
    entry = server.run(prompt)
    cached = {node for kind, data in entry["status"]["messages"] if kind == "execution_cached" for node in data["nodes"]}
    return [server.view(image) for image in entry["outputs"][IDS["heatmaps"]]["images"]], cached


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory):
    with ComfyServer(host.find_comfyui(), tmp_path_factory.mktemp("fresh_server")) as srv:
        yield srv


def test_interrupt_reruns_and_the_cache(server, fresh_server):
    fresh, _ = run(server, graph())                          # this server's first run: a fresh server's maps

    # A long run, interrupted through the server once it samples.
    queued = server.post("/prompt", json.dumps({"prompt": graph(steps=2000, seed=11)}).encode(), "application/json")
    deadline = time.monotonic() + 60
    while not server.get("/queue")["queue_running"] and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)                                          # inside the sampler by now
    server.post("/interrupt", b"", "application/json")
    entry = server.wait(queued["prompt_id"], timeout=120)
    kinds = [kind for kind, _ in entry["status"]["messages"]]
    assert "execution_interrupted" in kinds and entry["status"]["status_str"] == "error", entry["status"]

    # The next run (new inputs, so it samples) gives the maps a fresh server gives.
    after, cached = run(server, graph(seed=5))
    assert IDS["sampler"] not in cached
    assert after == run(fresh_server, graph(seed=5))[0]

    # The same graph again, with ComfyUI's cache emptied so that it really samples again: the same maps.
    # The worker empties it when it next looks at its flags, which may be after the prompt queued next:
    # a short run in between makes sure it is emptied before the graph runs again.
    server.post("/free", json.dumps({"free_memory": True}).encode(), "application/json")
    run(server, graph(steps=1, seed=99))
    again, cached = run(server, graph())
    assert IDS["sampler"] not in cached and again == fresh

    # Only the aggregation changes: the sampler's output comes from the cache, the heatmaps change.
    recoloured, cached = run(server, graph(colormap="viridis"))
    assert IDS["sampler"] in cached and IDS["aggregate"] not in cached
    assert recoloured != fresh and len(recoloured) == len(fresh)
