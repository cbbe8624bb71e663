"""The custom ComfyUI socket types of this extension, declared once."""
from comfy_api.latest import io

CATEGORY = "ConceptAttention"

Concepts = io.Custom("CONCEPTS")
ConceptAttn = io.Custom("CONCEPT_ATTN")
ConceptMaps = io.Custom("CONCEPT_MAPS")
