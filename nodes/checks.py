"""The input checks that need no model, run when a prompt is queued (each node's
validate_inputs), so that a mistake is refused on its input before anything runs.
execute runs them again with everything else, as a prompt can skip validation.

Only text inputs are checked here: ComfyUI skips its own range check of every input
that validate_inputs takes, so the numbers keep theirs (NaN, which passes it and which
no widget can send, is refused when the node runs)."""
from ..analysis.errors import NodeInputError
from ..analysis.selection import check_index_text, parse_concepts

INDEX_WORDS = {"layers": "layer", "timesteps": "timestep"}


def concept_words(node: str, text: str) -> tuple:
    try:
        return parse_concepts(text)
    except ValueError as e:
        raise NodeInputError(node, "concepts", str(e)) from None


def refusal(node: str, concepts: str = None, **index_texts) -> bool | str:
    """validate_inputs' answer: True, or the message of the first mistake. An input given
    as None comes through a link: its value is known only when the graph runs. ComfyUI
    files the answer under each input that validate_inputs takes, so the message names
    the one at fault."""
    try:
        if concepts is not None:
            concept_words(node, concepts)
        for name, text in index_texts.items():
            if text is not None and text.strip().lower() != "default":   # the capture nodes' own layers
                try:
                    check_index_text(text, INDEX_WORDS[name])
                except ValueError as e:
                    raise NodeInputError(node, name, str(e)) from None
    except NodeInputError as e:
        return str(e)
    return True
