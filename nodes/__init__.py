"""The ComfyUI nodes (V3 API). Each node checks its inputs and delegates."""
from comfy_api.latest import ComfyExtension, io

from .aggregate import HeatmapAggregate
from .apply import ConceptAttentionApply
from .demo import ConceptAttentionDemoModel
from .encode import ConceptEncode
from .encode_image import ConceptAttentionEncodeImage
from .overlay import HeatmapOverlay
from .sampler import ConceptAttentionSampler

NODES = [ConceptEncode, ConceptAttentionSampler, ConceptAttentionApply, ConceptAttentionEncodeImage,
         HeatmapAggregate, HeatmapOverlay, ConceptAttentionDemoModel]


class ConceptAttentionExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
