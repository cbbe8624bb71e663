"""ConceptGate: is a concept present (or absent) in the maps? A BOOLEAN and the
measured value, so that a graph can branch, or stop the run."""
from comfy_api.latest import io

from ..analysis import maths, report
from ..analysis.errors import NodeInputError, require_finite
from . import checks, map_inputs
from .report import build_report
from .types import ANSWERS, schema

NODE = "ConceptGate"
TITLE = "Concept Gate"   # what the user sees, and what errors name
STOP_WHEN = ("never", "present", "absent")


class ConceptGate(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=ANSWERS,
            search_aliases=["is it in the image", "stop if missing", "concept present"],
            description="Measures one concept in the maps and says whether it reaches a threshold: present is true "
                        "when its area share (or peak) reaches the threshold in any image or frame. It measures what "
                        "the model attended to while it made the image, not what a viewer will see in it: a concept "
                        "can be attended to and not be drawn, or be drawn from words it was not named by.",
            inputs=[
                map_inputs.capture_input(),
                io.String.Input("concept", default="", tooltip="The concept word to measure (one of the captured concepts)."),
                io.Combo.Input("measure", options=report.MEASURES, default="area_share",
                               tooltip="area_share: the share of the image where the concept wins the argmax. peak: its "
                                       "strongest point, 0..1 on one scale per image."),
                io.Float.Input("threshold", default=0.05, min=0.0, max=1.0, step=0.005,
                               tooltip="present = the measure is at least this, in any image or frame of the run."),
                io.Combo.Input("stop_when", options=STOP_WHEN, default="never",
                               tooltip="Stop the run with a message when the concept is present, or absent; never: "
                                       "only give the outputs."),
                map_inputs.layers_input(),
                map_inputs.timesteps_input(),
                map_inputs.method_input(),
                map_inputs.after_input(),
            ],
            outputs=[
                io.Boolean.Output(display_name="present", tooltip="True when the measure reaches the threshold."),
                io.Float.Output(display_name="value", tooltip="The measure: the highest over the images and frames."),
            ],
        )

    @classmethod
    def validate_inputs(cls, layers=None, timesteps=None):
        return checks.refusal(TITLE, layers=layers, timesteps=timesteps)

    @classmethod
    def execute(cls, concept_attn, concept, measure="area_share", threshold=0.05, stop_when="never",
                layers="all", timesteps="all", method=maths.AUTO, after=None) -> io.NodeOutput:
        require_finite(TITLE, threshold=threshold)
        words = tuple(concept_attn.concepts)
        if not concept.strip():
            raise NodeInputError(TITLE, "concept", f"write the concept to measure, one of: {', '.join(words)}")
        word = words[map_inputs.concept_index(TITLE, words, concept, allow_all=False)]
        value = report.value(build_report(TITLE, concept_attn, layers, timesteps, method), word, measure)
        present = value >= threshold
        if stop_when == ("present" if present else "absent"):
            relation = "reaches" if present else "is under"
            raise NodeInputError(TITLE, "stop_when", f"stopped the run as asked: {word!r} is {stop_when} ({measure} "
                                                    f"{value:.3f} {relation} the threshold {threshold:.3f})")
        return io.NodeOutput(present, value)
