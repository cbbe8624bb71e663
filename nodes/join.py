"""ConceptAttentionJoin: the captures of one generation sampled in two parts (Wan 2.2
14B's high-noise and low-noise models) as one CONCEPT_ATTN of every step."""
from comfy_api.latest import io

from ..analysis.errors import NodeInputError
from ..analysis.join import JoinError, join_parts
from . import map_inputs
from .types import CAPTURE, ConceptAttn, schema

NODE = "ConceptAttentionJoin"
TITLE = "Concept Join (high + low noise)"   # what the user sees, and what errors name
INPUTS = {"first": "concept_attn_a", "second": "concept_attn_b"}


class ConceptAttentionJoin(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=CAPTURE,
            search_aliases=["wan 2.2 14b", "two samplers", "high noise low noise", "ksampleradvanced", "join maps"],
            description="For a video or image sampled in two parts, as Wan 2.2 14B is (its high-noise model in one "
                        "KSamplerAdvanced for the first steps, its low-noise model in a second for the rest): joins "
                        "the two ConceptAttention Apply captures into one that covers every step, as if one sampler "
                        "had run them all. Refuses captures of different latents, concepts or layers, and parts that "
                        "overlap or leave steps out.",
            inputs=[
                ConceptAttn.Input(INPUTS["first"], tooltip="The maps of one part, from a ConceptAttention Apply node "
                                                           "(either part; they are put in order by their noise levels)."),
                ConceptAttn.Input(INPUTS["second"], tooltip="The maps of the other part of the same generation."),
                io.Latent.Input("after", optional=True,
                                tooltip="Connect the LATENT of the sampler that runs last here, so that this node "
                                        "joins the maps after both parts have made them."),
            ],
            outputs=[
                ConceptAttn.Output(display_name="concept_attn",
                                   tooltip="The maps of every step of the generation, for Concept Heatmaps, the Viewer "
                                           "or the answer nodes; steps are numbered from the first part's start."),
            ],
        )

    @classmethod
    def execute(cls, concept_attn_a, concept_attn_b, after=None) -> io.NodeOutput:
        try:
            joined = join_parts(concept_attn_a, concept_attn_b)
        except JoinError as e:
            input_name = INPUTS[e.which] if e.which else f"{INPUTS['first']} and {INPUTS['second']}"
            hint = map_inputs.AFTER_HINT if e.which else ""
            raise NodeInputError(TITLE, input_name, f"{e}{hint}") from None
        return io.NodeOutput(joined)
