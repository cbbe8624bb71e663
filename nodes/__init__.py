"""The ComfyUI nodes (V3 API). Each node checks its inputs and delegates."""
from comfy_api.latest import ComfyExtension, io

from .aggregate import HeatmapAggregate
from .apply import ConceptAttentionApply
from .compare import ConceptCompare
from .demo import ConceptAttentionDemoModel, install_demo_scene
from .encode import ConceptEncode
from .encode_image import ConceptAttentionEncodeImage
from .evolution import ConceptEvolution
from .gate import ConceptGate
from .join import ConceptAttentionJoin
from .overlay import HeatmapOverlay
from .report import ConceptReport
from .sampler import ConceptAttentionSampler
from .viewer import ConceptAttentionViewer

NODES = [ConceptEncode, ConceptAttentionSampler, ConceptAttentionApply, ConceptAttentionEncodeImage,
         ConceptAttentionJoin, HeatmapAggregate, HeatmapOverlay, ConceptAttentionViewer, ConceptReport, ConceptEvolution, ConceptCompare,
         ConceptGate, ConceptAttentionDemoModel]


class ConceptAttentionExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        # Here rather than in on_load, which ComfyUI 0.3.75 never calls.
        install_demo_scene()
        return NODES
