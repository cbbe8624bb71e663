"""The custom ComfyUI socket types of this extension, its node menu, declared once."""
import dataclasses

from comfy_api.latest import io

# The node menu: what captures maps, what draws them, what answers questions with them, what loads a model.
CATEGORY = "ConceptAttention"
CAPTURE = f"{CATEGORY}/capture"
MAPS = f"{CATEGORY}/maps"
ANSWERS = f"{CATEGORY}/answers"
LOADERS = f"{CATEGORY}/models"

Concepts = io.Custom("CONCEPTS")
ConceptAttn = io.Custom("CONCEPT_ATTN")
ConceptMaps = io.Custom("CONCEPT_MAPS")

_SCHEMA_FIELDS = {field.name for field in dataclasses.fields(io.Schema)}


def schema(**fields) -> io.Schema:
    """io.Schema, without the search aliases where this ComfyUI's schema has none (0.3.75)."""
    return io.Schema(**{name: value for name, value in fields.items() if name in _SCHEMA_FIELDS})
