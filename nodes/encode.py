"""ConceptEncode: concept words -> one embedding each, through the connected text encoder."""
import torch
from comfy_api.latest import io

from .. import hooks
from ..analysis.data import ConceptSet
from ..analysis.errors import NodeInputError
from ..analysis.selection import MAX_CONCEPTS, MAX_WORD_CHARS
from ..hooks.text import template, word_positions
from . import checks
from .types import CAPTURE, Concepts, schema

NODE = "ConceptEncode"
TITLE = "Concept Encode"   # what the user sees, and what errors name
POOLING = ("first_token", "mean")
MAX_WORD_TOKENS = 16   # a word or a short phrase; longer text is a prompt, not a concept


class ConceptEncode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return schema(
            node_id=NODE,
            display_name=TITLE,
            category=CAPTURE,
            search_aliases=["concept words", "conceptattention", "mask from words", "words to find"],
            description="Encodes each concept word on its own with the model's text encoder. "
                        "Concepts need not appear in the prompt.",
            inputs=[
                io.Clip.Input("clip", tooltip="The text encoder you loaded for the model; it must be the one that goes with it ("
                                              + "; ".join(f"{family.name}: {family.text_encoder}"
                                                          for family in hooks.FAMILIES) + ")."),
                io.String.Input("concepts", multiline=True, default="dragon, rock, sky",
                                tooltip=f"The things to find in the picture, e.g. \"dragon, rock, sky\", separated by commas or new "
                                        f"lines; they need not be in the prompt. Each must be different; at most "
                                        f"{MAX_CONCEPTS} concepts, each a word or short phrase of at most {MAX_WORD_CHARS} "
                                        f"characters and {MAX_WORD_TOKENS} tokens, without control characters."),
                io.Combo.Input("pooling", options=POOLING, default="first_token",
                               tooltip="How a word the encoder splits into pieces becomes one concept. first_token: its first "
                                       "piece, as the paper. mean: the average of all its pieces (better for long or "
                                       "rare words)."),
            ],
            outputs=[
                Concepts.Output(display_name="concepts", tooltip="The concepts, for a ConceptAttention Sampler, Apply or Encode Image node (each "
                                                                      "word with its vector from the text encoder)."),
                io.String.Output(display_name="encoded_with",
                                 tooltip="Which text encoder read the words, and which of its parts gave the vectors "
                                         "(SD3: the CLIP tokens, or T5's when only T5 is loaded)."),
            ],
        )

    @classmethod
    def validate_inputs(cls, concepts=None):
        return checks.refusal(TITLE, concepts=concepts)

    @classmethod
    def execute(cls, clip, concepts, pooling="first_token") -> io.NodeOutput:
        words = checks.concept_words(TITLE, concepts)
        if clip is None:
            raise NodeInputError(TITLE, "clip", "no text encoder is connected; load one with a CLIP loader")
        encoded = [_encode(clip, word) for word in words]
        first_tokens, first_cond = encoded[0]
        encoding = hooks.text_encoding(clip, first_tokens, first_cond.shape[1])
        if encoding is None:
            known = "; ".join(f"{family.name}: {family.text_encoder}" for family in hooks.FAMILIES)
            raise NodeInputError(TITLE, "clip", f"this text encoder ({type(clip.cond_stage_model).__name__}) is not "
                                               f"one Concept Encode knows, and its output does not line up with its "
                                               f"tokens, so the words cannot be found in it. It knows: {known}")
        try:
            found = template(clip, encoding.stream).in_conditioning(first_tokens, encoding.stream, first_cond.shape[1])
        except ValueError as e:
            raise NodeInputError(TITLE, "clip", f"concept tokens cannot be found in this text encoder's output: {e}") from None
        vectors = [_pool(word, cond, word_positions(found, tokens, encoding.stream), pooling)
                   for word, (tokens, cond) in zip(words, encoded)]
        # The paper reads existing images with an empty prompt and guidance 0.
        empty_prompt = clip.encode_from_tokens_scheduled(clip.tokenize(""), add_dict={"guidance": 0.0})
        result = ConceptSet(words=words, embeddings=torch.stack(vectors), pooling=pooling, empty_prompt=empty_prompt,
                            family=encoding.family, encoder=encoding.description, text_position=found.start,
                            text_length=found.length)
        return io.NodeOutput(result, encoding.description)


def _encode(clip, word: str):
    """(tokens with word ids, conditioning) of one word alone."""
    try:
        tokens = clip.tokenize(word, return_word_ids=True)
        cond = clip.encode_from_tokens(tokens)
    except Exception as e:
        raise NodeInputError(TITLE, "clip", f"this text encoder could not encode {word!r}: {e}") from e
    return tokens, cond


def _pool(word: str, cond, positions: list, pooling: str):
    """The word's vector [D]: its first token, or the mean of its tokens."""
    if not positions:
        raise NodeInputError(TITLE, "concepts", f"{word!r} gives no tokens with this text encoder")
    if len(positions) > MAX_WORD_TOKENS:
        raise NodeInputError(TITLE, "concepts", f"{word!r} is {len(positions)} tokens long with this text encoder; a "
                                               f"concept is at most {MAX_WORD_TOKENS} tokens (a word or a short phrase)")
    vectors = cond[0, positions].float().cpu()
    return vectors[0] if pooling == "first_token" else vectors.mean(dim=0)
