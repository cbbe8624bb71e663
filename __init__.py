"""ConceptAttention for ComfyUI: per-concept heatmaps from diffusion transformers.

Node code (and with it ComfyUI) is imported only when ComfyUI asks for the
extension, so the maths and data modules stay importable on their own.
"""
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes import ConceptAttentionExtension
    return ConceptAttentionExtension()
