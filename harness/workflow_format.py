"""ComfyUI workflow formats: the UI (exported graph, LiteGraph "version 0.4") format
and the API (prompt) format, and the conversion from the first to the second.

Standard library only. Written from the formats as the ComfyUI frontend writes and
reads them (frontend 1.49, `graphToPrompt`, `LGraphNode.serialize`, `widgets.ts`):

UI format
    {"nodes": [...], "links": [[id, origin_id, origin_slot, target_id, target_slot, type], ...],
     "groups": [...], "config": {}, "extra": {...}, "version": 0.4, "last_node_id": .., "last_link_id": ..}
    A node: {"id", "type", "pos", "size", "flags", "order", "mode", "inputs", "outputs",
    "properties", "widgets_values", ["title"]}. `inputs` lists the node's sockets
    ({"name", "type", "link"}) and, only where a widget was turned into a linked input,
    that widget ({"name", "type", "widget": {"name"}, "link"}). `widgets_values` holds
    the value of every widget in widget order, linked or not.

Widget order (`widget_layout`)
    The node definition's inputs (`input_order`: required, then optional) that are
    widgets: INT, FLOAT, STRING, BOOLEAN and combos (a list of options or "COMBO"),
    unless `forceInput`. After an INT whose `control_after_generate` is set (or, when
    it is not given, an INT named `seed` or `noise_seed`), and after a FLOAT or combo
    whose `control_after_generate` is set, the frontend adds a "control_after_generate"
    widget ("fixed", "increment", "decrement", "randomize"); a combo also gets a
    "control_filter_list" widget. A combo with `image_upload` (or video/animated
    upload) is followed by its upload button, whose value is "image". These extra
    values are in `widgets_values` but are not node inputs.

API format
    {"<node id>": {"class_type": .., "inputs": {name: value or [origin id, output slot]},
                   "_meta": {"title": ..}}}

Modes: 0 runs, 2 (muted, "never") produces nothing, so inputs linked to it are left
out; 4 (bypassed) passes an input of the matching type through, as the frontend does.
Note, MarkdownNote, Reroute and PrimitiveNode are frontend-only ("virtual") nodes:
notes are dropped, reroutes are followed, a primitive's value goes to the inputs it
feeds. Group nodes and subgraphs are not supported (ValueError).
"""
import copy

CONTROL = "control_after_generate"
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
UPLOAD_OPTIONS = ("image_upload", "video_upload", "animated_image_upload")
NOTES = ("Note", "MarkdownNote")
MUTED, BYPASSED = 2, 4


def input_specs(definition: dict):
    """(name, type, options, optional) of a node definition's inputs, in order.

    `type` is "COMBO" for a list of options (V1) or a "COMBO" input (V3)."""
    order = definition.get("input_order") or {s: list(definition["input"].get(s, {})) for s in ("required", "optional")}
    for section in ("required", "optional"):
        specs = definition["input"].get(section, {})
        for name in order.get(section, []):
            spec = specs[name]
            kind = "COMBO" if isinstance(spec[0], list) else spec[0]
            yield name, kind, (spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}), section == "optional"


def is_widget(kind: str, options: dict) -> bool:
    return kind in WIDGET_TYPES and not options.get("forceInput")


def widget_layout(definition: dict) -> list:
    """The names behind each entry of a node's `widgets_values`, in order. Entries the
    frontend adds for itself (value control, filter list, upload button) are tuples
    (kind, input name): ("control", "seed"), ("filter", name), ("upload", name)."""
    layout = []
    for name, kind, options, _ in input_specs(definition):
        if not is_widget(kind, options):
            continue
        layout.append(name)
        control = options.get(CONTROL)
        if kind == "INT" and control is None:
            control = name in ("seed", "noise_seed")
        if control and kind in ("INT", "FLOAT", "COMBO"):
            layout.append(("control", name))
            if kind == "COMBO":
                layout.append(("filter", name))
        if kind == "COMBO" and any(options.get(o) for o in UPLOAD_OPTIONS):
            layout.append(("upload", name))
    return layout


def socket_inputs(definition: dict) -> list:
    """(name, type, optional) of the inputs that are sockets, not widgets, in order:
    the `inputs` of a UI node whose widgets are not linked."""
    return [(name, kind, optional) for name, kind, options, optional in input_specs(definition)
            if not is_widget(kind, options)]


def _links_by_id(ui: dict) -> dict:
    links = {}
    for link in ui.get("links", []):
        if isinstance(link, dict):
            link = [link["id"], link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"],
                    link.get("type")]
        links[link[0]] = link
    return links


def _compatible(a, b) -> bool:
    if a in ("*", "", None) or b in ("*", "", None):
        return True
    return bool(set(str(a).split(",")) & set(str(b).split(",")))


class _Resolver:
    """Follows a link back to the output that really feeds it (LiteGraph's resolveOutput)."""

    def __init__(self, nodes: dict, links: dict):
        self.nodes, self.links = nodes, links

    def link(self, link_id, want_type, seen=()):
        """[origin id, slot], ("value", v) for a primitive, or None where nothing feeds it."""
        if link_id is None:
            return None
        link = self.links.get(link_id)
        if link is None:
            raise ValueError(f"link {link_id} is not in the links table")
        origin = self.nodes.get(link[1])
        if origin is None:
            raise ValueError(f"link {link_id} comes from node {link[1]}, which is not in the graph")
        key = (origin["id"], link[2])
        if key in seen:
            raise ValueError(f"links loop through node {origin['id']}")
        seen = (*seen, key)
        mode = origin.get("mode", 0)
        if mode == MUTED:
            return None
        if origin["type"] == "PrimitiveNode":
            return ("value", origin["widgets_values"][0])
        if origin["type"] == "Reroute":
            return self.link(origin["inputs"][0].get("link"), want_type, seen)
        if mode == BYPASSED:
            index = self._bypass_input(origin, link[2], want_type)
            return None if index is None else self.link(origin["inputs"][index].get("link"), want_type, seen)
        return [str(origin["id"]), link[2]]

    @staticmethod
    def _bypass_input(node: dict, slot: int, want_type):
        """The input a bypassed node passes to output `slot`: the same slot if its type
        fits, else the first input of exactly the wanted type, else the first that fits."""
        inputs = node.get("inputs", [])
        out_type = node["outputs"][slot]["type"]
        if want_type in ("*", "", None):
            return slot if slot < len(inputs) else (0 if inputs else None)
        if slot < len(inputs) and _compatible(inputs[slot]["type"], out_type) and _compatible(inputs[slot]["type"], want_type):
            return slot
        for i, inp in enumerate(inputs):
            if inp["type"] == want_type:
                return i
        for i, inp in enumerate(inputs):
            if _compatible(inp["type"], out_type) and _compatible(inp["type"], want_type):
                return i
        return None


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """Convert a UI-format workflow to an API-format prompt, as the frontend's "Queue" does.

    `object_info`: the server's `/object_info` (node definitions), which gives each
    node's widget order. Raises ValueError for what it cannot convert faithfully:
    unknown node types, subgraphs, a `widgets_values` whose length does not match the
    node's widgets, or dynamic-prompt syntax in a text widget.
    """
    if (ui.get("definitions") or {}).get("subgraphs"):
        raise ValueError("subgraphs are not supported")
    nodes = {n["id"]: n for n in ui["nodes"]}
    resolver = _Resolver(nodes, _links_by_id(ui))
    prompt = {}
    for node in sorted(nodes.values(), key=lambda n: n.get("order", 0)):
        kind = node["type"]
        if kind in NOTES or kind in ("Reroute", "PrimitiveNode") or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        definition = object_info.get(kind)
        if definition is None:
            raise ValueError(f"node {node['id']}: type {kind!r} is not on this server (group node or missing extension?)")
        inputs = _widget_inputs(node, definition)
        for slot in node.get("inputs", []):
            source = resolver.link(slot.get("link"), slot.get("type"))
            if source is None:
                continue
            inputs[slot["name"]] = source[1] if isinstance(source, tuple) else source
        title = node.get("title") or definition.get("display_name") or kind
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs, "_meta": {"title": title}}
    # As the frontend: drop links to nodes that are not in the prompt.
    for entry in prompt.values():
        for name, value in list(entry["inputs"].items()):
            if isinstance(value, list) and len(value) == 2 and value[0] not in prompt:
                del entry["inputs"][name]
    return prompt


def _widget_inputs(node: dict, definition: dict) -> dict:
    layout = widget_layout(definition)
    values = node.get("widgets_values") or []
    if isinstance(values, dict):  # some extensions store widgets by name
        layout = [name for name in layout if isinstance(name, str) and name in values]
        values = [values[name] for name in layout]
    if len(values) != len(layout):
        raise ValueError(f"node {node['id']} ({node['type']}): {len(values)} widget values for the "
                         f"{len(layout)} widgets {layout}; was it saved with another version of the node?")
    specs = {name: options for name, _, options, _ in input_specs(definition)}
    inputs = {}
    for name, value in zip(layout, values):
        if not isinstance(name, str):
            if name[0] == "control" and value not in CONTROL_VALUES:
                raise ValueError(f"node {node['id']} ({node['type']}): {value!r} where the {name[1]} "
                                 f"control ({'/'.join(CONTROL_VALUES)}) should be")
            continue
        if specs[name].get("dynamicPrompts") and isinstance(value, str) and ("{" in value or "/*" in value):
            raise ValueError(f"node {node['id']} ({node['type']}): dynamic prompt syntax in {name!r} is not expanded")
        # Lists are links in the API format; the frontend wraps list values.
        inputs[name] = {"__value__": copy.deepcopy(value)} if isinstance(value, list) else value
    return inputs


def substitute(prompt: dict, rules: dict) -> dict:
    """A copy of an API-format prompt with inputs set and nodes swapped, e.g. to run an
    example workflow on other models.

    `rules` maps a class_type, or "title:<a node's title>" (before its class_type's rule),
    or "*" for every node to
      {"inputs": {name: value}}: set these inputs (for "*": only where the node has
        the input as a value, not a link);
      {"bypass": {"0": "model"}}: remove the node; links to its output 0 take what fed
        its input "model" (with "class_type": replace it, and bypass these outputs);
      {"class_type": "New", "inputs": {...}, "output_map": {"0": 1}}: replace the node
        by a "New" node with exactly these value inputs (its links are kept only where
        "New" takes an input of the same name, listed in "keep_links"), and re-point
        links to its outputs by `output_map` (old slot -> new slot; identity if absent);
      {"split": {"0": {"class_type": "A", "inputs": {...}}, "2": {..., "output": 1}}}:
        replace the node by one node per listed output (id "<id>.<slot>"), each giving
        that output as its output "output" (0 if absent), e.g. a checkpoint loader's
        MODEL and VAE by two loaders.
    Nodes that a rule adds are not substituted again.
    """
    prompt = copy.deepcopy(prompt)
    relink = {}   # node id -> {old slot: [new node id, new slot]}
    for node_id, node in list(prompt.items()):
        title = node["_meta"].get("title", "")
        rule = rules.get(f"title:{title}", rules.get(node["class_type"]))
        if rule is None:
            continue
        bypassed = {int(slot): node["inputs"][name] for slot, name in rule.get("bypass", {}).items()}
        if "bypass" in rule and "class_type" not in rule:
            del prompt[node_id]
            relink[node_id] = bypassed
        elif "split" in rule:
            del prompt[node_id]
            relink[node_id] = {}
            for slot, part in rule["split"].items():
                part_id = f"{node_id}.{slot}"
                prompt[part_id] = {"class_type": part["class_type"], "inputs": copy.deepcopy(part.get("inputs", {})),
                                   "_meta": {"title": f"{title} -> {part['class_type']}"}}
                relink[node_id][int(slot)] = [part_id, part.get("output", 0)]
        elif "class_type" in rule:
            kept = {k: v for k, v in node["inputs"].items() if k in rule.get("keep_links", ())}
            node["class_type"] = rule["class_type"]
            node["inputs"] = {**kept, **copy.deepcopy(rule.get("inputs", {}))}
            node["_meta"] = {"title": f"{title} -> {rule['class_type']}"}
            relink[node_id] = {**{int(k): [node_id, v] for k, v in rule.get("output_map", {}).items()}, **bypassed}
        else:
            node["inputs"].update(copy.deepcopy(rule.get("inputs", {})))
    def resolved(link):
        # A bypass may point at a node that was itself swapped or bypassed; a swapped node's own outputs are final.
        while isinstance(link, list) and len(link) == 2 and link[0] in relink and link[1] in relink[link[0]]:
            target = relink[link[0]][link[1]]
            if target[0] == link[0]:
                return target
            link = target
        return link

    for node in prompt.values():
        for name, value in node["inputs"].items():
            node["inputs"][name] = resolved(value)
        for name, value in rules.get("*", {}).get("inputs", {}).items():
            if name in node["inputs"] and not isinstance(node["inputs"][name], list):
                node["inputs"][name] = copy.deepcopy(value)
    return prompt


def nodes_of(prompt: dict, class_type: str) -> dict:
    """{node id: node} of one class_type in an API-format prompt."""
    return {k: v for k, v in prompt.items() if v["class_type"] == class_type}
