"""Characters nobody sees: the format controls that hide or reorder text, and text that shows nothing.

Unicode's format characters (general category Cf) are invisible. The bidirectional embeddings,
overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) reorder the
text that follows them (https://www.unicode.org/reports/tr9/): "Jane", U+202E, "evil.example"
shows as "Janeelpmaxe.live". Others hide text or split words (U+200B, U+2060, U+FEFF, U+00AD, the tag
characters). Two are needed to write names right, and reorder nothing: ZERO WIDTH NON-JOINER and
ZERO WIDTH JOINER (U+200C, U+200D) choose letter forms in Persian, Arabic and Indic scripts and
join emoji sequences, so they are allowed.
"""

from __future__ import annotations

import unicodedata

JOINERS = frozenset({"\u200c", "\u200d"})

# Default_Ignorable_Code_Point, from Unicode's DerivedCoreProperties.txt
# (https://www.unicode.org/reports/tr44/#Default_Ignorable_Code_Point): characters shown as nothing,
# among them the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0) that look like a space and the
# variation selectors. Stable across Unicode versions; Cf characters are found by category instead.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# A symbol that draws nothing: the empty Braille pattern, used to fake a blank name.
_BLANK_SYMBOLS = frozenset({"\u2800"})


def hidden_format_characters(text: str) -> bool:
    """Whether `text` holds a format character (category Cf) other than the two joiners."""
    return any(unicodedata.category(char) == "Cf" and char not in JOINERS for char in text)


def _shows_nothing(char: str) -> bool:
    if char.isspace() or char in _BLANK_SYMBOLS or unicodedata.category(char) in ("Cc", "Cf"):
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _DEFAULT_IGNORABLE)


def shows_nothing(text: str) -> bool:
    """Whether `text` is empty to the eye: only white space, control, format and default-ignorable
    characters, and symbols that draw nothing."""
    return all(_shows_nothing(char) for char in text)
