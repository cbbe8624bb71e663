"""Hostile and odd input posted to a real server's /prompt, on the demo graph
(workflows/api/demo.json on the bundled demo model). For each case the test states
what a user gets: the run works (legitimate input), ComfyUI's validation refuses it
naming the node and the input, our node refuses it when the prompt is queued (a
mistake that needs no model: nothing of the node runs), or our node stops with a
message naming both (a mistake only the model or the capture shows). The
server keeps running, and a valid prompt after all of them succeeds."""
import copy
import json
import math
import re
import urllib.error
import urllib.request

import pytest

from harness import host
from harness.comfy_server import REPO, ComfyServer

pytestmark = pytest.mark.server

WORKFLOW = json.loads((REPO / "workflows" / "api" / "demo.json").read_text())
IDS = {node["_meta"]["title"]: node_id for node_id, node in WORKFLOW.items()}
STEPS = 3


def base():
    prompt = copy.deepcopy(WORKFLOW)
    prompt[IDS["sampler"]]["inputs"]["steps"] = STEPS
    return prompt


def set_input(title, name, value):
    def change(prompt):
        prompt[IDS[title]]["inputs"][name] = value
    return change


def link(title, name, source_title, slot):
    return set_input(title, name, [IDS[source_title], slot])


OK, INVALID, REFUSED, ERROR = ("works", "refused by ComfyUI's validation", "refused by the node when queued",
                              "stopped by the node")
WORDS_500 = ", ".join(f"w{i}" for i in range(500))
# (what, change, expected outcome, node title, input, message pattern)
CASES = [
    # concept lists
    ("empty concepts", set_input("concepts", "concepts", ""), REFUSED, "concepts", "concepts", "no concepts given"),
    ("whitespace-only concepts", set_input("concepts", "concepts", " \n ,\t, "), REFUSED, "concepts", "concepts",
     "no concepts given"),
    ("a duplicate differing by case", set_input("concepts", "concepts", "red, Red"), REFUSED, "concepts", "concepts",
     "given twice"),
    ("a duplicate differing by whitespace", set_input("concepts", "concepts", "red,  red "), REFUSED, "concepts",
     "concepts", "given twice"),
    ("500 concepts", set_input("concepts", "concepts", WORDS_500), REFUSED, "concepts", "concepts",
     "500 concepts given; at most 64"),
    ("a 10,000-character word", set_input("concepts", "concepts", "red, " + "x" * 10_000), REFUSED, "concepts",
     "concepts", "10000 characters long"),
    ("a control character", set_input("concepts", "concepts", "red, bl\x07ue"), REFUSED, "concepts", "concepts",
     "control or invisible character"),
    ("a NUL character", set_input("concepts", "concepts", "red\x00"), REFUSED, "concepts", "concepts",
     "control or invisible character"),
    ("a word of nothing but a zero-width joiner", set_input("concepts", "concepts", "red, \u200d"), REFUSED, "concepts",
     "concepts", "control or invisible character"),
    ("a phrase of too many tokens",
     set_input("concepts", "concepts", "supercalifragilisticexpialidocious antidisestablishmentarianism"), ERROR,
     "concepts", "concepts", "20 tokens long with this text encoder; a concept is at most 16 tokens"),
    ("non-ASCII words", set_input("concepts", "concepts", "дракон, 龙, red, 🐉"), OK, None, None, None),
    ("64 concepts", set_input("concepts", "concepts", ", ".join(f"w{i}" for i in range(64))), OK, None, None, None),
    # layer and step strings
    ("layers -0", set_input("sampler", "layers", "-0"), REFUSED, "sampler", "layers", "'-0' is not a layer index"),
    ("layers 1--2", set_input("sampler", "layers", "1--2"), OK, None, None, None),
    ("layers 1,,2", set_input("sampler", "layers", "1,,2"), OK, None, None, None),
    ("layers ' 3 '", set_input("sampler", "layers", " 3 "), OK, None, None, None),
    ("layers 99999999999999999999", set_input("sampler", "layers", "99999999999999999999"), ERROR, "sampler", "layers",
     "layer 99999999999999999999 is out of range: valid layers are 0-3"),
    ("layers empty: the default", set_input("sampler", "layers", ""), OK, None, None, None),
    ("layers 3.0", set_input("sampler", "layers", "3.0"), REFUSED, "sampler", "layers", "'3.0' is not a layer index"),
    ("timesteps -0", set_input("sampler", "timesteps", "-0"), REFUSED, "sampler", "timesteps",
     "'-0' is not a timestep index"),
    ("timesteps 1,,2", set_input("sampler", "timesteps", "1,,2"), OK, None, None, None),
    ("timesteps 99999999999999999999", set_input("sampler", "timesteps", "99999999999999999999"), ERROR, "sampler",
     "timesteps", "out of range: valid timesteps are 0-2 .*the sampler runs 3 steps"),
    ("aggregate layers x", set_input("aggregate", "layers", "x"), REFUSED, "aggregate", "layers",
     "'x' is not a layer index"),
    ("aggregate timesteps backwards", set_input("aggregate", "timesteps", "2-1"), REFUSED, "aggregate", "timesteps",
     "timestep range 2-1 runs backwards"),
    ("aggregate concept not captured", set_input("aggregate", "concept", "dragon"), ERROR, "aggregate", "concept",
     "'dragon' is not a captured concept"),
    # floats that are not numbers
    ("threshold NaN", set_input("aggregate", "threshold", math.nan), ERROR, "aggregate", "threshold",
     "nan is not a number this input can take"),
    ("blur infinity", set_input("aggregate", "blur", math.inf), INVALID, "aggregate", "blur", None),
    ("blur NaN", set_input("aggregate", "blur", math.nan), ERROR, "aggregate", "blur", "nan is not a number"),
    ("opacity NaN", set_input("overlay", "opacity", math.nan), ERROR, "overlay", "opacity", "nan is not a number"),
    ("cfg NaN", set_input("sampler", "cfg", math.nan), ERROR, "sampler", "cfg", "nan is not a number"),
    ("denoise minus infinity", set_input("sampler", "denoise", -math.inf), INVALID, "sampler", "denoise", None),
    # latents
    ("a zero-size latent", set_input("latent", "width", 0), INVALID, "latent", "width", None),
    ("a single-patch latent", lambda p: (set_input("latent", "width", 16)(p), set_input("latent", "height", 16)(p)),
     OK, None, None, None),
    ("a batch of 16", set_input("latent", "batch_size", 16), OK, None, None, None),
    # wrong types wired by hand
    ("a STRING into concepts", link("sampler", "concepts", "concepts", 1), INVALID, "sampler", "concepts", None),
    ("CONCEPTS into positive", link("sampler", "positive", "concepts", 0), INVALID, "sampler", "positive", None),
    ("a LATENT into concept_attn", link("aggregate", "concept_attn", "sampler", 0), INVALID, "aggregate",
     "concept_attn", None),
    ("text for the step count", set_input("sampler", "steps", "many"), INVALID, "sampler", "steps", None),
    # ComfyUI's own validation names the node and the missing id (and, oddly, the input it was checking next).
    ("a link to a node that does not exist", set_input("aggregate", "concept_attn", ["999", 1]), INVALID, "aggregate",
     None, "'999'"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ComfyServer(host.find_comfyui(), tmp_path_factory.mktemp("hostile_server")) as srv:
        yield srv


def submit(server, prompt):
    """(outcome, details): OK and the history entry, INVALID or REFUSED and the /prompt
    answer (node_errors), or ERROR and the execution_error message."""
    body = json.dumps({"prompt": prompt}).encode()             # NaN and Infinity as ComfyUI's JSON parser takes them
    request = urllib.request.Request(server.url + "/prompt", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            queued = json.loads(response.read())
    except urllib.error.HTTPError as e:
        refusal = json.loads(e.read())
        return _refused_or_invalid(refusal), refusal
    if queued.get("node_errors"):
        return _refused_or_invalid(queued), queued
    entry = server.wait(queued["prompt_id"], timeout=300)
    for kind, data in entry["status"]["messages"]:
        if kind == "execution_error":
            return ERROR, data
    assert entry["status"]["status_str"] == "success", entry["status"]
    return OK, entry


def _refused_or_invalid(answer) -> str:
    kinds = {e["type"] for node in answer.get("node_errors", {}).values() for e in node["errors"]}
    return REFUSED if kinds == {"custom_validation_failed"} else INVALID


def _titles():
    from concept_attention.nodes import NODES
    return {schema.node_id: schema.display_name for schema in (node.define_schema() for node in NODES)}


def test_every_typed_input_of_the_graph_has_a_hostile_case():
    """Each text or number that a user types into one of our nodes in this graph is
    tried with something hostile (a new input without a case fails here)."""
    from comfy_api.latest import io

    from concept_attention.nodes import NODES

    schemas = {node.define_schema().node_id: node.define_schema() for node in NODES}
    typed = {(title, spec.id) for title, node_id in IDS.items() if WORKFLOW[node_id]["class_type"] in schemas
             for spec in schemas[WORKFLOW[node_id]["class_type"]].inputs
             if isinstance(spec, (io.String.Input, io.Float.Input)) and spec.id in WORKFLOW[node_id]["inputs"]}
    tried = {(title, name) for _, _, _, title, name, _ in CASES}
    assert typed and typed <= tried, f"no hostile case for {sorted(typed - tried)}"


@pytest.mark.parametrize("what, change, expected, title, input_name, pattern", CASES, ids=[c[0] for c in CASES])
def test_hostile_input(server, what, change, expected, title, input_name, pattern):
    prompt = base()
    change(prompt)
    outcome, details = submit(server, prompt)
    assert outcome == expected, (what, details)
    node_title = _titles().get(WORKFLOW[IDS[title]]["class_type"]) if title else None
    if outcome in (INVALID, REFUSED):
        errors = details.get("node_errors", {}).get(IDS[title], {}).get("errors", [])
        if input_name is None:
            named = [e for e in errors if re.search(pattern, e.get("details", ""))]
        else:
            named = [e for e in errors if e.get("extra_info", {}).get("input_name") == input_name]
        assert named, (what, details)
        if outcome == REFUSED:   # the node's own words, on the input at fault
            assert any(re.search(f"^{input_name} - {node_title} › {input_name}: .*{pattern}", e["details"])
                       for e in named), (what, named)
            if title in ("concepts", "sampler"):   # every output of the graph needs them: nothing was queued
                assert "prompt_id" not in details, details
    elif outcome == ERROR:
        assert details["node_type"] == WORKFLOW[IDS[title]]["class_type"], details
        message = details["exception_message"]
        assert message.startswith(f"{node_title} › {input_name}: "), message
        assert re.search(pattern, message), message
        assert details["exception_type"].endswith("NodeInputError"), details
    else:
        images = details["outputs"][IDS["image"]]["images"]
        assert len(images) == prompt[IDS["latent"]]["inputs"]["batch_size"]


def test_the_server_still_runs_a_valid_prompt(server):
    for _, change, *_ in CASES[:3]:
        prompt = base()
        change(prompt)
        submit(server, prompt)
    outcome, entry = submit(server, base())
    concepts = WORKFLOW[IDS["concepts"]]["inputs"]["concepts"].split(",")
    assert outcome == OK and len(entry["outputs"][IDS["heatmaps"]]["images"]) == len(concepts)
