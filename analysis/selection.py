"""Parsing of the index lists users type for layers and timesteps
("all", "15-18", "0,3,7", "-4--1" for the last four). No ComfyUI import."""
import re
import unicodedata

MAX_CONCEPTS = 64      # a map per concept and image: more is no longer readable, and costs memory
MAX_WORD_CHARS = 80    # a word or a short phrase


def parse_indices(text: str, count: int, what: str) -> tuple:
    """Sorted unique indices in range(count) from text such as "all", "15-18",
    "0,3,7" or "-4--1" (negative numbers count from the end).

    Raises ValueError with a message that names `what` (e.g. "layer") and the
    valid range.
    """
    text = (text or "").strip().lower()
    if count <= 0:
        raise ValueError(f"there is no {what} to choose from")
    if text in ("", "all"):
        return tuple(range(count))
    chosen = set()
    for part, first, last in _written_ranges(text, what):
        first, last = (i + count if i < 0 else i for i in (first, last))
        if not (0 <= first < count and 0 <= last < count):
            raise ValueError(f"{what} {part} is out of range: valid {what}s are 0-{count - 1} (or negative, counted from the end)")
        if first > last:
            raise ValueError(f"{what} range {part} runs backwards; write it low-high")
        chosen.update(range(first, last + 1))
    return tuple(sorted(chosen))


def check_index_text(text: str, what: str) -> None:
    """What parse_indices refuses before the count is known (at queue time): text that
    is no index list, and ranges that run backwards whatever the count."""
    text = (text or "").strip().lower()
    if text in ("", "all"):
        return
    for part, first, last in _written_ranges(text, what):
        if (first < 0) == (last < 0) and first > last:
            raise ValueError(f"{what} range {part} runs backwards; write it low-high")


def _written_ranges(text: str, what: str) -> list:
    """(part as written, first, last) of each comma-separated part, not yet resolved
    against a count; at least one."""
    ranges = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ranges.append((part, *_bounds(part)))
        except ValueError:
            raise ValueError(f"{part!r} is not a {what} index or range; write e.g. \"all\", \"2-5\" or \"0,3,7\"") from None
    if not ranges:
        raise ValueError(f"no {what} given; write e.g. \"all\", \"2-5\" or \"0,3,7\"")
    return ranges


def _bounds(part: str) -> tuple:
    # A dash after the first character separates a range; a leading dash is a sign.
    cut = part.find("-", 1)
    ends = (part, part) if cut < 0 else (part[:cut], part[cut + 1:])
    if any(end.strip() == "-0" or not re.fullmatch(r"-?[0-9]+", end.strip()) for end in ends):
        raise ValueError(part)              # "-0" is ambiguous (0 is the first, -1 the last); "+3", "3.0": no index
    return int(ends[0]), int(ends[1])


def parse_concepts(text: str) -> tuple:
    """Concept words from text separated by commas or new lines.

    Raises ValueError when there are none or one is repeated (case-insensitively).
    """
    words = [w.strip() for line in (text or "").splitlines() for w in line.split(",")]
    words = [w for w in words if w]
    if not words:
        raise ValueError("no concepts given; write words separated by commas or new lines, e.g. \"dragon, rock, sky\"")
    if len(words) > MAX_CONCEPTS:
        raise ValueError(f"{len(words)} concepts given; at most {MAX_CONCEPTS} fit in one capture")
    for w in words:
        if len(w) > MAX_WORD_CHARS:
            raise ValueError(f"the concept {w[:20]!r}... is {len(w)} characters long; a concept is a word or a short "
                             f"phrase of at most {MAX_WORD_CHARS} characters")
        hidden = [c for c in w if unicodedata.category(c).startswith("C")]
        if hidden:
            raise ValueError(f"the concept {w!r} holds the control or invisible character {hidden[0]!r}; "
                             "write it without")
    seen = {}
    for w in words:
        key = w.lower()
        if key in seen:
            raise ValueError(f"concept {w!r} is given twice; each concept must be different")
        seen[key] = w
    return tuple(words)
