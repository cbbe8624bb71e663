"""Where a concept word's tokens sit in a text encoder's conditioning.

A family module's text_encoding(clip) names the tokenizer stream whose positions
index its conditioning; for a text encoder no family knows, the stream as long as
the conditioning is used. Inside that stream the word is found the same way for
every encoder: two one-token probe words are tokenized, and the first index where
their tokens differ is where a word starts. This holds for CLIP (after its start
token), T5 (at 0) and the chat templates of Flux 2's language models, whose
template tokens all carry the word's id (Klein's "cat" sits at 3 of 13). Where an
encoder drops leading template tokens from its output, positions move back by as many.
"""
from dataclasses import dataclass

PROBES = ("cat", "dog")   # one token each in the CLIP, T5 and Qwen tokenizers ComfyUI ships


@dataclass(frozen=True)
class TextEncoding:
    family: str         # the model family the vectors are for; None: any whose text width fits
    stream: str         # the tokenizer stream ("t5xxl", "l", "qwen3_4b", ...) whose positions index the conditioning
    description: str    # what encoded the words, for the user


@dataclass(frozen=True)
class Template:
    """Where a word goes in one tokenizer stream."""
    start: int          # the index of a word's first token
    filler: int         # tokens with a word id around a word (template tokens; 0 without a template)
    length: int         # the stream's length for a one-token word (with the tokenizer's padding)

    def in_conditioning(self, tokens: dict, stream: str, conditioning_length: int) -> "Template":
        """The template as the conditioning holds it, from one word's tokens and the
        length of its conditioning: an encoder may drop leading tokens (Qwen-Image
        crops its chat template's system prefix), which moves every position back."""
        dropped = max(0, len(_flat(tokens, stream)) - conditioning_length)
        return Template(self.start - dropped, self.filler, self.length - dropped)


def template(clip, stream: str) -> Template:
    """Find where words go in `stream` from the two probe words; ValueError if they
    are not one token each at the same place."""
    a, b = (_flat(clip.tokenize(probe, return_word_ids=True), stream) for probe in PROBES)
    differ = [i for i, (x, y) in enumerate(zip(a, b)) if x[0] != y[0]]
    if len(a) != len(b) or len(differ) != 1:
        raise ValueError(f"the {stream} tokenizer does not put one word at one place")
    return Template(start=differ[0], filler=_word_tokens(a) - 1, length=len(a))


def word_positions(found: Template, tokens: dict, stream: str) -> list:
    """Positions of a word's own tokens in its conditioning, from its tokenization
    clip.tokenize(word, return_word_ids=True)."""
    count = _word_tokens(_flat(tokens, stream)) - found.filler
    return list(range(found.start, found.start + count))


def matching_stream(tokens: dict, length: int, encoder_name: str):
    """The TextEncoding of an encoder no family knows: the stream `length` tokens long
    (T5 first, since its tokens line up with the conditioning where CLIP's are
    pooled), or None."""
    streams = sorted(tokens, key=lambda key: key != "t5xxl")
    for key in streams:
        if len(_flat(tokens, key)) == length:
            return TextEncoding(family=None, stream=key, description=f"{encoder_name}: its {key} tokens")
    return None


def _flat(tokens: dict, stream: str) -> list:
    return [t for batch in tokens[stream] for t in batch]


def _word_tokens(flat: list) -> int:
    # (token, weight, word id): start, end and padding tokens have word id 0.
    return sum(1 for t in flat if t[2] > 0)
