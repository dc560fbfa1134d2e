"""Many numbers checked fast: `phones.normalize`'s answer from precompiled numbering metadata.

`phones.normalize` costs ~60 µs a number (parse, validity, type, region and formatting each walk
the metadata again), too slow for 100,000 recipients behind one HTTP answer. `NumberChecker`
answers plain international numbers (`+` and digits, with spaces, dots, dashes or brackets) by
matching the same metadata patterns once, in the order phonenumbers applies them; every input it
is not sure about, and every refusal, goes through `phones.normalize` itself, so an accepted
number and a refusal's wording are always the ones a single send would give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Final, NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberType

from smsrelay.domain import phones

__all__ = ["Check", "NumberChecker", "fast_accept"]

_PUNCTUATION: Final = str.maketrans("", "", " .-()")
_INTERNATIONAL: Final = re.compile(r"\+([1-9]\d{6,16})")
_NON_GEOGRAPHIC: Final = "001"
_NANP: Final = 1
_TEST_PREFIX: Final = "1500555"  # phones.is_test_number: +1 500 555 xxxx

# phonenumbers' `_number_type_helper` order: the first description a number matches names it.
_SPECIAL_TYPES: Final = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
# Types `phones.accept` takes without a reason (UNKNOWN here means "invalid", never accepted).
_ACCEPTED: Final = frozenset(
    {
        PhoneNumberType.MOBILE,
        PhoneNumberType.FIXED_LINE_OR_MOBILE,
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.VOIP,
        PhoneNumberType.PAGER,
    }
)


@dataclass(frozen=True, slots=True)
class _Desc:
    lengths: frozenset[int]
    pattern: re.Pattern[str] | None

    def matches(self, nsn: str) -> bool:
        if self.pattern is None or (self.lengths and len(nsn) not in self.lengths):
            return False
        return self.pattern.fullmatch(nsn) is not None


@dataclass(frozen=True, slots=True, eq=False)
class _Region:
    code: str
    leading_digits: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    general: _Desc
    special: tuple[tuple[_Desc, int], ...]
    fixed_line: _Desc
    mobile: _Desc
    same_mobile_and_fixed: bool


def _alternatives(region: _Region, length: int) -> list[tuple[int, str]]:
    """(type, pattern) in phonenumbers' order, leaving out descriptions of other lengths."""

    def usable(desc: _Desc) -> bool:
        return desc.pattern is not None and (not desc.lengths or length in desc.lengths)

    def text(desc: _Desc) -> str:
        assert desc.pattern is not None
        return f"(?:{desc.pattern.pattern})"

    found = [(kind, text(desc)) for desc, kind in region.special if usable(desc)]
    fixed, mobile = region.fixed_line, region.mobile
    if usable(fixed) and region.same_mobile_and_fixed:
        found.append((PhoneNumberType.FIXED_LINE_OR_MOBILE, text(fixed)))
    elif usable(fixed):
        if usable(mobile):
            both = f"(?={text(mobile)}\\Z){text(fixed)}"
            found.append((PhoneNumberType.FIXED_LINE_OR_MOBILE, both))
        found.append((PhoneNumberType.FIXED_LINE, text(fixed)))
    if usable(mobile) and not region.same_mobile_and_fixed:
        found.append((PhoneNumberType.MOBILE, text(mobile)))
    return found


@cache
def _combined(region: _Region, length: int) -> re.Pattern[str] | None:
    general = region.general
    if general.pattern is None or (general.lengths and length not in general.lengths):
        return None
    choices = "|".join(f"(?P<t{kind}>{pattern})" for kind, pattern in _alternatives(region, length))
    if not choices:
        return None
    return re.compile(f"(?=(?:{general.pattern.pattern})\\Z)(?:{choices})")


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> _Desc:
    if desc is None:
        return _Desc(frozenset(), None)
    return _Desc(frozenset(desc.possible_length or ()), _compiled(desc.national_number_pattern))


@cache
def _region(code: str) -> _Region | None:
    meta = PhoneMetadata.metadata_for_region(code, None)
    if meta is None:
        return None
    return _Region(
        code=code,
        leading_digits=_compiled(meta.leading_digits),
        national_prefix=_compiled(meta.national_prefix_for_parsing),
        general=_desc(meta.general_desc),
        special=tuple((_desc(getattr(meta, name)), kind) for name, kind in _SPECIAL_TYPES),
        fixed_line=_desc(meta.fixed_line),
        mobile=_desc(meta.mobile),
        same_mobile_and_fixed=bool(meta.same_mobile_and_fixed_line_pattern),
    )


@cache
def _regions(country_code: int) -> tuple[_Region, ...] | None:
    codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    if not codes or _NON_GEOGRAPHIC in codes:
        return None
    found = tuple(r for r in (_region(code) for code in codes) if r is not None)
    return found if len(found) == len(codes) else None


# A region to try for a national number of some length: its leading digits (None: any), the
# combined pattern (None: no description has that length), its code, the accepted group names.
_Candidate = tuple[re.Pattern[str] | None, re.Pattern[str] | None, str, frozenset[str]]


@dataclass(frozen=True, slots=True, eq=False)
class _Country:
    """A calling code's regions, precompiled: what `fast_accept` needs per national length."""

    code: int
    regions: tuple[_Region, ...]
    by_length: dict[int, tuple[_Candidate, ...]]

    def candidates(self, length: int) -> tuple[_Candidate, ...]:
        found = self.by_length.get(length)
        if found is None:
            found = self.by_length[length] = tuple(self._candidate(r, length) for r in self.regions)
        return found

    def _candidate(self, region: _Region, length: int) -> _Candidate:
        kinds = _ACCEPTED | ({PhoneNumberType.TOLL_FREE} if self.code == _NANP else set())
        accepted = frozenset(f"t{kind}" for kind in kinds)
        leading = region.leading_digits if len(self.regions) > 1 else None
        return leading, _combined(region, length), region.code, accepted


@cache
def _country(prefix: str) -> _Country | None:
    """The calling code `prefix` names, if it is one this path handles (geographic, known)."""
    code = int(prefix)
    if prefix[0] == "0" or code not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return None
    regions = _regions(code)
    return None if regions is None else _Country(code, regions, {})


def _split(digits: str) -> tuple[_Country | None, str] | None:
    """The calling code (the shortest known prefix, as `parse` finds it) and the rest."""
    for size in (1, 2, 3):
        prefix = digits[:size]
        if int(prefix) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return _country(prefix), digits[size:]
    return None


def _home(country: _Country, nsn: str) -> str | None:
    """The region `region_code_for_number` picks, if the number's type there is accepted."""
    for leading, pattern, code, accepted in country.candidates(len(nsn)):
        if leading is not None and not leading.match(nsn):
            continue
        match = None if pattern is None else pattern.fullmatch(nsn)
        kind = None if match is None else match.lastgroup
        if kind is None and leading is None:
            continue  # not this region's number: the next one is asked
        return code if kind in accepted else None
    return None


def fast_accept(raw: str) -> tuple[str, str] | None:
    """(E.164, region) for a plain international number that is surely SMS-capable, else None.

    None means "ask `phones.normalize`": the input needs parsing rules this path leaves out
    (national form, a national prefix after the country code, non-geographic codes, Twilio's test
    numbers), or the number is refused and the reason must be worded as a single send words it.
    """
    digits = raw[1:]
    if raw[:1] != "+" or not digits.isdigit() or not digits.isascii():
        match = _INTERNATIONAL.fullmatch(raw.strip().translate(_PUNCTUATION))
        if match is None:
            return None
        digits = match.group(1)
    if not 7 <= len(digits) <= 17 or digits[0] == "0" or digits.startswith(_TEST_PREFIX):
        return None  # too short or long to parse the same way, or a Twilio test number
    country, nsn = _split(digits) or (None, "")
    if country is None or not nsn or nsn[0] == "0":
        return None
    prefix = country.regions[0].national_prefix
    if prefix is not None and prefix.match(nsn):
        return None
    region = _home(country, nsn)
    return None if region is None else ("+" + digits, region)


class Check(NamedTuple):
    """One input's answer: the destination (E.164 and region), or why it cannot be one."""

    e164: str | None
    region: str | None = None
    reason: str | None = None
    code: str | None = None  # "invalid_number", "landline" or "not_sms_capable" when refused


class NumberChecker:
    """Checks numbers as `phones.normalize` would, remembering each distinct input's answer."""

    def __init__(self, default_region: str | None = None) -> None:
        self.default_region = default_region
        self._answers: dict[str, Check] = {}

    def check(self, raw: str) -> Check:
        answer = self._answers.get(raw)
        if answer is None:
            answer = self._answers[raw] = self._first_check(raw)
        return answer

    def _first_check(self, raw: str) -> Check:
        found = fast_accept(raw)
        if found is not None:
            return Check(*found)
        try:
            number = phones.normalize(raw, self.default_region)
        except phones.InvalidPhoneNumber as exc:
            return Check(None, None, str(exc), _refusal_code(raw, self.default_region))
        return Check(number.e164, number.region)


def _refusal_code(raw: str, default_region: str | None) -> str:
    """A stable code for a refused number: a landline, another valid type, or not a number."""
    try:
        facts = phones.describe(phonenumbers.parse(raw.strip(), default_region))
    except phonenumbers.NumberParseException:
        return "invalid_number"
    if not facts.valid:
        return "invalid_number"
    return "landline" if facts.number_type == "FIXED_LINE" else "not_sms_capable"
