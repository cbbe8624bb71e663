"""Where a concept word's tokens sit in a text encoder's conditioning.

A family module's text_encoding(clip) names the tokenizer stream whose positions
index its conditioning; for a text encoder no family knows, the stream whose
length equals the conditioning's is used.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class TextEncoding:
    family: str         # the model family the vectors are for; None: any whose text width fits
    stream: str         # the tokenizer stream ("t5xxl", "l", ...) whose positions index the conditioning
    description: str    # what encoded the words, for the user


def word_positions(tokens: dict, stream: str) -> list:
    """Positions of the word's own tokens (word id > 0; start, end and padding have 0)
    in a tokenizer stream of clip.tokenize(word, return_word_ids=True)."""
    flat = [t for batch in tokens[stream] for t in batch]
    return [i for i, t in enumerate(flat) if t[2] > 0]


def matching_stream(tokens: dict, length: int, encoder_name: str):
    """The TextEncoding of an encoder no family knows: the stream `length` tokens long
    (T5 first, since its tokens line up with the conditioning where CLIP's are
    pooled), or None."""
    streams = sorted(tokens, key=lambda key: key != "t5xxl")
    for key in streams:
        if sum(len(batch) for batch in tokens[key]) == length:
            return TextEncoding(family=None, stream=key, description=f"{encoder_name}: its {key} tokens")
    return None
