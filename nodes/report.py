"""ConceptReport: the maps as answers (which concept wins where, how strongly,
which look ignored or merged), as text, JSON, two numbers and a chart."""
import torch
from comfy_api.latest import io

from ..analysis import maths, report
from ..analysis.errors import require_finite
from ..analysis.render import concept_colours, draw_bar_chart
from . import checks, map_inputs
from .types import ANSWERS, schema

NODE = "ConceptReport"
TITLE = "Concept Report"   # what the user sees, and what errors name
DEFAULTS = report.Thresholds()


class ConceptReport(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=ANSWERS,
            search_aliases=["area share", "where is each word", "concept chart", "coverage"],
            description="Per image (per token frame for video) and per concept: the share of the image it wins, its "
                        "peak and mean strength on one scale per image, the centroid and box of where it wins, its "
                        "rank, and flags: ignored (wins too little, or is weak everywhere) and merged (its map is "
                        "nearly another concept's: the model may have fused them).",
            inputs=[
                map_inputs.capture_input(),
                map_inputs.layers_input(),
                map_inputs.timesteps_input(),
                map_inputs.method_input(),
                io.Float.Input("min_area_share", default=DEFAULTS.min_area_share, min=0.0, max=1.0, step=0.005,
                               tooltip="Flag a concept as ignored when it wins less than this share of the picture."),
                io.Float.Input("min_peak", default=DEFAULTS.min_peak, min=0.0, max=1.0, step=0.01,
                               tooltip="Flag a concept as ignored when even its strongest spot stays under this "
                                       "(1 = the strongest map in the image)."),
                io.Float.Input("merge_overlap", default=DEFAULTS.merge_overlap, min=0.0, max=1.0, step=0.01,
                               tooltip="Flag two concepts as merged when their maps cover the same place this much "
                                       "(1 = the same map; the weighted Jaccard of their shapes)."),
                io.String.Input("concept", default="",
                                tooltip="The concept whose area share and peak come out as numbers (empty: the first). "
                                        "Over a batch or a video: the highest value of any image or frame."),
                map_inputs.after_input(),
            ],
            outputs=[
                io.String.Output(display_name="table", tooltip="The report as a readable table, one block per image."),
                io.String.Output(display_name="json", tooltip="The report as JSON with stable keys (see the README)."),
                io.Float.Output(display_name="area_share", tooltip="The chosen concept's share of the image, 0..1."),
                io.Float.Output(display_name="peak", tooltip="The chosen concept's peak strength, 0..1 on one scale "
                                                             "per image."),
                io.Image.Output(display_name="chart", tooltip="Bars of each concept's area share, one chart per image "
                                                              "(per token frame for video); ignored concepts in grey."),
            ],
        )

    @classmethod
    def validate_inputs(cls, layers=None, timesteps=None):
        return checks.refusal(TITLE, layers=layers, timesteps=timesteps)

    @classmethod
    def execute(cls, concept_attn, layers="all", timesteps="all", method=maths.AUTO,
                min_area_share=DEFAULTS.min_area_share, min_peak=DEFAULTS.min_peak,
                merge_overlap=DEFAULTS.merge_overlap, concept="", after=None) -> io.NodeOutput:
        require_finite(TITLE, min_area_share=min_area_share, min_peak=min_peak, merge_overlap=merge_overlap)
        capture = concept_attn
        words = tuple(capture.concepts)
        chosen = words[map_inputs.concept_index(TITLE, words, concept, allow_all=False)] if concept.strip() else words[0]
        built = build_report(TITLE, capture, layers, timesteps, method,
                             report.Thresholds(min_area_share, min_peak, merge_overlap))
        charts = torch.stack([_chart(item) for item in built["items"]])
        return io.NodeOutput(report.to_table(built), report.to_json(built), report.value(built, chosen, "area_share"),
                             report.value(built, chosen, "peak"), charts)


def build_report(node, capture, layers, timesteps, method, thresholds=DEFAULTS) -> dict:
    layer_subset, step_subset = map_inputs.selection(node, capture, layers, timesteps)
    maps = map_inputs.maps(node, capture, method, layer_subset, step_subset)
    return report.build(maps, tuple(capture.concepts), capture.image_size, thresholds, capture.token_frame_ranges(),
                        family=capture.family, method=capture.resolve_method(method), method_note=capture.method_note,
                        layers=layer_subset or capture.layers,
                        steps=step_subset or capture.captured_steps)


def _chart(item) -> torch.Tensor:
    title = report.item_title(item)
    bars = []
    colours = concept_colours([entry["concept"] for entry in item["concepts"]])
    for colour, entry in zip(colours, item["concepts"]):
        flags = (["ignored"] if entry["ignored"] else []) + [f"merged: {w}" for w in entry["merged_with"]]
        note = f"{entry['area_share']:.0%}  peak {entry['peak']:.2f}" + (f"  ({', '.join(flags)})" if flags else "")
        bars.append((entry["concept"], entry["area_share"], note, colour, entry["ignored"]))
    return draw_bar_chart(f"{title}: share of the image each concept wins", bars)
