"""ConceptEncode: concept words -> one embedding each, through the connected text encoder."""
import torch
from comfy_api.latest import io

from ..data import ConceptSet
from ..errors import NodeInputError
from ..selection import parse_concepts
from .types import CATEGORY, Concepts

NODE = "ConceptEncode"
POOLING = ("first_token", "mean")
# Streams whose token positions line up with the conditioning, most specific first.
PREFERRED_STREAMS = ("t5xxl",)


class ConceptEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=NODE,
            display_name="Concept Encode",
            category=CATEGORY,
            description="Encodes each concept word on its own with the model's text encoder. "
                        "Concepts need not appear in the prompt.",
            inputs=[
                io.Clip.Input("clip", tooltip="The text encoder that goes with the model (for Flux 1, the CLIP-L + T5 pair)."),
                io.String.Input("concepts", multiline=True, default="dragon, rock, sky",
                                tooltip="Concept words, separated by commas or new lines. Each must be different."),
                io.Combo.Input("pooling", options=POOLING, default="first_token",
                               tooltip="first_token: the word's first token, as the paper. "
                                       "mean: the mean over all of the word's tokens (better for words split into several tokens)."),
            ],
            outputs=[Concepts.Output(display_name="concepts", tooltip="The concept words and their embeddings.")],
        )

    @classmethod
    def execute(cls, clip, concepts, pooling="first_token") -> io.NodeOutput:
        try:
            words = parse_concepts(concepts)
        except ValueError as e:
            raise NodeInputError(NODE, "concepts", str(e)) from None
        if clip is None:
            raise NodeInputError(NODE, "clip", "no text encoder is connected; load one with a CLIP loader")
        embeddings = torch.stack([_encode_word(clip, word, pooling) for word in words])
        # The paper reads existing images with an empty prompt and guidance 0.
        empty_prompt = clip.encode_from_tokens_scheduled(clip.tokenize(""), add_dict={"guidance": 0.0})
        return io.NodeOutput(ConceptSet(words=words, embeddings=embeddings, pooling=pooling, empty_prompt=empty_prompt))


def _encode_word(clip, word: str, pooling: str) -> torch.Tensor:
    try:
        tokens = clip.tokenize(word, return_word_ids=True)
        cond = clip.encode_from_tokens(tokens)
    except Exception as e:
        raise NodeInputError(NODE, "clip", f"this text encoder could not encode {word!r}: {e}") from e
    positions = _word_positions(tokens, cond.shape[1])
    if positions is None:
        raise NodeInputError(NODE, "clip", "this text encoder's output does not line up with its tokens, "
                                           "so concept tokens cannot be found in it")
    if not positions:
        raise NodeInputError(NODE, "concepts", f"{word!r} gives no tokens with this text encoder")
    vectors = cond[0, positions].float().cpu()
    return vectors[0] if pooling == "first_token" else vectors.mean(dim=0)


def _word_positions(tokens: dict, length: int):
    """Positions of the word's own tokens (word id > 0) in the conditioning, from the
    token stream whose length matches it; None if no stream does."""
    streams = sorted(tokens, key=lambda k: k not in PREFERRED_STREAMS)
    for key in streams:
        flat = [t for batch in tokens[key] for t in batch]
        if len(flat) == length:
            return [i for i, t in enumerate(flat) if t[2] > 0]
    return None
