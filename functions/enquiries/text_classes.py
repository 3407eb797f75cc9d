"""The classes of Unicode characters visitor text is judged by, each decided once, by Unicode property.

- Control characters: general category Cc (C0, DEL and C1: U+0000-U+001F, U+007F-U+009F). ESC and
  U+009B (CSI) start terminal escape sequences; NUL, CR and LF end or split headers.
- Format characters: general category Cf. They are invisible; the bidirectional embeddings,
  overrides, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C) reorder the
  text that follows them (https://www.unicode.org/reports/tr9/): "Jane", U+202E, "evil.example" shows
  as "Janeelpmaxe.live". Others hide text or split words (U+200B, U+2060, U+FEFF, U+00AD, the tags).
- Line and paragraph separators: general categories Zl and Zp (U+2028, U+2029), which many programs
  show as a new line: "Jane", U+2028, "Bcc: x" looks like a second header line.
- Default-ignorable code points (Default_Ignorable_Code_Point, below): shown as nothing, among them
  the combining grapheme joiner, the Hangul fillers that look like a space, and the variation
  selectors.

Two of them are needed to write names right, and reorder nothing: ZERO WIDTH NON-JOINER and ZERO
WIDTH JOINER (U+200C, U+200D) choose letter forms in Persian, Arabic and Indic scripts and join emoji
sequences. The emoji variation selectors (U+FE0E text style, U+FE0F emoji style) choose how a symbol
such as a heart is drawn (https://www.unicode.org/reports/tr51/#Emoji_Variation_Sequences); after a
letter they do nothing but hide, so they are allowed only after a symbol, punctuation or digit.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right

JOINERS = frozenset({"\u200c", "\u200d"})
EMOJI_VARIATION_SELECTORS = frozenset({"\ufe0e", "\ufe0f"})
LINE_FEED, TAB = "\n", "\t"

# Default_Ignorable_Code_Point as Unicode derives it (DerivedCoreProperties.txt,
# https://www.unicode.org/Public/UCD/latest/ucd/DerivedCoreProperties.txt, and
# https://www.unicode.org/reports/tr44/#Default_Ignorable_Code_Point):
#     Other_Default_Ignorable_Code_Point + Cf + Variation_Selector
#     - White_Space - FFF9..FFFB - 13430..1343F - Prepended_Concatenation_Mark
# Cf is read from the running Python's unicodedata; the property lists below are PropList.txt's
# (https://www.unicode.org/Public/UCD/latest/ucd/PropList.txt), stable since Unicode 14.
# tests/test_text_classes.py checks the result against DerivedCoreProperties' own list.
_OTHER_DEFAULT_IGNORABLE = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x2065, 0x2065),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0xE0000, 0xE0000),
    (0xE0002, 0xE001F),
    (0xE0080, 0xE00FF),
    (0xE01F0, 0xE0FFF),
)
_VARIATION_SELECTOR = ((0x180B, 0x180D), (0x180F, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))
# Format characters that are meant to be seen: the interlinear annotation characters, the Egyptian
# hieroglyph format controls, and the prepended concatenation marks (Arabic number signs and the like).
_VISIBLE_FORMAT = (
    (0xFFF9, 0xFFFB),
    (0x13430, 0x1343F),
    (0x0600, 0x0605),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
)
# A symbol that draws nothing: the empty Braille pattern, used to fake a blank name.
_BLANK_SYMBOLS = frozenset({"\u2800"})
# What may come before an emoji variation selector: symbols, punctuation (# * ‼) and digits (keycaps).
_EMOJI_BASE_CATEGORIES = ("S", "P", "N")


class _Ranges:
    """Code point ranges, looked up by bisection: no set of thousands of code points built at import."""

    def __init__(self, ranges: tuple[tuple[int, int], ...]) -> None:
        ordered = sorted(ranges)
        self._lows = [low for low, _ in ordered]
        self._highs = [high for _, high in ordered]

    def __contains__(self, code: int) -> bool:
        index = bisect_right(self._lows, code) - 1
        return index >= 0 and code <= self._highs[index]


_OTHER_DEFAULT_IGNORABLE_OR_VARIATION_SELECTOR = _Ranges(_OTHER_DEFAULT_IGNORABLE + _VARIATION_SELECTOR)
_VISIBLE_FORMAT_CODES = _Ranges(_VISIBLE_FORMAT)


def is_control(char: str) -> bool:
    """A control character (Cc): C0, DEL or C1."""
    return unicodedata.category(char) == "Cc"


def is_format(char: str) -> bool:
    """A format character (Cf)."""
    return unicodedata.category(char) == "Cf"


def is_line_or_paragraph_separator(char: str) -> bool:
    """U+2028 or U+2029 (Zl, Zp): a new line to many programs."""
    return unicodedata.category(char) in ("Zl", "Zp")


def is_default_ignorable(char: str) -> bool:
    """Default_Ignorable_Code_Point, derived as DerivedCoreProperties.txt derives it."""
    code = ord(char)
    candidate = code in _OTHER_DEFAULT_IGNORABLE_OR_VARIATION_SELECTOR or is_format(char)
    return candidate and not char.isspace() and code not in _VISIBLE_FORMAT_CODES


def is_control_format_or_separator(char: str) -> bool:
    """Never in a header value such as Idempotency-Key: Cc, Cf, Zl or Zp."""
    return is_control(char) or is_format(char) or is_line_or_paragraph_separator(char)


def breaks_lines_or_controls(text: str) -> bool:
    """Whether `text` holds a control character or a line or paragraph separator."""
    return any(is_control(char) or is_line_or_paragraph_separator(char) for char in text)


def controls_beyond_line_feed_and_tab(text: str) -> bool:
    """Whether `text` holds a control character (C0, DEL, C1) other than LF and tab, CR included."""
    return any(is_control(char) and char not in (LINE_FEED, TAB) for char in text)


def is_format_or_default_ignorable(char: str) -> bool:
    """A format (Cf) or default-ignorable character. The format characters meant to be seen count, as
    every Cf does: listed as well, so that the class is the same whichever Unicode version Python has."""
    return is_format(char) or is_default_ignorable(char) or ord(char) in _VISIBLE_FORMAT_CODES


def _hidden(text: str, index: int) -> bool:
    char = text[index]
    if char in JOINERS:
        return False
    if char in EMOJI_VARIATION_SELECTORS:
        before = text[index - 1] if index else ""
        return not (before and unicodedata.category(before)[0] in _EMOJI_BASE_CATEGORIES)
    return is_format_or_default_ignorable(char)


def hidden_characters(text: str) -> bool:
    """Whether `text` holds a format or default-ignorable character other than the joiners, or an
    emoji variation selector that does not follow a symbol."""
    return any(_hidden(text, index) for index in range(len(text)))


def _shows_nothing(char: str) -> bool:
    return (
        char.isspace()
        or char in _BLANK_SYMBOLS
        or is_control(char)
        or is_format(char)
        or is_line_or_paragraph_separator(char)
        or is_default_ignorable(char)
    )


def shows_nothing(text: str) -> bool:
    """Whether `text` is empty to the eye: only white space, control, format, separator and
    default-ignorable characters, and symbols that draw nothing."""
    return all(_shows_nothing(char) for char in text)
