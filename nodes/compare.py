"""ConceptCompare: the maps of two to four runs side by side, concepts matched by
word: two prompts on one model, or one prompt on models of different families."""
import json

import torch
from comfy_api.latest import io

from ..analysis import maths, report
from ..analysis.errors import NodeInputError
from ..analysis.render import BLANK, draw_grid
from . import map_inputs
from .types import ANSWERS, ConceptAttn, schema

NODE = "ConceptCompare"
TITLE = "Concept Compare"   # what the user sees, and what errors name
RUNS = 4
NORMALIZATIONS = ("shared", "per_run", "per_concept")


class ConceptCompare(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        runs = []
        for k in range(1, RUNS + 1):
            optional = k > 2
            runs += [
                ConceptAttn.Input(f"run_{k}", optional=optional,
                                  tooltip=f"The recorded maps of run {k}, from a capture node" + (" (optional)." if optional else ".")),
                io.String.Input(f"name_{k}", default=f"run {k}", tooltip=f"The column title of run {k}."),
            ]
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=ANSWERS,
            search_aliases=["compare prompts", "compare models", "heatmap grid"],
            description="The maps of two to four runs side by side: one row per concept (matched by word; a word a "
                        "run lacks is an empty cell), one column per run. Each run's maps are the mean over all it "
                        "captured. The runs need the same number of images (and frames).",
            inputs=runs + [
                map_inputs.method_input(),
                io.Combo.Input("normalization", options=NORMALIZATIONS, default="shared",
                               tooltip="shared: one scale over every run and concept of an image, so strengths "
                                       "compare across runs. per_run: one scale per run. per_concept: each cell on its "
                                       "own, to compare shapes."),
                map_inputs.colormap_input(),
                io.Int.Input("cell_size", default=128, min=16, max=512,
                             tooltip="The longer side of each cell, in pixels (each run's aspect is kept)."),
            ] + [map_inputs.images_input(f"The images run {k} generated (optional): shown above its column, so you "
                                         f"see what the maps describe. For video, the decoded frames.", f"image_{k}")
                 for k in range(1, RUNS + 1)],
            outputs=[
                io.Image.Output(display_name="grid", tooltip="Rows: concepts; columns: runs. One grid per image "
                                                             "(video: per token frame, video-major)."),
                io.String.Output(display_name="area_shares",
                                 tooltip="Each concept's share of the image per run (the share it wins among that run's "
                                         "own concepts), as a table; '-' where a run lacks the word."),
                io.String.Output(display_name="json",
                                 tooltip="The same as JSON: {runs, concepts, items: [{image, frame, area_share: "
                                         "{concept: [per run, null where missing]}}]}."),
            ],
        )

    @classmethod
    def execute(cls, run_1, run_2, name_1="run 1", name_2="run 2", run_3=None, name_3="run 3", run_4=None,
                name_4="run 4", method=maths.AUTO, normalization="shared", colormap="plasma",
                cell_size=128, image_1=None, image_2=None, image_3=None, image_4=None) -> io.NodeOutput:
        given = [(k, run, name, images) for k, (run, name, images) in
                 enumerate([(run_1, name_1, image_1), (run_2, name_2, image_2), (run_3, name_3, image_3),
                            (run_4, name_4, image_4)], 1) if run is not None]
        runs = [_run(k, capture, name, method, images, cell_size) for k, capture, name, images in given]
        _check_matching(runs)
        words = _union([run["words"] for run in runs])
        lower = [w.lower() for w in words]
        count = runs[0]["items"].shape[0]
        grids, shares = [], []
        for run in runs:
            index = {w.lower(): c for c, w in enumerate(run["words"])}
            run["rows"] = [index.get(w) for w in lower]
        scales = _scales(runs, normalization)
        for n in range(count):
            grid_rows, item_shares = [[] for _ in words], {w: [] for w in words}
            for run, (lo, hi) in zip(runs, scales):
                maps = run["items"][n:n + 1]
                if normalization == "per_concept":
                    shown = maths.normalize(maps, "per_concept")
                else:
                    shown = (maps - lo[n]) / (hi[n] - lo[n]).clamp_min(1e-12)
                tiles = maths.colorize(maths.resize(shown, maths.fit(run["image_size"], cell_size)), colormap)[0]
                for r, c in enumerate(run["rows"]):
                    grid_rows[r].append(None if c is None else tiles[c])
                    item_shares[words[r]].append(None if c is None else round(float(run["area_share"][n, c]), 4))
            pictured = any(run["pictures"] for run in runs)
            picture_row = [[run["pictures"][n] if run["pictures"] else BLANK for run in runs]] if pictured else []
            grids.append(draw_grid(picture_row + grid_rows, ["image"] * pictured + words, [run["name"] for run in runs],
                                   (cell_size, cell_size)))
            shares.append({"image": n // runs[0]["frames"], "frame": n % runs[0]["frames"] if runs[0]["video"] else None,
                           "area_share": item_shares})
        names = [run["name"] for run in runs]
        data = {"runs": names, "concepts": words, "items": shares}
        return io.NodeOutput(torch.stack(grids), _table(names, shares), json.dumps(data, indent=2))


def _run(k: int, capture, name: str, method: str, images, cell_size: int) -> dict:
    input_name = f"run_{k}"
    map_inputs.check_captured(TITLE, capture, input_name)
    maps = map_inputs.maps(TITLE, capture, method, input_name=input_name)
    items = maths.as_items(maps)
    pictures = None if images is None else map_inputs.item_pictures(TITLE, f"image_{k}", capture, images,
                                                                     maths.fit(capture.image_size, cell_size))
    return {"name": name.strip() or input_name, "words": tuple(capture.concepts), "items": items, "pictures": pictures,
            "image_size": capture.image_size, "video": capture.is_video, "frames": maps.shape[2] if maps.ndim == 5 else 1,
            "area_share": maths.regions(items, capture.image_size)["area_share"], "input": input_name}


def _union(word_lists) -> list:
    """Every word once (matched without case), in order of first appearance."""
    seen, words = set(), []
    for word in (w for ws in word_lists for w in ws):
        if word.lower() not in seen:
            seen.add(word.lower())
            words.append(word)
    return words


def _check_matching(runs):
    first = runs[0]
    for run in runs[1:]:
        if run["video"] != first["video"]:
            kinds = {True: "video", False: "image"}
            raise NodeInputError(TITLE, run["input"], f"{kinds[run['video']]} maps, but {first['input']} holds "
                                                     f"{kinds[first['video']]} maps; compare runs of one kind")
        if run["items"].shape[0] != first["items"].shape[0]:
            what = "token frames" if first["video"] else "images"
            raise NodeInputError(TITLE, run["input"], f"{run['items'].shape[0]} {what}, but {first['input']} has "
                                                     f"{first['items'].shape[0]}; compare runs with the same batch "
                                                     "size (and frames)")


def _scales(runs, normalization) -> list:
    """Per run, (low, high) per item: over every run (shared) or over the run's own concepts."""
    own = [(run["items"].flatten(1).amin(1), run["items"].flatten(1).amax(1)) for run in runs]
    if normalization != "shared":
        return own
    low = torch.stack([lo for lo, _ in own]).amin(0)
    high = torch.stack([hi for _, hi in own]).amax(0)
    return [(low, high)] * len(runs)


def _table(names, shares) -> str:
    width = max([len(n) for n in names] + [7]) + 2
    lines = []
    for item in shares:
        title = report.item_title(item)
        concept_w = max(len(w) for w in item["area_share"]) + 2
        lines += [title + ": share of the image each concept wins",
                  f"{'concept':<{concept_w}}" + "".join(f"{n:>{width}}" for n in names)]
        for word, values in item["area_share"].items():
            lines.append(f"{word:<{concept_w}}" + "".join(f"{'-' if v is None else f'{v:.1%}':>{width}}" for v in values))
        lines.append("")
    return "\n".join(lines).rstrip()
