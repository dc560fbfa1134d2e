"""Segment counting checked against every shared upstream vector and hypothesis properties."""

from __future__ import annotations

import ast
import json
import math
import operator
import re
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsrelay.domain.segments import (
    SegmentInfo,
    analyze,
    count_units,
    segment_capacity,
    split_segments,
)

Case = dict[str, Any]


def _repo_root() -> Path:
    here = Path(__file__).resolve()
    return next(parent for parent in here.parents if (parent / "pyproject.toml").is_file())


VECTORS = _repo_root().parent / "shared" / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


SEGMENTS = _load("segments.json")
SMART_MAP = _load("smart_encoding_map.json")
GSM_CHARSET = _load("gsm7_charset.json")
TWILIO = SEGMENTS["twilio_message_segment_calculator"]
SPLITTER = SEGMENTS["sms_splitter_csharp"]
MOZILLA = SEGMENTS["mozilla_b2g_getSegmentInfoForText"]
DERIVED = SEGMENTS["derived_cases_run_through_upstream_calculator"]


def _unescape(escaped: str) -> str:
    """Decode a vector's ``*_escaped`` field (JSON/JS escapes, surrogate pairs included)."""
    decoded: str = json.loads(f'"{escaped}"')
    return decoded


def _body(case: Case) -> str:
    return case["body"] if "body" in case else _unescape(case["body_escaped"])


def _slug(case: Case) -> str:
    label = case.get("description") or case.get("text_expr") or _body(case)
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")[:60] or "empty"


def _params(group: str, cases: list[Case]) -> list[Any]:
    return [pytest.param(case, id=f"{group}/{i:02d}-{_slug(case)}") for i, case in enumerate(cases)]


# --- TwilioDevEd/message-segment-calculator (tests/*.test.js) and cases run through it ------------


def _payload_bits(info: SegmentInfo) -> int:
    return info.units * (7 if info.encoding == "GSM-7" else 16)


def _total_bits(info: SegmentInfo) -> int:
    return _payload_bits(info) + (48 * info.segments if info.segments > 1 else 0)  # 6-octet UDH


# How each field of the calculator's SegmentedMessage reads off a SegmentInfo (see the vectors'
# _meta.semantics_twilio_calculator): numberOfCharacters is septets for GSM-7, graphemes for UCS-2.
TWILIO_FIELDS: dict[str, Callable[[SegmentInfo], object]] = {
    "encoding": lambda info: info.encoding,
    "segments": lambda info: info.segments,
    "messageSize_bits": _payload_bits,
    "totalSize_bits": _total_bits,
    "numberOfCharacters": lambda info: info.units if info.encoding == "GSM-7" else info.characters,
    "numberOfUnicodeScalars": lambda info: len(info.text),
    "nonGsmCharacters": lambda info: list(info.non_gsm_characters),
}


def _as_twilio(info: SegmentInfo, fields: Any) -> dict[str, object]:
    return {field: TWILIO_FIELDS[field](info) for field in fields}


TWILIO_CASES = [
    *_params("twilio_message_segment_calculator/basic", TWILIO["basic"]),
    *_params("twilio_message_segment_calculator/gsm7_escape", TWILIO["gsm7_escape_chars"]["cases"]),
    *_params(
        "twilio_message_segment_calculator/ucs2_with_gsm_extension",
        TWILIO["special_ucs2_with_gsm_extension_chars"],
    ),
    *_params(
        "twilio_message_segment_calculator/line_breaks_and_accents",
        TWILIO["line_breaks_and_combining_accents"],
    ),
    *_params("twilio_message_segment_calculator/methods", TWILIO["methods"]),
]


@pytest.mark.parametrize("case", TWILIO_CASES)
def test_twilio_calculator(case: Case) -> None:
    body = _body(case)
    info = analyze(body)
    assert _as_twilio(info, case["expected"]) == case["expected"]
    assert len(split_segments(body)) == info.segments


@pytest.mark.parametrize(
    "case", _params("derived_cases_run_through_upstream_calculator", DERIVED["cases"])
)
def test_derived_calculator_runs(case: Case) -> None:
    info = analyze(_body(case), smart_encoding=case["smartEncoding"])
    assert _as_twilio(info, case["computed"]) == case["computed"]


@pytest.mark.parametrize(
    "case",
    _params(
        "twilio_message_segment_calculator/ucs2_repeat",
        TWILIO["ucs2_single_grapheme_repeat"]["cases"],
    ),
)
def test_twilio_ucs2_single_grapheme_repeat(case: Case) -> None:
    info = analyze(case["char"] * case["repeat"])
    assert info.segments == case["expected"]["segments"]
    assert (case["char"] not in info.non_gsm_characters) is case["expected"]["every_char_isGSM7"]
    assert info.encoding == "UCS-2"


def _referenced_body(ref: str) -> str:
    match = re.match(r"(\w+)\[(\d+)\]\.body", ref)
    assert match, ref
    body: str = TWILIO[match[1]][int(match[2])]["body"]
    return body


@pytest.mark.parametrize(
    "case",
    _params("twilio_message_segment_calculator/segment_structure", TWILIO["segment_structure"]),
)
def test_twilio_segment_structure(case: Case) -> None:
    body = _referenced_body(case["body_ref"])
    expected = case["expected"]
    info, parts = analyze(body), split_segments(body)
    udh_octets = expected["udh_octets_per_segment"]
    assert len(parts) == info.segments == expected["segments"]
    assert len(parts[-1]) == expected["last_segment_entries"] - udh_octets  # entries = UDH + chars
    assert parts[-1][-1] == expected["last_segment_last_char"]
    bits_per_unit = 7 if info.encoding == "GSM-7" else 16
    assert segment_capacity(info.encoding, len(parts)) == (140 - udh_octets) * 8 // bits_per_unit


SMART_CASES = [
    *(
        pytest.param(
            entry["from"],
            entry["to"],
            id=f"twilio_message_segment_calculator/smart_encoding/{entry['from_unicode']}",
        )
        for entry in SMART_MAP["entries"]
    ),
    pytest.param(
        "".join(entry["from"] for entry in SMART_MAP["entries"]),
        "".join(entry["to"] for entry in SMART_MAP["entries"]),
        id="twilio_message_segment_calculator/smart_encoding/all-keys-joined",
    ),
]


@pytest.mark.parametrize(("source", "replacement"), SMART_CASES)
def test_twilio_smart_encoding_map(source: str, replacement: str) -> None:
    smart = analyze(source, smart_encoding=True)
    assert (smart.text, smart.smart_encoding_applied) == (replacement, True)
    plain = analyze(source)
    assert (plain.text, plain.smart_encoding_applied) == (source, False)


# --- janpieterz/Sms.Splitter (Sms.Splitter.Tests/*.cs) --------------------------------------------


@pytest.mark.parametrize("case", _params("sms_splitter_csharp/gsm_forced", SPLITTER["gsm_forced"]))
def test_sms_splitter_gsm(case: Case) -> None:
    body = _body(case)
    info, parts = analyze(body), split_segments(body)
    assert info.encoding == "GSM-7"  # the forced charset is also what auto-detection picks
    observed = {
        "total_septets": info.units,
        "total_characters": info.units,  # Sms.Splitter's GSM "characters" are septets
        "parts": len(parts),
        "part_septets": [count_units(part, "GSM-7") for part in parts],
        "part_contents": parts,
    }
    assert observed == case["expected"]


def _unicode_part_size(part: str, factor: int) -> int | None:
    """Sms.Splitter reports no size (null) for the lone part of an empty message."""
    return None if part == "" else factor * count_units(part, "UCS-2")


@pytest.mark.parametrize(
    "case", _params("sms_splitter_csharp/unicode_forced", SPLITTER["unicode_forced"])
)
def test_sms_splitter_unicode(case: Case) -> None:
    body = _body(case)
    info, parts = analyze(body), split_segments(body)
    # An empty body has no character to force UCS-2 with; auto-detection calls it GSM-7 (size 0).
    assert info.encoding == "UCS-2" or body == ""
    expected = case["expected"]
    observed = {
        "total_bytes": 2 * count_units(body, "UCS-2"),
        "total_utf16_units": count_units(body, "UCS-2"),
        "parts": len(parts),
        "part_bytes": [_unicode_part_size(part, 2) for part in parts],
        "part_utf16_units": [_unicode_part_size(part, 1) for part in parts],
        "part_contents_escaped": parts,
    }
    decoded = [_unescape(part) for part in expected["part_contents_escaped"]]
    assert observed == {**expected, "part_contents_escaped": decoded}


SPLITTER_CHARSETS = {"GSM-7": "GSM-7", "UCS-2": "UCS-2 (CharacterSet.Unicode)"}


@pytest.mark.parametrize(
    "case", _params("sms_splitter_csharp/auto_detect", SPLITTER["auto_detect"])
)
def test_sms_splitter_auto_detect(case: Case) -> None:
    info = analyze(_body(case))
    observed = {"parts": info.segments, "charset": SPLITTER_CHARSETS[info.encoding]}
    assert {key: observed[key] for key in case["expected"]} == case["expected"]


def _remaining_in_last_part(text: str) -> int:
    info, parts = analyze(text), split_segments(text)
    return segment_capacity(info.encoding, info.segments) - count_units(parts[-1], info.encoding)


@pytest.mark.parametrize(
    "case",
    _params("sms_splitter_csharp/remaining_in_last_part", SPLITTER["remaining_in_last_part"]),
)
def test_sms_splitter_remaining_in_last_part(case: Case) -> None:
    assert _remaining_in_last_part(_body(case)) == case["expected"]["BytesRemainingInLastPart"]


@pytest.mark.parametrize(
    "case", _params("sms_splitter_csharp/total_characters", SPLITTER["total_characters"])
)
def test_sms_splitter_total_characters(case: Case) -> None:
    assert analyze(_body(case)).units == case["expected"]["TotalCharacters"]


# --- Mozilla B2G getSegmentInfoForText (dom/mobilemessage/tests/marionette/test_segment_info.js) --

JS_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _evaluate_js(node: ast.expr) -> Any:
    """Evaluate the few JS forms the Mozilla vectors use: literals, constants, + - * /, times()."""
    match node:
        case ast.Constant(value=value):
            return value
        case ast.Name(id=name):
            return MOZILLA["constants"][name]
        case ast.BinOp(left=left, op=op, right=right):
            return JS_OPERATORS[type(op)](_evaluate_js(left), _evaluate_js(right))
        case ast.Call(func=ast.Name(id="times"), args=[text, count]):
            repeat = _evaluate_js(count)
            assert float(repeat).is_integer(), repeat
            return _evaluate_js(text) * int(repeat)
        case ast.Call(func=ast.Attribute(value=ast.Name(id="Math"), attr="floor"), args=[value]):
            return math.floor(_evaluate_js(value))
    raise ValueError(f"unsupported expression {ast.dump(node)}")


def _mozilla_text(case: Case) -> str:
    if "text" in case:
        text: str = case["text"]
        return text
    text = _evaluate_js(ast.parse(case["text_expr"], mode="eval").body)
    return text


@pytest.mark.parametrize("case", _params("mozilla_b2g_getSegmentInfoForText", MOZILLA["cases"]))
def test_mozilla_segment_info(case: Case) -> None:
    text = _mozilla_text(case)
    assert count_units(text, "UCS-2") == case["text_length_utf16"]  # guards the JS evaluation
    info = analyze(text)
    per_segment = segment_capacity(info.encoding, info.segments)
    observed = {
        "segments": info.segments,
        "charsPerSegment": per_segment,
        "charsAvailableInLastSegment": _remaining_in_last_part(text),
    }
    assert observed == case["expected"]


# --- Our own examples: grapheme clusters, boundaries, edge cases ----------------------------------

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # 11 UTF-16 units
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"


@pytest.mark.parametrize(
    ("text", "characters"),
    [
        pytest.param(FAMILY, 1, id="zwj-family"),
        pytest.param("\U0001f44d\U0001f3fd", 1, id="skin-tone-modifier"),
        pytest.param("\u2764\ufe0f", 1, id="variation-selector"),
        pytest.param("1\ufe0f\u20e3", 1, id="keycap"),
        pytest.param("\U0001f1ee\U0001f1f9\U0001f1eb\U0001f1f7", 2, id="two-flags"),
        pytest.param("\U0001f1ee\U0001f1f9\U0001f1eb", 2, id="flag-and-lone-indicator"),
        pytest.param(ENGLAND, 1, id="tag-sequence-flag"),
        pytest.param("e\u0301\u0301\u0301", 1, id="stacked-combining-accents"),
        pytest.param("\u0dc4\u0dd0", 1, id="sinhala-spacing-mark"),
        pytest.param("\n\u0301", 2, id="mark-after-control-stands-alone"),
        pytest.param("ж\r\n", 3, id="crlf-counts-two-as-in-twilio"),
        pytest.param("a\u200db", 2, id="zwj-before-letter-does-not-join"),
    ],
)
def test_characters_are_grapheme_clusters(text: str, characters: int) -> None:
    assert analyze(text).characters == characters


@pytest.mark.parametrize(
    ("text", "first_part"),
    [
        pytest.param("a" * 64 + FAMILY + "b", "a" * 64, id="zwj-sequence-moves-whole"),
        pytest.param("a" * 66 + "\U0001f1ee\U0001f1f9" + "b" * 9, "a" * 66, id="flag-moves-whole"),
        pytest.param(
            "a" * 65 + "\U0001f44d\U0001f3fd" + "b" * 9, "a" * 65, id="skin-tone-moves-whole"
        ),
        pytest.param("ж" * 66 + "e\u0301" + "ж" * 9, "ж" * 66, id="accent-stays-with-letter"),
        pytest.param("a" * 152 + "€" + "b" * 9, "a" * 152, id="escape-pair-moves-whole"),
        pytest.param(
            "ж" * 66 + "\r\n" + "ж" * 9, "ж" * 66 + "\r", id="crlf-may-split-as-in-twilio"
        ),
    ],
)
def test_boundaries_never_split_a_character(text: str, first_part: str) -> None:
    parts = split_segments(text)
    assert parts[0] == first_part
    assert "".join(parts) == text


def test_cluster_longer_than_a_part_falls_back_to_code_points() -> None:
    text = "a" + "\u0301" * 100
    parts = split_segments(text)
    assert [count_units(part, "UCS-2") for part in parts] == [67, 34]
    assert analyze(text).characters == 1


def test_empty_text_is_one_empty_gsm_segment() -> None:
    assert analyze("") == SegmentInfo("GSM-7", 1, 0, 0, (), "", False)
    assert split_segments("") == [""]


def test_non_gsm_characters_are_listed_once_in_order() -> None:
    assert analyze("ç ω ç \U0001f600 ω").non_gsm_characters == ("ç", "ω", "\U0001f600")


def test_smart_encoding_that_replaces_nothing_is_not_applied() -> None:
    info = analyze("plain text", smart_encoding=True)
    assert (info.text, info.smart_encoding_applied) == ("plain text", False)


def test_smart_encoding_expansions_can_raise_the_count() -> None:
    # Twilio's map turns "…" into "...": 60 of them are 60 UCS-2 units (1 segment) but 180 septets.
    assert analyze("\u2026" * 60).segments == 1
    assert analyze("\u2026" * 60, smart_encoding=True).segments == 2


def test_gsm7_units_refuse_non_gsm_text() -> None:
    with pytest.raises(ValueError, match="GSM-7"):
        count_units("ç", "GSM-7")


# --- Properties -----------------------------------------------------------------------------------

GSM_CHARS = sorted(
    entry["char"] for table in ("basic", "extension") for entry in GSM_CHARSET[table]
)
TRICKY = [
    "\u0301", "\u200d", "\ufe0f", "\U0001f3fd", "\U0001f1ee", "\U0001f1f9", "\U0001f468",
    "\U0001f469", "\U0001f3f3", "\U0001f308", "\U0001f600", "\U000e0067", "\u20e3", "ç", "ж",
    "\u2603", "\r", "\n", "\u2028", "\u00a0", "\u2019", "\u2026", "\t",
]  # fmt: skip
SEQUENCES = [FAMILY, ENGLAND, "\U0001f1ee\U0001f1f9", "\U0001f44d\U0001f3fd", "e\u0301", "\r\n"]
# Smart Encoding replacements that keep the length and are not controls; the others can raise the
# count (expansions such as "…" -> "...", or U+2028 -> " " letting a following mark join a cluster).
ONE_TO_ONE = [
    entry["from"]
    for entry in SMART_MAP["entries"]
    if len(entry["to"]) == 1 and unicodedata.category(entry["from"]) not in {"Cc", "Cf", "Zl", "Zp"}
]
OTHER_SMART_KEYS = {entry["from"] for entry in SMART_MAP["entries"]} - set(ONE_TO_ONE)
characters = st.one_of(st.sampled_from(GSM_CHARS), st.sampled_from(TRICKY), st.characters())
pieces = st.one_of(characters, st.sampled_from(SEQUENCES))
messages = st.lists(pieces, max_size=300).map("".join)
one_to_one_pieces = st.one_of(pieces, st.sampled_from(ONE_TO_ONE)).filter(
    lambda piece: OTHER_SMART_KEYS.isdisjoint(piece)
)
PROPERTY = settings(deadline=None, max_examples=300)


@PROPERTY
@given(text=messages, extra=characters)
def test_appending_a_character_never_lowers_the_count(text: str, extra: str) -> None:
    assert analyze(text + extra).segments >= analyze(text).segments


@PROPERTY
@given(text=st.text(alphabet=st.sampled_from(GSM_CHARS), max_size=500))
def test_gsm_only_text_is_never_ucs2(text: str) -> None:
    info = analyze(text)
    assert (info.encoding, info.non_gsm_characters) == ("GSM-7", ())


@PROPERTY
@given(text=st.lists(one_to_one_pieces, max_size=300).map("".join))
def test_smart_encoding_never_raises_the_count(text: str) -> None:
    assert analyze(text, smart_encoding=True).segments <= analyze(text).segments


@PROPERTY
@given(text=messages, smart=st.booleans())
def test_parts_rebuild_the_text(text: str, smart: bool) -> None:
    info, parts = analyze(text, smart_encoding=smart), split_segments(text, smart_encoding=smart)
    assert "".join(parts) == info.text
    assert sum(len(part) for part in parts) == len(info.text)
    assert len(parts) == info.segments
    assert smart or info.text == text


@PROPERTY
@given(text=messages, smart=st.booleans())
def test_every_part_fits_its_limit(text: str, smart: bool) -> None:
    info, parts = analyze(text, smart_encoding=smart), split_segments(text, smart_encoding=smart)
    capacity = segment_capacity(info.encoding, len(parts))
    sizes = [count_units(part, info.encoding) for part in parts]
    assert max(sizes) <= capacity
    assert sum(sizes) == info.units
