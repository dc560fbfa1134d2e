"""Count and split the SMS segments Twilio bills for a text, in GSM-7 or UCS-2.

Source note: ``data/gsm7_charset.json`` and ``data/smart_encoding_map.json`` are verbatim copies of
the project's shared vectors, which were extracted from TwilioDevEd/message-segment-calculator
@a50230fd (MIT), ``src/libs/UnicodeToGSM.ts`` and ``src/libs/SmartEncodingMap.ts``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

__all__ = [
    "Encoding",
    "SegmentInfo",
    "analyze",
    "count_units",
    "segment_capacity",
    "split_segments",
]

Encoding = Literal["GSM-7", "UCS-2"]

# A segment is 140 octets (1120 bits); a concatenated part spends 6 of them on the User Data
# Header, leaving 1072 bits. Source: twilio.com/docs/glossary/what-sms-character-limit and
# TwilioDevEd/message-segment-calculator src/libs/Segment.ts (1120 bits, 6 UDH octets).
_SINGLE_CAPACITY: Final[Mapping[Encoding, int]] = {
    "GSM-7": 160,  # 1120 bits // 7-bit septets
    "UCS-2": 70,  # 1120 bits // 16-bit UTF-16 code units
}
_MULTI_CAPACITY: Final[Mapping[Encoding, int]] = {
    "GSM-7": 153,  # 1072 bits // 7
    "UCS-2": 67,  # 1072 bits // 16
}

# Grapheme clustering: the subset of Unicode UAX #29 (extended grapheme clusters) that SMS text
# needs. Twilio's calculator (grapheme-splitter) breaks CR LF into two characters, so we never
# join them; Hangul jamo sequences and Prepend characters are not clustered.
_ZWJ: Final = "\u200d"
_LAST_BMP: Final = "\uffff"  # code points above take a surrogate pair: 2 UTF-16 units
_FIRST_JOINER: Final = "\u0300"  # no code point below U+0300 extends a cluster (speed shortcut)
_MARK_CATEGORIES: Final = frozenset({"Mn", "Mc", "Me"})  # combining marks, VS1-16: GB9, GB9a
_CONTROL_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp"})  # Control: GB4, GB5
_EXTEND_RANGES: Final = (
    (0x200C, 0x200D),  # ZWNJ, ZWJ: Grapheme_Cluster_Break Extend / ZWJ (GB9)
    (
        0x1F3FB,
        0x1F3FF,
    ),  # emoji skin-tone modifiers: Extend since Unicode 11 (GraphemeBreakProperty)
    (0xE0020, 0xE007F),  # tag characters of subdivision flags: Extend (GraphemeBreakProperty)
)
_REGIONAL_INDICATORS: Final = ((0x1F1E6, 0x1F1FF),)  # flag letters, joined in pairs (GB12, GB13)
_PICTOGRAPHIC_RANGES: Final = (  # coarse cover of Extended_Pictographic (emoji-data.txt), for GB11
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x21AA),
    (0x231A, 0x23FF),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25FE),
    (0x2600, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3299),
    (0x1F000, 0x1F1E5),
    (0x1F200, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
)


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """How Twilio encodes and bills one message body.

    ``units`` are GSM-7 septets (an extension-table character costs 2) or UTF-16 code units.
    ``characters`` counts user-perceived characters (grapheme clusters, CR and LF apart).
    ``non_gsm_characters`` lists, once each, the clusters that forced UCS-2.
    ``text`` is the body actually sent; ``smart_encoding_applied`` is true when Smart Encoding
    replaced at least one character.
    """

    encoding: Encoding
    segments: int
    units: int
    characters: int
    non_gsm_characters: tuple[str, ...]
    text: str
    smart_encoding_applied: bool


def analyze(text: str, *, smart_encoding: bool = False) -> SegmentInfo:
    """Encoding, segment count and sizes of ``text`` as Twilio bills it (empty text: 1 segment)."""
    sent = _smart_encode(text) if smart_encoding else text
    encoding = _detect_encoding(sent)
    clusters = _clusters(sent, encoding)
    _, sizes = _packing(clusters, encoding)
    return SegmentInfo(
        encoding=encoding,
        segments=len(_part_ends(sizes, encoding)),
        units=count_units(sent, encoding),
        characters=len(clusters),
        non_gsm_characters=_non_gsm(clusters),
        text=sent,
        smart_encoding_applied=sent != text,
    )


def split_segments(text: str, *, smart_encoding: bool = False) -> list[str]:
    """The parts Twilio sends, in order; no character or escape pair straddles two parts."""
    sent = _smart_encode(text) if smart_encoding else text
    encoding = _detect_encoding(sent)
    pieces, sizes = _packing(_clusters(sent, encoding), encoding)
    ends = _part_ends(sizes, encoding)
    starts = [0, *ends[:-1]]
    return ["".join(pieces[start:end]) for start, end in zip(starts, ends, strict=True)]


def count_units(text: str, encoding: Encoding) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) that ``text`` takes in ``encoding``."""
    if encoding == "UCS-2":
        return _utf16_units(text)
    charset = _charset()
    if not charset.all.issuperset(text):
        raise ValueError("text has characters outside the GSM-7 alphabet; count it as UCS-2")
    return len(text) + sum(char in charset.extension for char in text)


def segment_capacity(encoding: Encoding, segments: int) -> int:
    """Units one segment holds: the single-message limit, or the per-part one if concatenated."""
    return (_SINGLE_CAPACITY if segments <= 1 else _MULTI_CAPACITY)[encoding]


@dataclass(frozen=True, slots=True)
class _Charset:
    all: frozenset[str]
    extension: frozenset[str]


@cache
def _charset() -> _Charset:
    table = _load_data("gsm7_charset.json")
    basic = frozenset(entry["char"] for entry in table["basic"])
    extension = frozenset(entry["char"] for entry in table["extension"])
    return _Charset(all=basic | extension, extension=extension)


@cache
def _smart_map() -> dict[int, str]:
    table = _load_data("smart_encoding_map.json")
    return {ord(entry["from"]): entry["to"] for entry in table["entries"]}


def _load_data(name: str) -> Any:
    data = resources.files("smsrelay.domain").joinpath("data", name)
    return json.loads(data.read_text(encoding="utf-8"))


def _smart_encode(text: str) -> str:
    """Twilio's Smart Encoding: replace look-alikes code point by code point, before detection."""
    return text.translate(_smart_map())


def _detect_encoding(text: str) -> Encoding:
    return "GSM-7" if _charset().all.issuperset(text) else "UCS-2"


def _clusters(text: str, encoding: Encoding) -> list[str]:
    """User-perceived characters; every GSM-7 character stands alone."""
    return list(text) if encoding == "GSM-7" else _graphemes(text)


def _non_gsm(clusters: list[str]) -> tuple[str, ...]:
    gsm = _charset().all
    return tuple(dict.fromkeys(cluster for cluster in clusters if cluster not in gsm))


def _packing(clusters: list[str], encoding: Encoding) -> tuple[list[str], list[int]]:
    """The indivisible pieces to pack into parts, and the units each one costs."""
    if encoding == "GSM-7":
        extension = _charset().extension
        return clusters, [2 if char in extension else 1 for char in clusters]
    sizes = [_cluster_units(cluster) for cluster in clusters]
    if max(sizes, default=0) <= _MULTI_CAPACITY["UCS-2"]:
        return clusters, sizes
    pieces = [piece for cluster in clusters for piece in _fitting(cluster)]
    return pieces, [_cluster_units(piece) for piece in pieces]


def _fitting(cluster: str) -> list[str]:
    """A cluster longer than a whole part (long mark stacks) is cut between code points."""
    return list(cluster) if _utf16_units(cluster) > _MULTI_CAPACITY["UCS-2"] else [cluster]


def _cluster_units(cluster: str) -> int:
    if len(cluster) == 1:  # shortcut for the common case: a lone code point
        return 1 if cluster <= _LAST_BMP else 2
    return _utf16_units(cluster)


def _part_ends(sizes: list[int], encoding: Encoding) -> list[int]:
    """End index of each part: greedy packing, a piece that does not fit opens the next part."""
    if sum(sizes) <= _SINGLE_CAPACITY[encoding]:
        return [len(sizes)]
    capacity = _MULTI_CAPACITY[encoding]
    ends: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if used + size > capacity:
            ends.append(index)
            used = 0
        used += size
    ends.append(len(sizes))
    return ends


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _graphemes(text: str) -> list[str]:
    clusters: list[str] = []
    for char in text:
        if clusters and _continues(clusters[-1], char):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _continues(cluster: str, char: str) -> bool:
    """Whether ``char`` extends the grapheme cluster ``cluster`` (no break between them)."""
    last = cluster[-1]
    if char < _FIRST_JOINER and last != _ZWJ:
        return False
    if _is_extender(char):
        return not _is_control(last)
    if last == _ZWJ:
        return _in_ranges(char, _PICTOGRAPHIC_RANGES)
    return (
        len(cluster) == 1
        and _in_ranges(last, _REGIONAL_INDICATORS)
        and _in_ranges(char, _REGIONAL_INDICATORS)
    )


def _is_extender(char: str) -> bool:
    return unicodedata.category(char) in _MARK_CATEGORIES or _in_ranges(char, _EXTEND_RANGES)


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in _CONTROL_CATEGORIES and not _in_ranges(
        char, _EXTEND_RANGES
    )


def _in_ranges(char: str, ranges: tuple[tuple[int, int], ...]) -> bool:
    code_point = ord(char)
    return any(low <= code_point <= high for low, high in ranges)
