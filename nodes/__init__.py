"""The ComfyUI nodes (V3 API). Each node checks its inputs and delegates."""
from comfy_api.latest import ComfyExtension, io

from .aggregate import HeatmapAggregate
from .encode import ConceptEncode
from .overlay import HeatmapOverlay
from .sampler import ConceptAttentionSampler

NODES = [ConceptEncode, ConceptAttentionSampler, HeatmapAggregate, HeatmapOverlay]


class ConceptAttentionExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
