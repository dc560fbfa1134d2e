"""Screening a broadcast's recipients: the single send's rules per recipient, fast for 100,000.

Numbers, duplicates, template variables, text size and sender rules are decided here, before the
202; consent and quiet hours are decided when the expander writes each outbox row, as a single
send decides them when it stores its row. Each refusal is a stable code plus a human message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from smsrelay.domain import phones, senders
from smsrelay.domain.phone_batch import NumberChecker, fast_accept
from smsrelay.domain.templates import Template
from smsrelay.services.errors import InvalidRequest
from smsrelay.services.submit import NewMessage, SubmitPolicy, plan_for_number

# Why a recipient was left out: code -> what the caller can change (shown beside the details).
REASONS: Final[dict[str, str]] = {
    "invalid_number": "not a valid phone number; give it in E.164 form such as +14155552671",
    "landline": "a fixed-line number, which cannot receive SMS",
    "not_sms_capable": "a number that cannot receive SMS (premium-rate, shared-cost, …)",
    "duplicate": "the same number as an earlier recipient; it gets the message once",
    "missing_variable": "the message uses a variable this recipient has no value for",
    "too_long": "the message, with this recipient's variables, is over the size limit",
    "empty_message": "the message, with this recipient's variables, is empty",
    "sender_not_allowed": "the senderId cannot be used for this recipient's country",
}


# One recipient as the caller gave it: the number and its own variables (a plain tuple: cheap).
Recipient = tuple[str, Mapping[str, str] | None]


# One encoder for every recipient's values (json.dumps with options builds one per call).
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    to: str
    reason: str
    message: str

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "to": self.to, "reason": self.reason, "message": self.message}


@dataclass
class Screened:
    """The accepted recipients as (seq, phone, region, variables JSON), and the refusals."""

    accepted: list[tuple[int, str, str | None, str | None]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    duplicates: int = 0


@dataclass(frozen=True, slots=True)
class Screen:
    """What every recipient of one broadcast is checked against."""

    policy: SubmitPolicy
    template: Template
    defaults: Mapping[str, str]
    sender_id: str | None
    smart_encoding: bool

    @property
    def cheap_text_checks(self) -> bool:
        """Without smart encoding or a segment cap, size is the only rule a text can break."""
        return not self.smart_encoding and self.policy.max_segments is None

    def new_message(self, text: str) -> NewMessage:
        return NewMessage(
            to="", message=text, sender_id=self.sender_id, smart_encoding=self.smart_encoding
        )


def check_template(screen: Screen) -> None:
    """`InvalidRequest` on `message` when the text is unusable for everyone (plain text only),
    or writes a placeholder no value could fill (`{{First Name}}` would reach every phone as
    typed)."""
    text = screen.template.text
    if not text.strip():
        raise InvalidRequest("message", "must not be empty")
    broken = screen.template.malformed
    if broken:
        raise InvalidRequest(
            "message",
            f"{', '.join(broken)} is not a placeholder smsrelay fills: a name is "
            "letters, digits and underscores, not starting with a digit (e.g. {{firstName}}); "
            "rename it (and its variable or CSV column), or remove the braces",
        )
    if screen.template.is_plain:
        _text_problem(screen, text, raise_for_all=True)


def screen_recipients(screen: Screen, recipients: Iterable[Recipient]) -> Screened:
    """Check each recipient in order: number, duplicate, sender for its country, variables, text.

    The hot loop of a 100,000-recipient request: tuples and dict lookups, no object per row.
    """
    result = Screened()
    accepted, rejected = result.accepted, result.rejected
    check = NumberChecker(screen.policy.default_region).check
    seen: dict[str, int] = {}
    by_region: dict[str | None, tuple[str, str] | None] = {}
    by_text: dict[str, tuple[str, str] | None] = {}
    plain = screen.template.is_plain
    for index, (to, own) in enumerate(recipients):
        found = fast_accept(to)  # the common case, without the checker's bookkeeping
        if found is None:
            e164, region, reason, code = check(to)
            if e164 is None:
                rejected.append(Rejection(index, to, code or "invalid_number", reason or ""))
                continue
        else:
            e164, region = found
        first = seen.setdefault(e164, index)
        if first != index:
            result.duplicates += 1
            message = f"the same number as recipient {first}; it gets the message once"
            rejected.append(Rejection(index, to, "duplicate", message))
            continue
        problem = (
            by_region[region] if region in by_region else _region_problem(screen, region, by_region)
        )
        variables = None
        if problem is None and not plain:
            variables, problem = _variables(screen, own, by_text)
        if problem is not None:
            del seen[e164]
            rejected.append(Rejection(index, to, *problem))
            continue
        accepted.append((len(accepted), e164, region, variables))
    return result


def _region_problem(
    screen: Screen, region: str | None, cache: dict[str | None, tuple[str, str] | None]
) -> tuple[str, str] | None:
    """The sender rule for a country (and the plain text's plan there), once per country."""
    number = phones.PhoneNumber("+15005550006", region, 0)  # the plan reads the region only
    problem: tuple[str, str] | None = None
    try:
        if screen.template.is_plain:
            plan_for_number(screen.policy, number, screen.new_message(screen.template.text))
        else:
            rules = screen.policy.sender_rules or senders.shipped_rules()
            senders.choose_sender(screen.sender_id, region, rules)
    except senders.InvalidSender as exc:
        problem = ("sender_not_allowed", f"senderId: {exc}")
    except InvalidRequest as exc:
        problem = ("sender_not_allowed", exc.message)
    cache[region] = problem
    return problem


def _variables(
    screen: Screen, own: Mapping[str, str] | None, text_problems: dict[str, tuple[str, str] | None]
) -> tuple[str | None, tuple[str, str] | None]:
    """The recipient's values for the template's names (as JSON), or why it cannot be sent."""
    values: dict[str, str] = {}
    missing: list[str] = []
    for name in screen.template.names:
        # A blank value (an empty CSV cell) is no value: the default applies, else refused.
        value = own.get(name) if own else None
        if value is None or not value.strip():
            value = screen.defaults.get(name)
        if value is None or not value.strip():
            missing.append(name)
        else:
            values[name] = value
    if missing:
        names = ", ".join("{{" + name + "}}" for name in missing)
        return None, (
            "missing_variable",
            f"no value for {names} (absent or blank); add it to the recipient's "
            "variables or give a default in the top-level variables",
        )
    text = screen.template.render(values)
    if screen.cheap_text_checks:
        problem = _size_problem(screen.policy.max_characters, text)
    else:
        if text not in text_problems:
            text_problems[text] = _text_problem(screen, text, raise_for_all=False)
        problem = text_problems[text]
    return _to_json(values), problem


def _text_problem(screen: Screen, text: str, *, raise_for_all: bool) -> tuple[str, str] | None:
    """Size rules for one rendered text; the plain text's fault is the whole request's."""
    policy = screen.policy
    if not text.strip():
        problem: tuple[str, str] | None = ("empty_message", "the rendered message is empty")
    elif screen.smart_encoding or policy.max_segments is not None or raise_for_all:
        problem = _planned_problem(screen, text, raise_for_all)
    else:
        problem = _size_problem(policy.max_characters, text)
    if problem is not None and raise_for_all:
        raise InvalidRequest("message", problem[1])
    return problem


def _size_problem(limit: int, text: str) -> tuple[str, str] | None:
    """Empty or over `limit` UTF-16 code units: the checks a plan makes without smart encoding
    or a segment cap."""
    if len(text) <= limit // 2 and text.strip():
        return None  # at most 2 code units a character: surely within the limit
    if not text.strip():
        return ("empty_message", "the rendered message is empty")
    length = len(text.encode("utf-16-le")) // 2
    return (
        None if length <= limit else ("too_long", f"is {length} characters; the limit is {limit}")
    )


def _planned_problem(screen: Screen, text: str, raise_for_all: bool) -> tuple[str, str] | None:
    """The full text checks of a single send (encoding, segments), on a stand-in number."""
    stand_in = phones.PhoneNumber("+15005550006", None, 1)  # no region: sender rules not asked
    try:
        plan_for_number(screen.policy, stand_in, screen.new_message(text))
    except InvalidRequest as exc:
        if raise_for_all:
            raise
        return ("too_long", exc.message)
    return None
